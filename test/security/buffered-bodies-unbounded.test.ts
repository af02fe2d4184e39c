// Finding (review, medium): memory for buffered bodies was bounded per request
// only. Twenty slow 24 MB uploads to an audio route (body_limit 25mb) made the
// gateway hold 480 MB at once, past the Helm chart's 512Mi limit: the
// container is killed, and every stream on it with it. Now every body the
// gateway buffers counts against one budget (server.body_memory, 25% of the
// memory limit); a body that would pass it gets 503 busy_bodies with
// Retry-After, and patgate_request_body_bytes_held shows what is held.
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { parseSize } from "../../src/util/size.ts";
import { ensureMember, mintPat, ROOT, spawnGateway, startGateway, writeConfig, type TestGateway } from "../helpers/gateway.ts";

const B = "patgateMemB0undary";
const MB = 1024 * 1024;

interface Upload {
  /** Resolves with the status once the gateway answers. */
  readonly status: Promise<number>;
  /** Sends the rest of the body and ends it. */
  finish(): void;
}

/** A multipart upload of `size` bytes (model field first, then a file part), sent `chunk` bytes every `everyMs`; `declared` sends Content-Length, else chunked. */
function upload(url: string, token: string, opts: { size: number; declared: boolean; chunk: number; everyMs: number; holdAt?: number }): Upload {
  const head = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n--${B}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${B}--\r\n`);
  const fill = opts.size - head.length - tail.length;
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, "content-type": `multipart/form-data; boundary=${B}` };
  if (opts.declared) headers["content-length"] = String(opts.size);
  else headers["transfer-encoding"] = "chunked";
  const req = http.request(`${url}/proxy/d1/v1/audio/transcriptions`, { method: "POST", headers, agent: false });
  const piece = Buffer.alloc(opts.chunk, 0x52);
  let sent = 0;
  let held = opts.holdAt !== undefined;
  let timer: NodeJS.Timeout | null = null;
  const status = new Promise<number>((resolve) => {
    req.on("response", (r) => {
      r.resume();
      if (timer !== null) clearInterval(timer);
      resolve(r.statusCode ?? 0);
    });
    // A refusal closes the connection while the body is still being sent: the answer may come just after the write fails.
    req.on("error", () => {
      if (timer !== null) clearInterval(timer);
      setTimeout(() => resolve(-1), 200);
    });
  });
  req.write(head);
  const step = (): void => {
    if (req.destroyed) return;
    if (held && sent >= (opts.holdAt ?? 0)) return;
    const n = Math.min(opts.chunk, fill - sent);
    if (n > 0) {
      req.write(n === opts.chunk ? piece : piece.subarray(0, n));
      sent += n;
    }
    if (sent >= fill) {
      if (timer !== null) clearInterval(timer);
      req.end(tail);
    }
  };
  timer = setInterval(step, opts.everyMs);
  return {
    status,
    finish: () => {
      held = false;
    },
  };
}

async function gauge(opsUrl: string): Promise<number> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  const m = /^patgate_request_body_bytes_held (\d+)/m.exec(text);
  return m === null ? -1 : Number(m[1]);
}

describe("buffered bodies share one memory budget", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => void (cfg.server = { ...cfg.server, body_memory: "2mb" }) });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "whisper", operation: "llm_transcription" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("a body that would pass the budget is refused with 503 and Retry-After; the share comes back when the first is done", async () => {
    const ops = `http://127.0.0.1:${gw.app.opsPort()}`;
    const first = upload(gw.url, token, { size: 1.5 * MB, declared: true, chunk: 64 * 1024, everyMs: 5, holdAt: 256 * 1024 });
    await new Promise((r) => setTimeout(r, 200));
    expect(await gauge(ops)).toBe(1.5 * MB);

    // Declared: refused before a byte of it is read.
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${gw.url}/proxy/d1/v1/audio/transcriptions`, { method: "POST", agent: false, headers: { authorization: `Bearer ${token}`, "content-type": `multipart/form-data; boundary=${B}`, "content-length": String(1.5 * MB) } });
      req.on("response", resolve);
      req.on("error", reject);
      req.write("x");
    });
    res.resume();
    expect(res.statusCode).toBe(503);
    expect(res.headers["retry-after"]).toBe("1");

    // Chunked: refused as soon as its chunks pass the budget.
    expect(await upload(gw.url, token, { size: 1.5 * MB, declared: false, chunk: 64 * 1024, everyMs: 2 }).status).toBe(503);

    first.finish();
    expect(await first.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(await gauge(ops)).toBe(0);
    expect(await upload(gw.url, token, { size: 1.5 * MB, declared: false, chunk: 64 * 1024, everyMs: 1 }).status).toBe(200);
  });
});

describe("twenty slow 24 MB uploads stay within the budget and the Helm chart's memory limit", () => {
  it("RSS of a gateway process stays under its baseline + the body budget + a fixed margin", { timeout: 120_000 }, async () => {
    const values = parse(readFileSync(path.join(ROOT, "helm", "patgate", "values.yaml"), "utf8")) as { resources: { limits: { memory: string } } };
    const limitText = values.resources.limits.memory; // e.g. 512Mi
    const helmLimit = Number(/^(\d+)Mi$/.exec(limitText)?.[1] ?? NaN) * MB;
    expect(Number.isFinite(helmLimit)).toBe(true);
    const sized = parseSize("25mb");
    const routeLimit = sized.ok ? sized.bytes : 0;

    const upstream = await startFakeUpstream({ record: false });
    const { file, pepper, dir } = await writeConfig({
      upstreamUrl: upstream.url,
      // The limit the chart gives the container; body_memory stays at its default, 25% of it.
      patch: (cfg) => void (cfg.server = { ...cfg.server, memory_limit: `${helmLimit / MB}mb`, body_timeout: "60s", body_idle_timeout: "30s" }),
    });
    const store = await EmbeddedStore.open(path.join(dir, "data", "patgate.db"));
    await ensureMember(store, "d1", "alice", "admin");
    const { record, token } = mintPat(pepper, { userId: "alice", name: "mem", scopes: [{ domainId: "d1", entityType: "models", entityId: "whisper", operation: "llm_transcription" }], lifetimeMs: 3_600_000 });
    await store.insertPat(record);
    await store.close();
    const gw = await spawnGateway(file);
    try {
      const pid = gw.child.pid ?? 0;
      const rss = (): number => {
        try {
          return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
        } catch {
          return 0; // the process is gone: the exit code below says why
        }
      };
      // Warm the gateway up (one small upload) before taking its baseline.
      expect(await upload(gw.url, token, { size: MB, declared: true, chunk: 64 * 1024, everyMs: 1 }).status).toBe(200);
      const baseline = rss();
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss());
      }, 20);
      const size = 24 * MB;
      expect(size).toBeLessThan(routeLimit);
      const uploads = Array.from({ length: 20 }, (_, i) => upload(gw.url, token, { size, declared: i % 2 === 0, chunk: 256 * 1024, everyMs: 15 }));
      const statuses = await Promise.all(uploads.map((u) => u.status));
      clearInterval(sampler);
      peak = Math.max(peak, rss());
      const budget = Math.floor(helmLimit / 4);
      const margin = 96 * MB;
      const report = `baseline ${Math.round(baseline / MB)} MB, peak ${Math.round(peak / MB)} MB, budget ${budget / MB} MB, statuses ${statuses.join(",")}; ${gw.stderr().slice(-500)}`;
      process.stdout.write(`body memory: ${report}\n`);
      // Some fit the budget, the rest are told to come back; none is lost to a crash.
      expect(gw.child.exitCode, report).toBeNull();
      // -1: an upload refused while its client was still sending, whose connection the gateway closed after
      // its 503 (a big unread body is not drained): the client saw the reset before the answer (HTTP/1.1 has
      // no way to make it read first). Chunked ones are refused mid-body; under load a declared one can be too.
      // Never more than the refused ones: at least one upload got through.
      expect(statuses.every((s) => s === 200 || s === 503 || s === -1), report).toBe(true);
      expect(statuses.filter((s) => s === 200).length, report).toBeGreaterThan(0);
      expect(statuses.filter((s) => s !== 200).length, report).toBeGreaterThan(0);
      expect(peak, report).toBeLessThan(baseline + budget + margin);
      expect(peak, report).toBeLessThan(helmLimit);
    } finally {
      expect(await gw.stop()).toBe(0);
      await upstream.close();
    }
  });
});
