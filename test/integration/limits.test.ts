// Limits on one gateway (embedded store: counters in process) over real
// sockets: 429s in the OpenAI envelope with Retry-After and the RateLimit
// headers, token quotas reconciled with real usage for every API shape, the
// usage chunk asked for on the client's behalf and dropped again, the clamp,
// concurrency leases freed on abort, shadow mode, a PAT's own limits, and
// usage read back through GET /usage and GET /me/limits.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { Ollama } from "ollama";
import { recordedJson, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startAdminFixture, type AdminFixture } from "../helpers/admin.ts";
import { ensureMember } from "../helpers/gateway.ts";
import { explain } from "../../src/cli/explain.ts";
import { RouteTableHolder } from "../../src/routing/holder.ts";
import { loadSettings } from "../../src/config/config.ts";

const POLICIES = [
  { name: "pat-ceiling", subject: "pat", requests_per_minute: 1000, tokens_per_day: 1_000_000 },
  { name: "rpm", subject: "pat", match: { models: ["m-rpm"] }, requests_per_minute: 3 },
  { name: "daily", subject: "pat", match: { models: ["m-day"] }, tokens_per_day: 100 },
  { name: "tpm", subject: "pat_model", match: { models: ["m-tok"] }, tokens_per_minute: 1000 },
  { name: "clamp", subject: "pat", match: { models: ["m-clamp"] }, tokens_per_day: 70, clamp_max_tokens: true },
  { name: "one-at-a-time", subject: "pat", match: { models: ["m-conc"] }, concurrent: 1 },
  { name: "watch", subject: "pat", match: { models: ["m-shadow"] }, requests_per_minute: 1, mode: "shadow" },
];

describe("limits on one gateway", () => {
  let fx: AdminFixture;
  let upstream: FakeUpstream;
  let n = 0;

  beforeAll(async () => {
    fx = await startAdminFixture({
      patch: (cfg) => {
        cfg["limits"] = { default_max_tokens: 20, lease_ttl: "5s", policies: POLICIES };
        cfg["usage"] = { flush_interval: "1s" };
      },
    });
    upstream = fx.upstream;
  });
  beforeEach(() => {
    upstream.resetRoutes();
    upstream.configure({ sseMode: "timed", sseIntervalMs: 1, sseChunks: 5 });
    upstream.clear();
  });
  afterAll(async () => {
    await fx?.close();
  });

  const pat = async (user = "alice", limits?: Record<string, number>): Promise<string> => {
    const { token, record } = await fx.gw.issue({ userId: user, name: `lim-${++n}`, scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_chat_completions" }, { entityType: "domains", entityId: "d1", operation: "llm_completions" }] });
    if (limits !== undefined) {
      // Own limits go through the store as the API would put them (the API path is tested below).
      const r = await fx.gw.store.replacePat({ ...record, limits }, record.version);
      expect(r).toBe("ok");
    }
    return token;
  };
  const post = (token: string, path: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
    fetch(`${fx.gw.url}/proxy/d1${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body), ...(signal === undefined ? {} : { signal }) });
  const chat = (token: string, model: string, extra: Record<string, unknown> = {}): Promise<Response> => post(token, "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }], ...extra });

  it("refuses past requests_per_minute with 429 rate_limit_exceeded naming the policy, Retry-After and the RateLimit headers", async () => {
    const t = await pat();
    const statuses: number[] = [];
    let last: Response | null = null;
    let first: Response | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await chat(t, "m-rpm");
      statuses.push(r.status);
      first ??= r;
      if (r.status === 429) last = r;
      else await r.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // Admitted responses say how much is left.
    expect(first!.headers.get("x-ratelimit-limit-requests")).toBe("3");
    expect(first!.headers.get("x-ratelimit-remaining-requests")).toBe("2");
    expect(first!.headers.get("ratelimit-policy")).toContain('"rpm-requests";q=3;w=60');
    const body = (await last!.json()) as { error: { code: string; type: string; message: string; param: string } };
    expect(body.error.code).toBe("rate_limit_exceeded");
    expect(body.error.message).toContain('"rpm"');
    expect(body.error.param).toBe("rpm");
    const retry = Number(last!.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(50);
    expect(retry).toBeLessThanOrEqual(61);
    expect(Number(last!.headers.get("retry-after-ms"))).toBeGreaterThan(50_000);
    // The openai SDK waits out a Retry-After of up to 60 s: past that the gateway says not to retry.
    expect(last!.headers.get("x-should-retry")).toBe(Number(last!.headers.get("retry-after-ms")) > 60_000 ? "false" : null);
    expect(last!.headers.get("ratelimit")).toMatch(/"rpm-requests";r=0;t=\d+/);
    expect(last!.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(upstream.requests.length).toBe(3);
  });

  it("on an Ollama route the 429 is in Ollama's envelope, which the ollama client shows, with the same retry headers", async () => {
    const t = await pat();
    const client = new Ollama({ host: `${fx.gw.url}/proxy/d1`, headers: { Authorization: `Bearer ${t}` } });
    for (let i = 0; i < 3; i++) await client.chat({ model: "m-rpm", messages: [{ role: "user", content: "hi" }], stream: false });
    const err = (await client.chat({ model: "m-rpm", messages: [{ role: "user", content: "hi" }], stream: false }).then(
      () => expect.unreachable("the fourth request was allowed"),
      (e: unknown) => e,
    )) as { name: string; message: string; status_code: number };
    expect(err.name).toBe("ResponseError");
    expect(err.status_code).toBe(429);
    expect(err.message).toMatch(/^Limit "rpm" reached: 3 requests per minute/);
    const raw = await post(t, "/api/chat", { model: "m-rpm", messages: [], stream: false });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get("retry-after"))).toBeGreaterThan(50);
    expect(raw.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(Object.keys((await raw.json()) as object)).toEqual(["error"]);
  });

  it("a daily token quota: quota_exceeded, x-should-retry: false, and the openai client makes exactly one request", async () => {
    const t = await pat();
    // Each answer costs 12 + 7 = 19 tokens (the fake's usage); the reservation (bytes / 4 + 20) must fit first.
    let admitted = 0;
    for (;;) {
      const r = await chat(t, "m-day");
      await r.arrayBuffer();
      if (r.status !== 200) break;
      admitted++;
    }
    expect(admitted).toBe(4);
    upstream.clear();
    const client = new OpenAI({ baseURL: `${fx.gw.url}/proxy/d1/v1`, apiKey: t, maxRetries: 3 });
    const err = await client.chat.completions.create({ model: "m-day", messages: [{ role: "user", content: "hi" }] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toBe("quota_exceeded");
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers.get("x-should-retry")).toBe("false");
    // The gateway answered once and the client did not retry: nothing reached the upstream either.
    expect(upstream.requests.length).toBe(0);
  });

  it("the openai client gets RateLimitError for a 429 (and retries within Retry-After only when told it may)", async () => {
    const t = await pat();
    const client = new OpenAI({ baseURL: `${fx.gw.url}/proxy/d1/v1`, apiKey: t, maxRetries: 0 });
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: "m-rpm", messages: [] });
    await expect(client.chat.completions.create({ model: "m-rpm", messages: [] })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
  });

  it("tokens are reserved at admission and reconciled with the reported usage: JSON, SSE (asked for usage or not), Responses and Ollama NDJSON", async () => {
    const t = await pat();
    // 1000 tokens per minute on m-tok. Each admitted response says what is left after its reservation
    // (estimated input = body bytes / 4, plus max_tokens or the default 20), so the next one shows what the last really cost.
    const shapes: { path: string; body: Record<string, unknown>; cost: number; check?: (text: string) => void }[] = [
      { path: "/v1/chat/completions", body: { model: "m-tok", messages: [{ role: "user", content: "hi" }] }, cost: 12 + 7 },
      {
        path: "/v1/chat/completions", body: { model: "m-tok", messages: [], stream: true }, cost: 12 + 5,
        check: (text) => {
          // The client did not ask for usage: the gateway asked for it, and the client does not see that chunk.
          expect(recordedJson(upstream.requests.at(-1)!)).toMatchObject({ model: "m-tok", stream: true, stream_options: { include_usage: true } });
          expect(text).not.toContain("prompt_tokens");
          expect(text.match(/^data: \{/gm)?.length).toBe(5);
          expect(text).toContain("data: [DONE]");
        },
      },
      {
        path: "/v1/chat/completions", body: { model: "m-tok", messages: [], stream: true, stream_options: { include_usage: true }, max_tokens: 50 }, cost: 12 + 5,
        check: (text) => expect(text).toContain('"completion_tokens":5'),
      },
      { path: "/v1/responses", body: { model: "m-tok", input: "hi", stream: true }, cost: 12 + 5, check: (text) => expect(text).toContain("response.completed") },
      { path: "/v1/responses", body: { model: "m-tok", input: "hi" }, cost: 12 + 7 },
      { path: "/api/chat", body: { model: "m-tok", messages: [] }, cost: 12 + 5, check: (text) => expect(text).toContain('"done":true') },
      { path: "/api/generate", body: { model: "m-tok", prompt: "hi", stream: false }, cost: 12 + 7 },
      { path: "/v1/chat/completions", body: { model: "m-tok", messages: [], max_tokens: 3 }, cost: 0 },
    ];
    const reservation = (b: Record<string, unknown>): number => Math.ceil(JSON.stringify(b).length / 4) + (typeof b["max_tokens"] === "number" ? b["max_tokens"] : 20);
    let used = 0;
    for (const [i, shape] of shapes.entries()) {
      const r = await post(t, shape.path, shape.body);
      expect(r.status, shape.path).toBe(200);
      expect(Number(r.headers.get("x-ratelimit-remaining-tokens")), `${i}: ${shape.path}`).toBe(1000 - used - reservation(shape.body));
      expect(r.headers.get("x-ratelimit-limit-tokens")).toBe("1000");
      const text = await r.text();
      shape.check?.(text);
      used += shape.cost;
    }
  });

  it("a reservation that does not fit is refused before anything is forwarded", async () => {
    const t = await pat();
    const big = await chat(t, "m-tok", { max_tokens: 2000 });
    expect(big.status).toBe(429);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
    expect(upstream.requests.length).toBe(0);
  });

  it("with the clamp, a stream's max_tokens is lowered to what the quota leaves and the answer cannot exceed it", async () => {
    const t = await pat();
    upstream.configure({ sseChunks: 50 });
    const body = { model: "m-clamp", messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 1000 };
    const input = Math.ceil(JSON.stringify(body).length / 4);
    const r = await chat(t, "m-clamp", { stream: true, max_tokens: 1000 });
    expect(r.status).toBe(200);
    const text = await r.text();
    const sent = recordedJson(upstream.requests.at(-1)!) as { max_tokens: number; model: string };
    expect(sent.model).toBe("m-clamp");
    expect(sent.max_tokens).toBe(70 - input);
    expect(text.match(/"content":"tok/g)?.length).toBe(70 - input);
    // Used: 12 + (70 - input) of 70: what is left is less than another request's estimated input, so it is refused.
    const again = await chat(t, "m-clamp", { stream: true });
    expect(again.status).toBe(429);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("quota_exceeded");
  });

  it("a stream the client aborts frees its concurrency slot at once", async () => {
    const t = await pat();
    upstream.configure({ sseMode: "manual" });
    const first = await chat(t, "m-conc", { stream: true });
    expect(first.status).toBe(200);
    const s = await upstream.nextStream();
    await s.release(1);
    const second = await chat(t, "m-conc", { stream: true });
    expect(second.status).toBe(429);
    expect(second.headers.get("ratelimit")).toContain('"one-at-a-time-concurrent";r=0');
    await second.arrayBuffer();
    await first.body!.cancel();
    await s.waitForAbort();
    // The abort released the lease (and dropped the in-process "blocked" note): the next stream starts.
    const deadline = Date.now() + 1000;
    let third: Response;
    for (;;) {
      third = await chat(t, "m-conc", { stream: true });
      if (third.status === 200 || Date.now() > deadline) break;
      await third.arrayBuffer();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(third.status).toBe(200);
    const s3 = await upstream.nextStream();
    await s3.releaseAll();
    await third.text();
  });

  it("shadow mode counts and logs but never refuses", async () => {
    const t = await pat();
    for (let i = 0; i < 3; i++) expect((await chat(t, "m-shadow")).status).toBe(200);
    expect(fx.gw.logs.lines.some((l) => l.includes("shadow policy would refuse") && l.includes('"policy":"watch"'))).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${fx.gw.app.opsPort()}/metrics`)).text();
    expect(metrics).toMatch(/patgate_limit_decisions_total\{policy="watch",dimension="requests_per_minute",decision="shadow_refuse"\} 2/);
  });

  it("a PAT's own limits apply on top of policy; the API refuses looser ones and sets them at create and rotate", async () => {
    await ensureMember(fx.gw.store, "d1", "dave", "admin");
    const dave = await fx.user("dave");
    const scopes = [{ domain_id: "d1", entity_type: "domains", entity_id: "d1", operation: "llm_chat_completions" }];
    const loose = await dave.post<unknown>("/pats", { name: "loose", duration: "1d", scopes, limits: { requests_per_minute: 5000 } });
    expect(loose.status).toBe(400);
    expect(loose.error.message).toContain('"pat-ceiling"');
    const made = await dave.post<{ id: string; token: string; limits: Record<string, number> }>("/pats", { name: "tight", duration: "1d", scopes, limits: { requests_per_minute: 2 } });
    expect(made.status).toBe(201);
    expect(made.body.limits).toEqual({ requests_per_minute: 2 });
    const codes = [];
    for (let i = 0; i < 3; i++) {
      const r = await chat(made.body.token, "llama3");
      codes.push(r.status);
      if (r.status === 429) expect(((await r.json()) as { error: { param: string } }).error.param).toBe("pat-own");
      else await r.arrayBuffer();
    }
    expect(codes).toEqual([200, 200, 429]);
    const rotated = await dave.patch<{ token: string; limits: Record<string, number> | null }>(`/pats/${made.body.id}/secret/reset`, { duration: "1d", limits: null });
    expect(rotated.status).toBe(200);
    expect(rotated.body.limits).toBeNull();
    expect((await chat(rotated.body.token, "llama3")).status).toBe(200);
  });

  it("GET /usage sums reported usage per PAT, marks estimates, and shows users their own PATs only", async () => {
    await ensureMember(fx.gw.store, "d1", "erin", "admin");
    await ensureMember(fx.gw.store, "d1", "frank", "admin");
    const te = await pat("erin");
    const tf = await pat("frank");
    for (let i = 0; i < 2; i++) await (await chat(te, "llama3")).arrayBuffer();
    await (await chat(te, "llama3", { stream: true })).text();
    await (await chat(tf, "llama3")).arrayBuffer();
    // An answer without usage is charged its reservation and marked estimated.
    upstream.route("POST", "/v1/chat/completions", (c) => c.send(200, { id: "x", object: "chat.completion", choices: [] }));
    const body = { model: "llama3", messages: [{ role: "user", content: "hi" }], max_tokens: 9 };
    await (await post(te, "/v1/chat/completions", body)).arrayBuffer();
    upstream.resetRoutes();
    await new Promise((r) => setTimeout(r, 1300));
    const erin = await fx.user("erin");
    const start = Math.floor(Date.now() / 1000) - 3600;
    type Page = { object: string; data: { start_time: number; results: { api_key_id: string | null; user_id: string | null; input_tokens: number; output_tokens: number; num_model_requests: number; estimated_requests: number; estimated_input_tokens: number; estimated_output_tokens: number }[] }[] };
    const mine = await erin.get<Page>(`/usage?start_time=${start}&bucket_width=1h&group_by=user_id`);
    expect(mine.status).toBe(200);
    expect(mine.body.object).toBe("page");
    const rows = mine.body.data.flatMap((b) => b.results);
    expect(rows.every((r) => r.user_id === "erin")).toBe(true);
    const sum = rows.reduce((a, r) => ({ req: a.req + r.num_model_requests, input: a.input + r.input_tokens, output: a.output + r.output_tokens, est: a.est + r.estimated_requests, estIn: a.estIn + r.estimated_input_tokens, estOut: a.estOut + r.estimated_output_tokens }), { req: 0, input: 0, output: 0, est: 0, estIn: 0, estOut: 0 });
    const estIn = Math.ceil(JSON.stringify(body).length / 4);
    expect(sum).toEqual({ req: 4, input: 12 * 3 + estIn, output: 7 + 7 + 5 + 9, est: 1, estIn, estOut: 9 });
    expect((await erin.get(`/usage?start_time=${start}&user_id=frank`)).status).toBe(403);
    const ops = await fx.ops.get<Page>(`/usage?start_time=${start}&group_by=user_id,api_key_id`);
    expect(ops.body.data.flatMap((b) => b.results).some((r) => r.user_id === "frank")).toBe(true);
  });

  it("GET /me/limits shows the caller's current use per policy", async () => {
    await ensureMember(fx.gw.store, "d1", "gina", "admin");
    const t = await pat("gina", { requestsPerMinute: 10 });
    for (let i = 0; i < 2; i++) await (await chat(t, "llama3")).arrayBuffer();
    const gina = await fx.user("gina");
    const r = await gina.get<{ user_id: string; limits: { policy: string; dimensions: { dimension: string; used: number; limit: number }[] }[] }>("/me/limits");
    expect(r.status).toBe(200);
    const own = r.body.limits.find((l) => l.policy === "pat-own");
    expect(own?.dimensions).toEqual([expect.objectContaining({ dimension: "requests_per_minute", used: 2, limit: 10 })]);
    const ceiling = r.body.limits.find((l) => l.policy === "pat-ceiling");
    expect(ceiling?.dimensions.find((d) => d.dimension === "requests_per_minute")?.used).toBe(2);
    expect((await gina.get("/me/limits?user_id=alice")).status).toBe(403);
  });

  it("routes explain lists the policies that apply, from the same matching the data plane uses", async () => {
    const s = loadSettings(fx.gw.configFile);
    const table = RouteTableHolder.load(s.routesFile, s.catalog).current;
    const e = await explain(table, s.roles, { method: "POST", target: "/proxy/d1/v1/chat/completions", body: Buffer.from('{"model":"m-rpm"}') }, s.limits);
    expect(e.limits?.map((p) => p.name)).toEqual(["pat-ceiling", "rpm"]);
    const other = await explain(table, s.roles, { method: "POST", target: "/proxy/d1/v1/chat/completions", body: Buffer.from('{"model":"llama3"}') }, s.limits);
    expect(other.limits?.map((p) => p.name)).toEqual(["pat-ceiling"]);
  });
});

