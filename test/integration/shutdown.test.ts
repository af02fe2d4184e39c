// SIGTERM while an SSE stream is running: readiness goes down, new connections
// are refused, the running stream completes, and the process exits 0.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { ensureMember, mintPat, spawnGateway, writeConfig } from "../helpers/gateway.ts";
import { parse } from "yaml";
import { readFile } from "node:fs/promises";

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

describe("graceful shutdown", () => {
  let upstream: FakeUpstream;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ sseChunks: 20, sseIntervalMs: 50 });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it("SIGTERM drains a running SSE stream, refuses new connections, exits 0", async () => {
    const { file, pepper } = await writeConfig({ upstreamUrl: upstream.url });
    // Seed the embedded store before the gateway process opens it.
    const cfg = parse(await readFile(file, "utf8")) as { store: { embedded_path: string } };
    const store = await EmbeddedStore.open(cfg.store.embedded_path);
    await ensureMember(store, "d1", "alice", "admin");
    const { record, token } = mintPat(pepper, { userId: "alice", name: "t", scopes: [{ domainId: "d1", entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }], lifetimeMs: 3_600_000 });
    expect(await store.insertPat(record)).toBe("ok");
    await store.close();

    const gw = await spawnGateway(file);
    const port = Number(new URL(gw.url).port);
    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"model":"llama3","stream":true,"messages":[]}',
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);

    const exited = gw.stop();
    // Give the signal a moment to land, then new connections must be refused.
    let refused = false;
    for (let i = 0; i < 40 && !refused; i++) {
      await new Promise((r) => setTimeout(r, 25));
      refused = await connectRefused(port);
    }
    expect(refused).toBe(true);

    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toContain("data: [DONE]");
    expect(await exited).toBe(0);
  });
});
