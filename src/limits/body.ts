/**
 * What a request body says about the tokens it may use, and the two edits the
 * gateway may make to it after the decision: lowering the output limit to what
 * a quota leaves (the clamp), and asking an OpenAI stream for its usage chunk.
 *
 * "Authorize exactly what is forwarded": the decision was taken on the model
 * and on the body as received; an edit only inserts or replaces the value of
 * one top-level key the decision did not read (max_tokens, stream_options),
 * byte for byte elsewhere, and never when that key appears more than once in
 * any spelling an upstream could fold to it (json-scan.ts counts them).
 */
import { scanJson, type FieldScan } from "../routing/json-scan.ts";
import type { Route } from "../routing/table.ts";

/** The LLM API a route speaks, as far as tokens go. */
export interface TokenApi {
  /** Whether its answer is generated text (an output reservation applies). */
  readonly generates: boolean;
  /** Top-level fields that cap the output, in the order the upstream prefers them. */
  readonly maxFields: readonly string[];
  /** For Ollama: the cap lives in `options.num_predict`. */
  readonly nested: string | null;
  /** OpenAI chat/completions streams: usage comes only when `stream_options.include_usage` is true. */
  readonly askUsage: boolean;
}

const CHAT: TokenApi = { generates: true, maxFields: ["max_completion_tokens", "max_tokens"], nested: null, askUsage: true };
const COMPLETIONS: TokenApi = { generates: true, maxFields: ["max_tokens"], nested: null, askUsage: true };
const RESPONSES: TokenApi = { generates: true, maxFields: ["max_output_tokens"], nested: null, askUsage: false };
const OLLAMA: TokenApi = { generates: true, maxFields: [], nested: "num_predict", askUsage: false };
const INPUT_ONLY: TokenApi = { generates: false, maxFields: [], nested: null, askUsage: false };

const BY_PATH: ReadonlyMap<string, TokenApi> = new Map([
  ["/v1/chat/completions", CHAT],
  ["/v1/completions", COMPLETIONS],
  ["/v1/responses", RESPONSES],
  ["/api/chat", OLLAMA],
  ["/api/generate", OLLAMA],
  ["/v1/embeddings", INPUT_ONLY],
  ["/api/embed", INPUT_ONLY],
  ["/api/embeddings", INPUT_ONLY],
]);

/** The token API of a route (by its path template), INPUT_ONLY for anything else. */
export function tokenApi(route: Route): TokenApi {
  return BY_PATH.get(route.path) ?? INPUT_ONLY;
}

/** A rough upper estimate of a body's input tokens: a token is about four bytes of text, and JSON adds more. */
export function estimateInput(bytes: number): number {
  return Math.ceil(bytes / 4);
}

/** What the body asks for: its output cap (null: none given; -1: given twice or not a whole number), and whether it streams. */
export interface BodyTokens {
  readonly maxTokens: number | null;
  /** The scan of the field that holds the cap (for the clamp's edit), null when there is none. */
  readonly field: string | null;
  readonly scan: FieldScan | null;
}

const TOKENS_KEY = Buffer.from('_tokens"');
const STREAM_KEY = Buffer.from('"stream"');
const NONE: BodyTokens = { maxTokens: null, field: null, scan: null };
const AMBIGUOUS: BodyTokens = { maxTokens: -1, field: null, scan: null };

/**
 * The output cap a JSON body names. `body` was validated as JSON by the entity
 * step. `exact`: every spelling an upstream could fold to the field counts
 * (needed before an edit); else a body without the plain spelling is taken
 * to name none (only the reservation's estimate rests on it).
 */
export function bodyTokens(api: TokenApi, body: Buffer, exact: boolean): BodyTokens {
  if (api.nested !== null) {
    const opts = scanJson(body, "options");
    if (typeof opts === "string" || opts.matches === 0) return NONE;
    if (opts.matches > 1 || opts.exact !== 1) return AMBIGUOUS;
    const inner = body.subarray(opts.valueStart, opts.valueEnd);
    if (inner[0] !== 0x7b) return NONE;
    return cap(inner, api.nested, null);
  }
  if (!exact) {
    // Most bodies name no cap: one search for the plain spellings' common tail rules that out before a scan.
    const quick = quickCap(api, body);
    if (quick !== null) return quick;
  }
  for (const f of api.maxFields) {
    const r = cap(body, f, f);
    if (r !== NONE) return r;
  }
  return NONE;
}

/**
 * For an estimate only (never an edit): the cap read where its key first
 * appears as a key (`"max_tokens"` then `:`), with no scan; NONE when no
 * key of the kind appears at all. Inside a JSON
 * string every quote is escaped, so the key's closing `s"` cannot be string
 * text; a nested key of the same name would be misread, which costs only the
 * estimate (reconciled at the end). Null: not plain enough, scan instead.
 */
function quickCap(api: TokenApi, body: Buffer): BodyTokens | null {
  // Every cap key ends in `_tokens"`: find those and look back for which key it is (one search, not one per key).
  const first = body.indexOf(TOKENS_KEY);
  if (first === -1) return NONE;
  for (let end = first, tries = 0; end !== -1 && tries < 4; end = body.indexOf(TOKENS_KEY, end + 1), tries++) {
    const stop = end + TOKENS_KEY.length;
    for (const f of api.maxFields) {
      const needle = QUICK_KEYS.get(f) as Buffer;
      const start = stop - needle.length;
      if (start < 0 || !bytesAt(body, start, needle)) continue;
      let i = stop;
      while (body[i] === 0x20) i++;
      if (body[i] !== 0x3a) return null;
      i++;
      while (body[i] === 0x20) i++;
      let n = 0;
      let digits = 0;
      for (let c = body[i]; c !== undefined && c >= 0x30 && c <= 0x39; c = body[++i]) {
        n = n * 10 + (c - 0x30);
        digits++;
      }
      if (digits === 0 || digits > 12) return null;
      return { maxTokens: n, field: null, scan: null };
    }
  }
  return null;
}

/** Whether `needle` (a key of a dozen bytes) sits in `body` at `at`: a loop here costs less than Buffer#compare's call into C++. */
function bytesAt(body: Buffer, at: number, needle: Buffer): boolean {
  for (let i = 0; i < needle.length; i++) if (body[at + i] !== needle[i]) return false;
  return true;
}

const QUICK_KEYS = new Map(["max_completion_tokens", "max_tokens", "max_output_tokens"].map((k) => [k, Buffer.from(`"${k}"`)]));

function cap(body: Buffer, field: string, top: string | null): BodyTokens {
  const s = scanJson(body, field);
  if (typeof s === "string" || s.matches === 0) return NONE;
  if (s.matches > 1 || s.exact !== 1 || s.valueIsString) return AMBIGUOUS;
  const n = Number(body.toString("latin1", s.valueStart, s.valueEnd));
  if (!Number.isSafeInteger(n) || n < 0) return AMBIGUOUS;
  return { maxTokens: n, field: top, scan: s };
}

/** Whether `"stream": true` is at the top level (once). */
export function streams(body: Buffer): boolean {
  if (body.indexOf(STREAM_KEY) === -1) return false;
  const s = scanJson(body, "stream");
  return typeof s !== "string" && s.matches === 1 && s.exact === 1 && body.toString("latin1", s.valueStart, s.valueEnd) === "true";
}

/**
 * The body with its output cap set to `max` (replaced where the body names it,
 * else inserted as the API's first cap field); null when it cannot be edited
 * safely (ambiguous, Ollama's nested options present but not plain).
 */
export function withMaxTokens(api: TokenApi, body: Buffer, t: BodyTokens, max: number): Buffer | null {
  if (t.maxTokens === -1) return null;
  if (t.scan !== null && t.field !== null) return splice(body, t.scan.valueStart, t.scan.valueEnd, String(max));
  if (api.nested !== null) {
    // Ollama: the cap is options.num_predict; without an `options` key one is added.
    const opts = scanJson(body, "options");
    if (typeof opts === "string") return null;
    if (opts.matches === 0) return insertTop(body, `"options":{"${api.nested}":${max}}`);
    if (opts.matches > 1 || opts.exact !== 1 || body[opts.valueStart] !== 0x7b) return null;
    const inner = scanJson(body.subarray(opts.valueStart, opts.valueEnd), api.nested);
    if (typeof inner === "string") return null;
    if (inner.matches === 0) return insertAt(body, opts.valueStart + 1, `"${api.nested}":${max}`, body.subarray(opts.valueStart + 1, opts.valueEnd - 1).toString("latin1").trim() !== "");
    if (inner.matches > 1 || inner.exact !== 1) return null;
    return splice(body, opts.valueStart + inner.valueStart, opts.valueStart + inner.valueEnd, String(max));
  }
  const field = api.maxFields[0];
  return field === undefined ? null : insertTop(body, `"${field}":${max}`);
}

/**
 * The body of a stream with `stream_options.include_usage: true` added, or
 * null when the client asked for usage already (or the body cannot be edited
 * safely). The client did not ask: the gateway drops that chunk again.
 */
export function withUsageAsked(body: Buffer): Buffer | null {
  const so = scanJson(body, "stream_options");
  if (typeof so === "string") return null;
  if (so.matches === 0) return insertTop(body, `"stream_options":{"include_usage":true}`);
  if (so.matches > 1 || so.exact !== 1 || body[so.valueStart] !== 0x7b) return null;
  const inner = body.subarray(so.valueStart, so.valueEnd);
  const iu = scanJson(inner, "include_usage");
  if (typeof iu === "string" || iu.matches > 1 || (iu.matches === 1 && iu.exact !== 1)) return null;
  if (iu.matches === 0) return insertAt(body, so.valueStart + 1, `"include_usage":true`, inner.subarray(1, inner.length - 1).toString("latin1").trim() !== "");
  const v = inner.toString("latin1", iu.valueStart, iu.valueEnd);
  if (v === "true") return null;
  return splice(body, so.valueStart + iu.valueStart, so.valueStart + iu.valueEnd, "true");
}

function insertTop(body: Buffer, member: string): Buffer | null {
  const open = body.indexOf(0x7b);
  if (open === -1) return null;
  const close = body.lastIndexOf(0x7d);
  return insertAt(body, open + 1, member, body.subarray(open + 1, close).toString("latin1").trim() !== "");
}

function insertAt(body: Buffer, at: number, member: string, more: boolean): Buffer {
  return Buffer.concat([body.subarray(0, at), Buffer.from(more ? member + "," : member, "latin1"), body.subarray(at)]);
}

function splice(body: Buffer, start: number, end: number, text: string): Buffer {
  return Buffer.concat([body.subarray(0, start), Buffer.from(text, "latin1"), body.subarray(end)]);
}
