// What a person at a terminal gets from `npm start`: a short banner (URL, store,
// admin key status, where the docs are) beside the JSON log, and a second
// Ctrl-C that exits at once instead of waiting for the drain.
import { spawn, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { newPat } from "../../src/tokens/issue.ts";
import { ROOT, ensureMember, spawnGateway, writeConfig } from "../helpers/gateway.ts";

const hasScript = spawnSync("script", ["--version"]).status === 0;

describe("on a terminal", () => {
  let upstream: FakeUpstream;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ sseMode: "manual", sseChunks: 50 });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  it.skipIf(!hasScript)("prints the banner on stderr when it is a TTY (and never on a pipe)", async () => {
    const { file } = await writeConfig({ upstreamUrl: upstream.url, adminKey: null });
    // util-linux `script` gives the gateway a pseudo-terminal, as a shell would.
    const cmd = `${process.execPath} ${path.join(ROOT, "src", "main.ts")} ${file}`;
    const child = spawn("script", ["-qefc", cmd, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 150 && !out.includes("Ctrl-C stops it"); i++) await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    const text = out.replace(/\r/g, "");
    expect(text).toMatch(/patgate is up\.\n {2}gateway {4}http:\/\/127\.0\.0\.1:\d+\/proxy\/<domain>\/v1/);
    expect(text).toMatch(/ {2}store {6}embedded, in /);
    expect(text).toMatch(/ {2}admin key {2}created on this first start and printed above, once/);
    expect(text).toMatch(/ {2}docs {7}.*README\.md and docs\/ beside it/);
    // The JSON log is there too.
    expect(text).toContain('"msg":"patgate listening"');
  });

  it("without a terminal (a pipe) there is no banner", async () => {
    const { file } = await writeConfig({ upstreamUrl: upstream.url });
    const gw = await spawnGateway(file);
    await gw.stop();
    expect(gw.stderr()).not.toContain("patgate is up.");
  });

  it("a second Ctrl-C exits at once, while a stream would still hold the drain", async () => {
    const { file, pepper } = await writeConfig({ upstreamUrl: upstream.url, patch: (cfg) => Object.assign(cfg.server, { drain_timeout: "60s" }) });
    const cfg = parse(await readFile(file, "utf8")) as { store: { embedded_path: string } };
    const store = await EmbeddedStore.open(cfg.store.embedded_path);
    await ensureMember(store, "d1", "alice", "admin");
    const { record, token } = newPat(pepper, { userId: "alice", name: "t", scopes: [{ domainId: "d1", entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }], lifetimeMs: 3_600_000 });
    expect(await store.insertPat(record)).toBe("ok");
    await store.close();
    const gw = await spawnGateway(file);
    const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"model":"llama3","stream":true,"messages":[]}',
    });
    expect(res.status).toBe(200);
    const stream = await upstream.nextStream();
    await stream.release(1);
    const exited = new Promise<number | null>((resolve) => gw.child.once("exit", (code) => resolve(code)));
    gw.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 300));
    // The first one only started the drain: the stream holds it for up to 60 s.
    expect(gw.child.exitCode).toBeNull();
    gw.child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(gw.stderr()).toContain("second interrupt");
    await res.body?.cancel().catch(() => undefined);
  });
});
