// Usage on the embedded store lives in its SQLite file: a gateway stopped
// with SIGTERM writes what it summed while draining, and the next gateway on
// the file reads the totals back through GET /usage; two gateway processes on
// one file add to the same buckets, each seeing the other's flushes; a
// SIGKILL loses nothing that was flushed before it.
// Gateways are real processes (node src/main.ts) on one config; the test
// itself holds a store connection to the file only to put the PAT in.
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { ensureMember, mintPat, spawnGateway, writeConfig } from "../helpers/gateway.ts";

type Gateway = Awaited<ReturnType<typeof spawnGateway>>;

interface Page {
  data: { results: { num_model_requests: number; input_tokens: number; output_tokens: number; estimated_requests: number }[] }[];
  has_more: boolean;
}

interface Totals {
  requests: number;
  input: number;
  output: number;
}

describe("usage on the embedded store across restarts and processes", () => {
  let upstream: FakeUpstream;
  let config: { dir: string; file: string; adminKey: string | null };
  let token: string;
  const running: Gateway[] = [];
  const start = Math.floor(Date.now() / 1000) - 3600;

  /** Rewrites the config's usage section (the same database file throughout). */
  const setFlush = async (interval: string): Promise<void> => {
    const cfg = parse(await readFile(config.file, "utf8")) as Record<string, unknown>;
    cfg["usage"] = { flush_interval: interval };
    await writeFile(config.file, stringify(cfg));
  };
  const spawn = async (): Promise<Gateway> => {
    const g = await spawnGateway(config.file);
    running.push(g);
    return g;
  };
  const stop = async (g: Gateway): Promise<void> => {
    expect(await g.stop()).toBe(0);
    running.splice(running.indexOf(g), 1);
  };

  /** N chat completions through `g`; what the upstream reported for them. */
  const chats = async (g: Gateway, n: number): Promise<Totals> => {
    const t = { requests: 0, input: 0, output: 0 };
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${g.url}/proxy/d1/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "llama3", messages: [{ role: "user", content: `hi ${i}` }] }),
      });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
      t.requests++;
      t.input += body.usage.prompt_tokens;
      t.output += body.usage.completion_tokens;
    }
    return t;
  };
  const plus = (a: Totals, b: Totals): Totals => ({ requests: a.requests + b.requests, input: a.input + b.input, output: a.output + b.output });

  /** The totals GET /usage gives on `g` (hourly buckets from an hour ago, every page), and how many of them are estimates. */
  const usage = async (g: Gateway): Promise<Totals & { estimated: number }> => {
    const r = await fetch(`${g.url}/usage?start_time=${start}&bucket_width=1h`, { headers: { authorization: `Bearer ${config.adminKey ?? ""}` } });
    expect(r.status).toBe(200);
    const page = (await r.json()) as Page;
    expect(page.has_more).toBe(false);
    const rows = page.data.flatMap((b) => b.results);
    return {
      requests: rows.reduce((a, x) => a + x.num_model_requests, 0),
      input: rows.reduce((a, x) => a + x.input_tokens, 0),
      output: rows.reduce((a, x) => a + x.output_tokens, 0),
      estimated: rows.reduce((a, x) => a + x.estimated_requests, 0),
    };
  };

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    config = await writeConfig({ upstreamUrl: upstream.url });
    const pepper = Buffer.from((parse(await readFile(config.file, "utf8")) as { security: { pepper: string } }).security.pepper, "hex");
    const store = await EmbeddedStore.open(path.join(config.dir, "data", "patgate.db"));
    try {
      await ensureMember(store, "d1", "alice", "admin");
      const pat = mintPat(pepper, { userId: "alice", name: "usage", scopes: [{ domainId: "d1", entityType: "domains", entityId: "d1", operation: "llm_chat_completions" }], lifetimeMs: 3_600_000 });
      expect(await store.insertPat(pat.record)).toBe("ok");
      token = pat.token;
    } finally {
      await store.close();
    }
  });
  afterAll(async () => {
    for (const g of running.splice(0)) await g.stop();
    await upstream?.close();
    if (config !== undefined) await rm(config.dir, { recursive: true, force: true });
  });

  let expected: Totals = { requests: 0, input: 0, output: 0 };

  it("a gateway stopped with SIGTERM writes its usage while draining; the next one on the file reads it back", async () => {
    // The longest flush interval: nothing is written by the timer within this test, only by the drain.
    await setFlush("1m");
    const a = await spawn();
    expected = await chats(a, 3);
    expect(await usage(a)).toEqual({ requests: 0, input: 0, output: 0, estimated: 0 });
    await stop(a);
    const b = await spawn();
    expect(await usage(b)).toEqual({ ...expected, estimated: 0 });
    expect(expected.input).toBeGreaterThan(0);
    await stop(b);
  });

  it("two gateways on one file add to the same buckets: each reads both's flushes, and the sum survives both stopping", async () => {
    await setFlush("1s");
    const [b, c] = [await spawn(), await spawn()];
    const [fromB, fromC] = await Promise.all([chats(b, 4), chats(c, 5)]);
    const want = plus(expected, plus(fromB, fromC));
    // Within a couple of flush intervals, either process answers the whole sum.
    for (const g of [b, c]) {
      const deadline = Date.now() + 10_000;
      let got = await usage(g);
      while (got.requests < want.requests && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        got = await usage(g);
      }
      expect(got).toEqual({ ...want, estimated: 0 });
    }
    await Promise.all([stop(b), stop(c)]);
    const d = await spawn();
    expect(await usage(d)).toEqual({ ...want, estimated: 0 });
    await stop(d);
    expected = want;
  });

  it("a crash (SIGKILL, no drain) keeps every flush that committed before it", async () => {
    const e = await spawn();
    const want = plus(expected, await chats(e, 2));
    const deadline = Date.now() + 10_000;
    while ((await usage(e)).requests < want.requests && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise((resolve) => e.child.once("exit", resolve));
    e.child.kill("SIGKILL");
    await exited;
    running.splice(running.indexOf(e), 1);
    const f = await spawn();
    expect(await usage(f)).toEqual({ ...want, estimated: 0 });
    await stop(f);
  });
});
