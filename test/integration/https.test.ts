// HTTPS on the gateway itself, with a CA and certificate made by the test: the
// seed's `curl -k https://…/proxy/<domain>/v1/models` line with a scoped PAT
// (real curl), the openai client trusting the test CA for chat, streamed chat
// and embeddings, HSTS on HTTPS only, and the plain listener beside HTTPS.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { Agent, fetch as undiciFetch } from "undici";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { TestCa } from "../helpers/certs.ts";

const run = promisify(execFile);

const SCOPES = ["llm_chat_completions", "llm_embeddings"].map((operation) => ({ entityType: "models", entityId: "llama3", operation }));

/** An openai client that trusts `caFile` (and only speaks to the gateway through it). */
export function openaiWithCa(baseURL: string, apiKey: string, caFile: string, allowH2 = false): { client: OpenAI; agent: Agent } {
  const agent = new Agent({ connect: { ca: readFileSync(caFile) }, allowH2 });
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, fetch: ((url: string, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch });
  return { client, agent };
}

describe("HTTPS on the gateway", () => {
  let ca: TestCa;
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let base: string;
  let plainBase: string;
  let agent: Agent;
  let client: OpenAI;
  let lister: string;

  beforeAll(async () => {
    ca = new TestCa("https");
    const server = ca.issue("localhost");
    upstream = await startFakeUpstream({ sseIntervalMs: 1 });
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg.server.tls = { cert_file: server.cert, key_file: server.key, hsts_max_age: "180d", plain_port: 1 };
      },
    });
    base = `https://localhost:${gw.port}`;
    plainBase = `http://127.0.0.1:${gw.app.listeners.plainPort ?? 0}`;
    lister = (await gw.issue({ userId: "carol", scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_read" }] })).token;
    const full = await gw.issue({ scopes: SCOPES });
    ({ client, agent } = openaiWithCa(`${base}/proxy/d1/v1`, full.token, ca.cert));
  });
  afterAll(async () => {
    await agent?.close();
    await gw?.close();
    await upstream?.close();
    ca?.remove();
  });

  it("the seed's curl -k https://…/proxy/<domain>/v1/models returns the model list for a scoped PAT", async () => {
    const { stdout } = await run("curl", ["-sS", "-k", `${base}/proxy/d1/v1/models`, "-H", `Authorization: Bearer ${lister}`, "-w", "\n%{http_code} %{scheme}"]);
    const [body, status] = stdout.split("\n");
    expect(status).toBe("200 HTTPS");
    const list = JSON.parse(body ?? "") as { object: string; data: Array<{ id: string }> };
    expect(list.object).toBe("list");
    expect(list.data.map((m) => m.id)).toContain("fake-model");
    // Without -k, curl refuses the test CA's certificate; with --cacert it trusts it.
    await expect(run("curl", ["-sS", `${base}/proxy/d1/v1/models`, "-H", `Authorization: Bearer ${lister}`])).rejects.toThrow(/certificate/i);
    const trusted = await run("curl", ["-sS", "--cacert", ca.cert, `${base}/proxy/d1/v1/models`, "-H", `Authorization: Bearer ${lister}`, "-o", "/dev/null", "-w", "%{http_code}"]);
    expect(trusted.stdout).toBe("200");
  });

  it("plain HTTP on the HTTPS port is refused, not answered in clear text", async () => {
    const r = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${gw.port}/healthz`]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }));
    expect(r.stdout).not.toBe("200");
  });

  it("the openai client with the test CA does chat, streamed chat and embeddings", async () => {
    const chat = await client.chat.completions.create({ model: "llama3", messages: [{ role: "user", content: "hi" }] });
    expect(chat.choices[0]?.message.content).toBeTruthy();
    const stream = await client.chat.completions.create({ model: "llama3", stream: true, messages: [{ role: "user", content: "hi" }] });
    let chunks = 0;
    let text = "";
    for await (const c of stream) {
      chunks++;
      text += c.choices[0]?.delta.content ?? "";
    }
    expect(chunks).toBeGreaterThanOrEqual(5);
    expect(text).toContain("tok0");
    const emb = await client.embeddings.create({ model: "llama3", input: ["a", "b"] });
    expect(emb.data).toHaveLength(2);
    // Scopes still decide: another model is refused over HTTPS as over HTTP.
    await expect(client.chat.completions.create({ model: "mistral", messages: [] })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it("HSTS on HTTPS responses (refusals included), never on the plain listener", async () => {
    const ok = await undiciFetch(`${base}/healthz`, { dispatcher: agent });
    expect(ok.headers.get("strict-transport-security")).toBe("max-age=15552000");
    const denied = await undiciFetch(`${base}/proxy/d1/v1/models`, { dispatcher: agent });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("strict-transport-security")).toBe("max-age=15552000");
    const plain = await fetch(`${plainBase}/proxy/d1/v1/models`, { headers: { authorization: `Bearer ${lister}` } });
    expect(plain.status).toBe(200);
    expect(plain.headers.get("strict-transport-security")).toBeNull();
  });
});
