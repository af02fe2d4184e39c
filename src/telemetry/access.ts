import pino, { type Logger } from "pino";
import type { RequestContext } from "../http/context.ts";
import type { Route } from "../routing/table.ts";
import { redactPats } from "../tokens/format.ts";

interface Destination {
  write(line: string): unknown;
  /** sonic-boom: what it holds back before writing, and how it writes that out now. */
  minLength?: unknown;
  flush?: unknown;
}

/**
 * Writes the one access line of every data-plane request. Never the token:
 * only the PAT id.
 *
 * The line is the JSON object pino would write for `log.info(fields, "access")`
 * (same level, time, bindings, field order and destination), serialised here by
 * hand: every field is named below, so pino's generic walk over the object
 * (serializers, redaction paths, per-key dispatch) is pure overhead, and on the
 * data plane it cost more than verifying the token.
 *
 * Lines are handed to the destination in batches, one write per batch:
 * - A destination that buffers by itself (pino.destination, i.e. sonic-boom,
 *   with a `minLength`) writes nothing out below that length until its
 *   periodic flush anyway, and its write() measures the UTF-8 length of its
 *   whole pending buffer on every call: per line, that cost more than building
 *   the line. So lines gather here until 16 KB, or for at most HOLD_MS, after
 *   which they are handed over and the destination flushed. A line reaches the
 *   file descriptor about as soon as before (sonic-boom alone held it up to
 *   its 1 s periodic flush), but other log lines written meanwhile can come
 *   before it.
 * - Any other destination (a test's stream, a transport) gets the lines that
 *   end in the same turn of the event loop as one write at the end of that
 *   turn (or sooner, past 16 KB).
 */
export class AccessLog {
  readonly #log: Logger;
  readonly #stream: Destination;
  /** `{"level":30,"time":` */
  readonly #head: string;
  /** The logger's bindings (e.g. `,"service":"patgate"`), then the first field's key. */
  readonly #afterTime: string;
  /** Whether the destination buffers by itself (see above): lines are then held here by time, not by turn. */
  readonly #buffered: boolean;
  #pending = "";
  #scheduled = false;
  /** The last line's time and its text: lines that end in the same millisecond share it. */
  #lastTime = -1;
  #lastTimeText = "";
  /** Per PAT record (NO_PAT: none), the middle of its last line and what it was built from. */
  readonly #middles = new WeakMap<object, Middle>();

  constructor(log: Logger) {
    this.#log = log;
    const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
    if (typeof stream !== "object" || stream === null || typeof (stream as Destination).write !== "function") {
      throw new TypeError("the logger has no destination stream");
    }
    this.#stream = stream as Destination;
    this.#buffered = typeof this.#stream.minLength === "number" && this.#stream.minLength > 0 && typeof this.#stream.flush === "function";
    const chindings = (log as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym];
    this.#head = `{"level":${log.levels.values["info"] ?? 30},"time":`;
    this.#afterTime = `${typeof chindings === "string" ? chindings : ""},"req_id":`;
  }

  write(ctx: RequestContext, now: number): void {
    if (!this.#log.isLevelEnabled("info")) return;
    this.#pending += this.line(ctx, now, Date.now());
    if (this.#pending.length >= FLUSH_AT) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      if (this.#buffered) setTimeout(this.#flushHeld, HOLD_MS).unref();
      else setImmediate(this.#flushTurn);
    }
  }

  /** Hands every pending line to the destination (also called before the logger is flushed at shutdown). */
  flush(): void {
    if (this.#pending === "") return;
    const lines = this.#pending;
    this.#pending = "";
    this.#stream.write(lines);
  }

  readonly #flushTurn = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  readonly #flushHeld = (): void => {
    this.#scheduled = false;
    if (this.#pending === "") return;
    this.flush();
    (this.#stream.flush as () => void).call(this.#stream);
  };

  /** The line for `ctx`, ending in a newline (`time` is the epoch-millisecond timestamp to write). */
  line(ctx: RequestContext, now: number, time: number): string {
    const usage = ctx.usage;
    return (
      this.#head +
      this.#timeText(time) +
      this.#afterTime +
      str(ctx.requestId) +
      this.#middle(ctx) +
      ',"decision":' +
      (ctx.outcome === "ok" || ctx.upstreamStartedAt > 0 ? '"allow"' : '"deny"') +
      ',"reason":' +
      str(ctx.outcome) +
      ',"status":' +
      num(ctx.res.statusCode) +
      ',"bytes_out":' +
      num(ctx.responseBytes) +
      ',"upstream":' +
      (ctx.upstreamId === "" ? "null" : str(ctx.upstreamId)) +
      ',"upstream_ms":' +
      (ctx.upstreamStartedAt > 0 && ctx.upstreamHeadersAt > 0 ? ms(ctx.upstreamHeadersAt - ctx.upstreamStartedAt) : "null") +
      ',"ttfb_ms":' +
      (ctx.upstreamFirstByteAt > 0 ? ms(ctx.upstreamFirstByteAt - ctx.upstreamStartedAt) : "null") +
      ',"stream":' +
      (ctx.streaming ? "true" : "false") +
      ',"usage":' +
      (usage === null ? "null" : `{"input_tokens":${num(usage.inputTokens)},"output_tokens":${num(usage.outputTokens)}}`) +
      ',"total_ms":' +
      ms(now - ctx.startedAt) +
      ',"msg":"access"}\n'
    );
  }

  #timeText(time: number): string {
    if (time !== this.#lastTime) {
      this.#lastTime = time;
      this.#lastTimeText = epochText(time);
    }
    return this.#lastTimeText;
  }

  #middle(ctx: RequestContext): string {
    const pat = ctx.pat;
    const route = ctx.route;
    const method = ctx.req.method ?? "";
    const key = pat === null ? NO_PAT : pat.record;
    const m = this.#middles.get(key);
    if (m !== undefined && m.route === route && m.domainId === ctx.domainId && m.entityId === ctx.entityId && m.method === method) return m.text;
    // Joined, not added up: a flat string, which every line then copies in one piece instead of walking a rope of fourteen.
    const text = [
      ',"method":',
      str(method),
      ',"route":',
      route === null ? "null" : str(route.id),
      ',"domain":',
      ctx.domainId === "" ? "null" : str(redactPats(ctx.domainId)),
      ',"pat_id":',
      pat === null ? "null" : str(pat.record.id),
      ',"user":',
      pat === null ? "null" : str(pat.record.userId),
      ',"operation":',
      route === null ? "null" : str(route.operation),
      ',"entity":',
      route === null || ctx.entityId === "" ? "null" : str(`${route.entityType}:${redactPats(ctx.entityId)}`),
    ].join("");
    if (m === undefined) this.#middles.set(key, { route, domainId: ctx.domainId, entityId: ctx.entityId, method, text });
    else {
      m.route = route;
      m.domainId = ctx.domainId;
      m.entityId = ctx.entityId;
      m.method = method;
      m.text = text;
    }
    return text;
  }
}

/** The key of the line middles of requests without a PAT. */
const NO_PAT = {};

/**
 * The fields from "method" to "entity", which stay the same from one request
 * of a PAT to the next while its client keeps to one route, domain and
 * model: kept per PAT record with what they were built from, and rebuilt when
 * any of it differs (comparing is a few pointer or short string checks;
 * building escapes and joins seven fields).
 */
interface Middle {
  route: Route | null;
  domainId: string;
  entityId: string;
  method: string;
  text: string;
}

/** Pending bytes (UTF-16 units) that are handed to the destination at once. */
const FLUSH_AT = 16_384;

/** How long lines may wait here for a buffering destination. */
const HOLD_MS = 250;

/** A JSON string literal (quotes, backslashes, control characters and lone surrogates escaped). */
function str(s: string): string {
  // Ids and codes are printable ASCII with nothing to escape: quoting them is all JSON.stringify would do.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/** "000" to "999". */
const THREE = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));

/**
 * `String(ms)` for an epoch-millisecond time, from a table: a 13-digit number
 * is past V8's small integers, and its text was worked out by the runtime on
 * every line (about 1,500 instructions; so is any number the number-string
 * cache has not seen, and the low digits change every millisecond), while
 * the millions of milliseconds stay the same for 16 minutes.
 */
export function epochText(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 1e6) return String(ms);
  const high = Math.floor(ms / 1e6);
  const low = ms - high * 1e6;
  const thousands = Math.floor(low / 1000);
  return String(high) + (THREE[thousands] as string) + (THREE[low - thousands * 1000] as string);
}

/** A JSON number; null for what JSON cannot hold (as JSON.stringify does). */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : "null";
}

/**
 * Milliseconds rounded to hundredths, as `num(Math.round(ms * 100) / 100)`
 * writes them, from the integer count of hundredths: small integers have
 * cached decimal forms, while a fraction goes through the shortest-double
 * printer on every line.
 */
function ms(value: number): string {
  const hundredths = Math.round(value * 100);
  if (!Number.isSafeInteger(hundredths) || hundredths < 0) return num(hundredths / 100);
  const whole = Math.floor(hundredths / 100);
  const frac = hundredths - whole * 100;
  if (frac === 0) return String(whole);
  return frac % 10 === 0 ? `${whole}.${frac / 10}` : `${whole}.${frac < 10 ? "0" : ""}${frac}`;
}
