// The access line is serialised by hand (src/telemetry/access.ts): it must be
// exactly the JSON object pino would have written for the same fields, for any
// strings a request can bring (domain, entity and user ids come from clients).
import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { RequestContext } from "../../src/http/context.ts";
import type { Route } from "../../src/routing/table.ts";
import { AccessLog, epochText } from "../../src/telemetry/access.ts";
import { createLogger, DESTINATION } from "../../src/telemetry/logger.ts";
import type { VerifiedPat } from "../../src/tokens/verifier.ts";

function capture(level = "info"): { lines: string[]; access: AccessLog; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger(level, { write: (s: string) => void lines.push(s) });
  return { lines, access: new AccessLog(log), log };
}

interface Shape {
  method: string;
  route: { id: string; operation: string; entityType: string } | null;
  domainId: string;
  entityId: string;
  pat: { id: string; userId: string } | null;
  outcome: string;
  status: number;
  upstream: string;
  upstreamMs: number | null;
  ttfbMs: number | null;
  streaming: boolean;
  responseBytes: number;
  usage: { inputTokens: number; outputTokens: number } | null;
  totalMs: number;
}

function context(s: Shape): { ctx: RequestContext; now: number } {
  const req = { method: s.method } as IncomingMessage;
  const res = { statusCode: s.status } as ServerResponse;
  const ctx = new RequestContext(req, res, "req-1", 1000);
  ctx.route = s.route as Route | null;
  ctx.domainId = s.domainId;
  ctx.entityId = s.entityId;
  ctx.pat = s.pat === null ? null : ({ record: { id: s.pat.id, userId: s.pat.userId } } as unknown as VerifiedPat);
  ctx.outcome = s.outcome;
  ctx.upstreamId = s.upstream;
  if (s.upstreamMs !== null) {
    ctx.upstreamStartedAt = 1001;
    ctx.upstreamHeadersAt = 1001 + s.upstreamMs;
    if (s.ttfbMs !== null) ctx.upstreamFirstByteAt = 1001 + s.ttfbMs;
  }
  ctx.streaming = s.streaming;
  ctx.responseBytes = s.responseBytes;
  ctx.usage = s.usage === null ? null : { ...s.usage, cachedTokens: 0 };
  return { ctx, now: 1000 + s.totalMs };
}

/** The fields as pino would get them from the code this class replaced. */
function expected(ctx: RequestContext, now: number): Record<string, unknown> {
  const round = (ms: number): number => Math.round(ms * 100) / 100;
  const route = ctx.route;
  const pat = ctx.pat;
  return {
    req_id: ctx.requestId,
    method: ctx.req.method,
    route: route === null ? null : route.id,
    domain: ctx.domainId === "" ? null : ctx.domainId,
    pat_id: pat === null ? null : pat.record.id,
    user: pat === null ? null : pat.record.userId,
    operation: route === null ? null : route.operation,
    entity: route === null || ctx.entityId === "" ? null : `${route.entityType}:${ctx.entityId}`,
    decision: ctx.outcome === "ok" || ctx.upstreamStartedAt > 0 ? "allow" : "deny",
    reason: ctx.outcome,
    status: ctx.res.statusCode,
    bytes_out: ctx.responseBytes,
    upstream: ctx.upstreamId === "" ? null : ctx.upstreamId,
    upstream_ms: ctx.upstreamStartedAt > 0 && ctx.upstreamHeadersAt > 0 ? round(ctx.upstreamHeadersAt - ctx.upstreamStartedAt) : null,
    ttfb_ms: ctx.upstreamFirstByteAt > 0 ? round(ctx.upstreamFirstByteAt - ctx.upstreamStartedAt) : null,
    stream: ctx.streaming,
    usage: ctx.usage === null ? null : { input_tokens: ctx.usage.inputTokens, output_tokens: ctx.usage.outputTokens },
    total_ms: round(now - ctx.startedAt),
  };
}

const ALLOWED: Shape = {
  method: "POST",
  route: { id: "openai.chat", operation: "llm_chat_completions", entityType: "models" },
  domainId: "d1",
  entityId: "llama3",
  pat: { id: "0b0e7f0e-1a2b-4c3d-8e4f-001122334455", userId: "alice" },
  outcome: "ok",
  status: 200,
  upstream: "default",
  upstreamMs: 1.234,
  ttfbMs: 1.5,
  streaming: false,
  responseBytes: 1100,
  usage: { inputTokens: 12, outputTokens: 34 },
  totalMs: 2.345,
};

describe("access line", () => {
  it("is the line pino writes for the same fields, byte for byte apart from the time", () => {
    const { lines, access, log } = capture();
    const { ctx, now } = context(ALLOWED);
    access.write(ctx, now);
    access.flush();
    log.info(expected(ctx, now), "access");
    expect(lines).toHaveLength(2);
    const strip = (line: string): string => line.replace(/"time":\d+/, '"time":0');
    expect(strip(lines[0]!)).toBe(strip(lines[1]!));
    expect(lines[0]!.endsWith("}\n")).toBe(true);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, service: "patgate", msg: "access", pat_id: ALLOWED.pat!.id, total_ms: 2.35, upstream_ms: 1.23 });
  });

  it("writes nulls for a request denied before a route or token was known", () => {
    const { lines, access } = capture();
    const { ctx, now } = context({ ...ALLOWED, route: null, pat: null, domainId: "", entityId: "", outcome: "no_route", status: 404, upstream: "", upstreamMs: null, ttfbMs: null, usage: null, responseBytes: 0 });
    access.write(ctx, now);
    access.flush();
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ route: null, domain: null, pat_id: null, user: null, operation: null, entity: null, decision: "deny", reason: "no_route", status: 404, upstream: null, upstream_ms: null, ttfb_ms: null, usage: null });
  });

  it("writes nothing when the level is above info", () => {
    const { lines, access } = capture("warn");
    const { ctx, now } = context(ALLOWED);
    access.write(ctx, now);
    access.flush();
    expect(lines).toEqual([]);
  });

  it("hands the lines of one event-loop turn to the destination as one write at the end of the turn", async () => {
    const { lines, access } = capture();
    for (let i = 0; i < 3; i++) {
      const { ctx, now } = context({ ...ALLOWED, entityId: `m${i}` });
      access.write(ctx, now);
    }
    expect(lines).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.split("\n").filter((l) => l !== "").map((l) => (JSON.parse(l) as { entity: string }).entity)).toEqual(["models:m0", "models:m1", "models:m2"]);
  });

  it("writes at once, without waiting for the turn to end, once 16 KB are pending", () => {
    const { lines, access } = capture();
    const { ctx, now } = context({ ...ALLOWED, entityId: "x".repeat(200) });
    let written = 0;
    while (lines.length === 0) {
      access.write(ctx, now);
      written++;
    }
    const got = lines.join("").split("\n").filter((l) => l !== "");
    expect(got).toHaveLength(written);
    expect(lines[0]!.length).toBeGreaterThanOrEqual(16_384);
  });

  it("with the shipped buffering destination, hands lines over in 16 KB batches, and a lone line soon after", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-access-"));
    const file = path.join(dir, "out.log");
    const dest = pino.destination({ ...DESTINATION, dest: file, sync: true });
    const writes: number[] = [];
    const write = dest.write.bind(dest);
    dest.write = (s: string) => {
      writes.push(s.length);
      return write(s);
    };
    const log = createLogger("info", dest);
    const access = new AccessLog(log);
    try {
      await new Promise((resolve) => dest.once("ready", resolve));
      // Lines ending in many turns: one hand-over per 16 KB, not one per turn.
      const total = 200;
      for (let i = 0; i < total; i++) {
        const { ctx, now } = context({ ...ALLOWED, entityId: `m${i}` });
        access.write(ctx, now);
        await new Promise((resolve) => setImmediate(resolve));
      }
      // A line logged by pino meanwhile is written too (ordering across the two is by time only).
      log.info({ event: "other" }, "not an access line");
      const deadline = Date.now() + 5_000;
      const lines = async (): Promise<string[]> => (await readFile(file, "utf8")).split("\n").filter((l) => l !== "");
      while ((await lines()).length < total + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const got = (await lines()).map((l) => JSON.parse(l) as { msg: string; entity?: string });
      expect(got.filter((r) => r.msg === "access").map((r) => r.entity)).toEqual(Array.from({ length: total }, (_, i) => `models:m${i}`));
      expect(got.filter((r) => r.msg !== "access")).toHaveLength(1);
      const accessWrites = writes.length - 1;
      const bytes = Buffer.byteLength(await readFile(file, "utf8"));
      expect(accessWrites).toBeLessThanOrEqual(Math.ceil(bytes / 16_384) + 2);
      expect(accessWrites).toBeGreaterThanOrEqual(2);

      // At low traffic a single line is not held until 16 KB have gathered.
      const before = (await lines()).length;
      const t0 = Date.now();
      const { ctx, now } = context({ ...ALLOWED, entityId: "lonely" });
      access.write(ctx, now);
      while ((await lines()).length === before && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 10));
      expect((await lines()).at(-1)).toContain('"entity":"models:lonely"');
    } finally {
      dest.end();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("round-trips any client-supplied strings and numbers exactly as pino would", () => {
    const text = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ maxLength: 40 }), fc.constantFrom("", "é", '"', "\\", "\u007f", "\u2028"));
    // Times as they come (sub-millisecond doubles), and the edges of rounding to hundredths.
    const ms = fc.option(fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(0, 0.004, 0.005, 0.0049999, -0.005)).map(([h, d]) => Math.max(0, h / 100 + d)), fc.constantFrom(0, 0.005, 0.015, 1.005, 99.995, 1e16, 2 ** 53)), { nil: null });
    const shape = fc.record({
      method: fc.constantFrom("GET", "POST", "DELETE"),
      route: fc.option(fc.record({ id: text, operation: text, entityType: text }), { nil: null }),
      domainId: text,
      entityId: text,
      pat: fc.option(fc.record({ id: text, userId: text }), { nil: null }),
      outcome: text,
      status: fc.integer({ min: 100, max: 599 }),
      upstream: text,
      upstreamMs: ms,
      ttfbMs: ms,
      streaming: fc.boolean(),
      responseBytes: fc.oneof(fc.nat(), fc.constantFrom(0, 9, 10, 99, 100, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e21)),
      usage: fc.option(fc.record({ inputTokens: fc.oneof(fc.nat(), fc.constantFrom(1e300, -1)), outputTokens: fc.nat() }), { nil: null }),
      totalMs: fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.constantFrom(0, 0.005, 1.005, 1e20)),
    });
    fc.assert(
      fc.property(shape, (s) => {
        const { lines, access, log } = capture();
        const { ctx, now } = context(s);
        access.write(ctx, now);
        access.flush();
        log.info(expected(ctx, now), "access");
        const [ours, theirs] = lines.map((l) => l.replace(/"time":\d+/, '"time":0'));
        expect(ours).toBe(theirs);
        expect(ours!.split("\n")).toHaveLength(2);
      }),
      { numRuns: 3000 },
    );
  });

  it("writes each line from its own request when the same PATs come back with other routes, domains, models and methods", () => {
    // One log for the whole sequence, and the same record and route objects again and again: the middle of
    // a PAT's last line is kept (access.ts Middle) and must be rebuilt whenever any field it holds differs.
    const records = [{ id: "p-1", userId: "alice" }, { id: "p-2", userId: "bob" }, { id: "p-3", userId: "alice" }];
    const routes = [
      { id: "openai.chat", operation: "llm_chat_completions", entityType: "models" },
      { id: "openai.embeddings", operation: "llm_embeddings", entityType: "models" },
      { id: "ollama.tags", operation: "list_models", entityType: "none" },
    ];
    const pick = fc.record({
      pat: fc.constantFrom(0, 1, 2, -1),
      route: fc.constantFrom(0, 1, 2, -1),
      domainId: fc.constantFrom("d1", "d2", "", "d\"1"),
      entityId: fc.constantFrom("llama3", "gpt-4o", "", "m\u2028"),
      method: fc.constantFrom("POST", "GET"),
    });
    fc.assert(
      fc.property(fc.array(pick, { minLength: 1, maxLength: 30 }), (seq) => {
        const { lines, access, log } = capture();
        for (const p of seq) {
          const { ctx, now } = context({ ...ALLOWED, route: p.route === -1 ? null : routes[p.route]!, domainId: p.domainId, entityId: p.entityId, method: p.method, pat: null });
          ctx.pat = p.pat === -1 ? null : ({ record: records[p.pat] } as unknown as VerifiedPat);
          access.write(ctx, now);
          access.flush();
          log.info(expected(ctx, now), "access");
        }
        const strip = (line: string): string => line.replace(/"time":\d+/, '"time":0');
        for (let i = 0; i < lines.length; i += 2) expect(strip(lines[i]!)).toBe(strip(lines[i + 1]!));
        expect(lines).toHaveLength(seq.length * 2);
      }),
      { numRuns: 300 },
    );
  });

  it("writes the time as String would, every millisecond of any era", () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }), fc.constantFrom(0, 999_999, 1_000_000, 1_000_001, 1_733_000_000_000, 1_733_000_099_999, 2 ** 53 - 1, -1, 1.5)), (t) => {
        expect(epochText(t)).toBe(String(t));
      }),
      { numRuns: 5000 },
    );
  });
});
