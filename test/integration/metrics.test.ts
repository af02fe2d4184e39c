// /metrics on the separate ops port: valid Prometheus text exposition with
// the listed series after real traffic, and labels drawn from bounded sets only
// (no tokens, user ids or raw paths).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the text exposition format: every line is a comment, blank, or a sample. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  // Values are Go floats: NaN and Inf in any case (prom-client writes "Nan").
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([+-]?(?:[0-9.]+(?:e[+-]?\d+)?|nan|inf))( \d+)?$/i;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(type);
      types.set(name!, type!);
      continue;
    }
    const m = sample.exec(line);
    if (m === null) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? "").matchAll(label)) labels[l[1]!] = l[2]!;
    const raw = m[4]!.toLowerCase();
    samples.push({ name: m[1]!, labels, value: raw === "nan" ? NaN : raw.endsWith("inf") ? (raw.startsWith("-") ? -Infinity : Infinity) : Number(raw) });
  }
  return { samples, types };
}

describe("/metrics", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ sseIntervalMs: 1 });
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({ userId: "alice-secret-user", scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] }));
    const client = new OpenAI({ baseURL: `${gw.url}/proxy/d1/v1`, apiKey: token, maxRetries: 0 });
    await client.chat.completions.create({ model: "llama3", messages: [] });
    const stream = await client.chat.completions.create({ model: "llama3", stream: true, stream_options: { include_usage: true }, messages: [] });
    for await (const _ of stream);
    await client.chat.completions.create({ model: "gpt-4o", messages: [] }).catch(() => undefined);
    await fetch(`${gw.url}/proxy/d1/v1/nothing-here`);
    await fetch(`${gw.url}/proxy/d1/v1/models`, { headers: { authorization: "Bearer pat_garbage" } });
    // A change event, so propagation lag is observed.
    await gw.store.putRole({ name: "extra", operations: ["read"] });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("is served on the ops port, not the data-plane port", async () => {
    expect(gw.app.opsPort()).not.toBe(gw.port);
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(404);
    const res = await fetch(`http://127.0.0.1:${gw.app.opsPort()}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect((await fetch(`http://127.0.0.1:${gw.app.opsPort()}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${gw.app.opsPort()}/readyz`)).status).toBe(200);
  });

  it("parses as Prometheus text and has the listed series", async () => {
    const text = await (await fetch(`http://127.0.0.1:${gw.app.opsPort()}/metrics`)).text();
    const { samples, types } = parseExposition(text);
    const has = (name: string, labels: Record<string, string> = {}): Sample | undefined =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

    expect(has("patgate_requests_total", { route: "openai.chat_completions", outcome: "ok", status_class: "2xx" })?.value).toBe(2);
    expect(has("patgate_requests_total", { outcome: "insufficient_scope", status_class: "4xx" })?.value).toBe(1);
    expect(has("patgate_requests_total", { route: "none", outcome: "no_route" })).toBeDefined();
    expect(has("patgate_requests_total", { outcome: "invalid_token", status_class: "4xx" })).toBeDefined();
    expect(types.get("patgate_request_duration_seconds")).toBe("histogram");
    expect(has("patgate_request_duration_seconds_count", { route: "openai.chat_completions", status_class: "2xx" })?.value).toBe(2);
    expect(has("patgate_upstream_response_headers_seconds_count", { upstream: "default" })?.value).toBe(2);
    expect(has("patgate_upstream_time_to_first_byte_seconds_count", { upstream: "default" })?.value).toBe(2);
    expect(has("patgate_token_cache_lookups_total", { result: "hit" })?.value).toBeGreaterThan(0);
    expect(has("patgate_token_cache_lookups_total", { result: "miss" })?.value).toBeGreaterThan(0);
    expect(has("patgate_store_errors_total")?.value).toBe(0);
    expect(has("patgate_change_propagation_seconds_count")?.value).toBeGreaterThan(0);
    expect(has("patgate_inflight_requests")).toBeDefined();
    expect(has("patgate_inflight_streams")?.value).toBe(0);
    expect(has("gen_ai_client_token_usage_count", { gen_ai_token_type: "input" })?.value).toBeGreaterThanOrEqual(2);
    expect(has("gen_ai_client_token_usage_sum", { gen_ai_token_type: "output" })?.value).toBeGreaterThan(0);
    expect(has("patgate_process_resident_memory_bytes")?.value).toBeGreaterThan(0);
    expect(has("patgate_nodejs_eventloop_lag_seconds")).toBeDefined();
  });

  it("labels never carry tokens, user ids or raw paths", async () => {
    const text = await (await fetch(`http://127.0.0.1:${gw.app.opsPort()}/metrics`)).text();
    const values = parseExposition(text).samples.flatMap((s) => Object.values(s.labels));
    for (const v of values) {
      expect(v).not.toMatch(/pat_/);
      expect(v).not.toContain("alice-secret-user");
      expect(v).not.toContain("/");
      expect(v).not.toContain(token.slice(4, 20));
    }
  });
});
