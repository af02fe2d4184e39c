// S8's burst (bench/fairness.ts): the bench's fake upstream answers a streamed
// chat completion carrying x-bench-burst-bytes with that many bytes of whole
// SSE frames and [DONE], refuses a bad value, and the burst client reads one
// burst after another until it is stopped.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBurst, stopBurst } from "../../bench/lib/burst-client.ts";
import type { BurstJob } from "../../bench/lib/jobs.ts";
import { NodeChild } from "../../bench/lib/proc.ts";

const UPSTREAM = path.join(import.meta.dirname, "..", "..", "bench", "servers", "upstream-main.ts");
const MiB = 1024 * 1024;

describe("the bench's burst upstream and client", () => {
  let up: NodeChild | undefined;
  let base = "";

  beforeAll(async () => {
    up = await NodeChild.start("upstream", UPSTREAM, { cpus: null });
    base = `http://127.0.0.1:${up.port}/v1/chat/completions`;
  });

  afterAll(async () => {
    await up?.stop();
  });

  const post = (burst: string, body: object): Promise<Response> =>
    fetch(base, { method: "POST", headers: { "content-type": "application/json", "x-bench-burst-bytes": burst }, body: JSON.stringify(body) });

  it("sends at least the bytes asked for, in whole frames, then usage when asked and [DONE]", async () => {
    const res = await post(String(MiB), { model: "m", stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await res.text();
    expect(text.length).toBeGreaterThanOrEqual(MiB);
    expect(text.length).toBeLessThan(MiB + 66_000);
    const events = text.split("\n\n");
    expect(events.pop()).toBe("");
    expect(events.at(-1)).toBe("data: [DONE]");
    const frames = events.slice(0, -1).map((e) => JSON.parse(e.slice("data: ".length)) as { choices: Array<{ finish_reason: string | null }>; usage?: { completion_tokens: number } });
    const usage = frames.at(-1);
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage?.completion_tokens).toBe(frames.length - 1);
    expect(frames.at(-2)?.choices[0]?.finish_reason).toBe("stop");
  });

  it("sends no usage frame unless asked", async () => {
    const text = await (await post("1", { model: "m", stream: true })).text();
    expect(text).not.toContain('"usage"');
    expect(text.endsWith('"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')).toBe(true);
  });

  it.each([["0"], ["-1"], ["1e6"], ["4294967297"], ["12345678901"], ["abc"], [""]])("refuses x-bench-burst-bytes %j", async (value) => {
    const res = await post(value, { model: "m", stream: true });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("x-bench-burst-bytes");
  });

  it("refuses a burst on a request that does not stream", async () => {
    expect((await post("100", { model: "m" })).status).toBe(400);
  });

  const job = (burst: string): BurstJob => ({
    request: { port: up?.port ?? 0, method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json", "x-bench-burst-bytes": burst }, body: JSON.stringify({ model: "m", stream: true }) },
    timeoutMs: 10_000,
  });

  it("reads burst after burst until stopped, cutting the one in flight off", async () => {
    const running = runBurst(job(String(4 * MiB)));
    await new Promise((r) => setTimeout(r, 300));
    expect(stopBurst()).toBe(true);
    const r = await running;
    expect(r.failed).toBe(0);
    expect(r.error).toBeNull();
    expect(r.completed).toBeGreaterThanOrEqual(1);
    expect(r.bytes).toBeGreaterThanOrEqual(r.completed * 4 * MiB);
    expect(r.statuses["200"]).toBeGreaterThanOrEqual(r.completed);
    expect(stopBurst()).toBe(false);
  });

  it("ends its loop at the first failed response", async () => {
    const r = await runBurst(job("0"));
    expect(r).toMatchObject({ completed: 0, failed: 1, error: "status 400", statuses: { "400": 1 } });
  });
});
