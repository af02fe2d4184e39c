/**
 * What the gateway reads in Realtime frames, and the one frame it writes.
 * Pure functions over one frame: the session relay (session.ts) decides what
 * to do with the answer.
 *
 * Client frames are read as the upstream would read them: every frame is
 * checked for its `type`, and a `session.update` (or the older
 * `transcription_session.update`) for the models it names, with the same
 * scanner and the same ambiguity rules as a JSON request body (a duplicate,
 * escaped or differently-cased key is refused, never guessed at).
 */
import { isUtf8 } from "node:buffer";
import { Denial, ERRORS, type ErrorCode } from "../errors.ts";
import { scanJson } from "../routing/json-scan.ts";
import { validateEntityId } from "../routing/entity.ts";
import type { Usage } from "../upstream/usage.ts";

/** The operation a transcription model named inside a session is authorized as. */
export const TRANSCRIPTION_OPERATION = "llm_transcription";

const UPDATES: ReadonlySet<string> = new Set(["session.update", "transcription_session.update"]);
// Where a session names its transcription model: the GA shape, then the beta one.
const TRANSCRIPTION_PATHS: readonly (readonly string[])[] = [
  ["session", "audio", "input", "transcription", "model"],
  ["session", "input_audio_transcription", "model"],
];
const MODEL_PATH = ["session", "model"] as const;

/** The models a client frame names: null fields are not named by it. */
export interface SessionModels {
  readonly model: string | null;
  /** The transcription model and the field path it was read from. */
  readonly transcription: { readonly id: string; readonly field: string } | null;
}

/** Nothing to check: the frame names no model (most frames: audio, items, responses). */
export const NO_MODELS: SessionModels = Object.freeze({ model: null, transcription: null });

type Found = { readonly ok: true; readonly value: Buffer | null } | { readonly ok: false; readonly denial: Denial };

/** The raw value at a path of object keys, null when some key is absent or a value on the way is not an object. */
function valueAt(frame: Buffer, path: readonly string[]): Found {
  let cur = frame;
  for (const key of path) {
    const s = scanJson(cur, key);
    if (s === "invalid") return { ok: false, denial: new Denial("bad_json", { message: "The event is not valid JSON." }) };
    if (s === "not_object" || s.matches === 0) return { ok: true, value: null };
    const where = path.slice(0, path.indexOf(key) + 1).join(".");
    if (s.matches > 1 || s.exact === 0) return { ok: false, denial: new Denial("entity_ambiguous", { param: where, message: `The event names "${where}" more than once or under another spelling; send it exactly once.` }) };
    cur = cur.subarray(s.valueStart, s.valueEnd);
  }
  return { ok: true, value: cur };
}

function stringAt(frame: Buffer, path: readonly string[]): { ok: true; id: string | null } | { ok: false; denial: Denial } {
  const f = valueAt(frame, path);
  if (!f.ok) return f;
  if (f.value === null) return { ok: true, id: null };
  const field = path.join(".");
  const parsed: unknown = JSON.parse(f.value.toString("utf8"));
  // An explicit null leaves the upstream's choice as it was.
  if (parsed === null) return { ok: true, id: null };
  const e = validateEntityId(parsed, `The field "${field}"`);
  return e.ok ? { ok: true, id: e.id } : { ok: false, denial: new Denial(e.code, { message: e.message, param: field }) };
}

/**
 * The models a client frame names, or the refusal for a frame the gateway
 * cannot read as the upstream would (not UTF-8, not JSON, an ambiguous key).
 */
export function sessionModels(frame: Buffer): SessionModels | Denial {
  if (!isUtf8(frame)) return new Denial("bad_json", { message: "The event is not valid UTF-8." });
  const t = stringAt(frame, ["type"]);
  if (!t.ok) return t.denial;
  if (t.id === null || !UPDATES.has(t.id)) return NO_MODELS;
  const m = stringAt(frame, MODEL_PATH);
  if (!m.ok) return m.denial;
  let transcription: SessionModels["transcription"] = null;
  for (const path of TRANSCRIPTION_PATHS) {
    const tr = stringAt(frame, path);
    if (!tr.ok) return tr.denial;
    if (tr.id === null) continue;
    if (transcription !== null && transcription.id !== tr.id) return new Denial("entity_ambiguous", { param: path.join("."), message: "The event names two different transcription models; send one." });
    transcription = { id: tr.id, field: path.join(".") };
  }
  return m.id === null && transcription === null ? NO_MODELS : { model: m.id, transcription };
}

interface ResponseDone {
  response?: { usage?: { input_tokens?: unknown; output_tokens?: unknown; input_token_details?: { cached_tokens?: unknown } } };
}

const count = (v: unknown): number => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0);

/** The usage a `response.done` event reports (the upstream's word), null for any other frame. */
export function responseDoneUsage(frame: Buffer): Usage | null {
  // Cheap test first: most upstream frames are audio deltas.
  if (frame.indexOf('"response.done"') === -1) return null;
  let e: ResponseDone & { type?: unknown };
  try {
    e = JSON.parse(frame.toString("utf8")) as ResponseDone & { type?: unknown };
  } catch {
    return null;
  }
  const u = e.type === "response.done" ? e.response?.usage : undefined;
  if (u === undefined || u === null) return null;
  return { inputTokens: count(u.input_tokens), outputTokens: count(u.output_tokens), cachedTokens: count(u.input_token_details?.cached_tokens) };
}

/** Adds one response's usage to a session's running total. */
export function addUsage(total: Usage | null, u: Usage): Usage {
  if (total === null) return u;
  return { inputTokens: total.inputTokens + u.inputTokens, outputTokens: total.outputTokens + u.outputTokens, cachedTokens: total.cachedTokens + u.cachedTokens };
}

let seq = 0;

/**
 * A Realtime `error` server event for a catalogue code (the shape the SDKs
 * raise: `{type:"error", event_id, error:{type, code, message, param, event_id}}`);
 * `eventId` names the client event it answers, when it answers one.
 */
export function errorEvent(code: ErrorCode, message?: string, param?: string | null, eventId?: string | null): string {
  return JSON.stringify({
    type: "error",
    event_id: `evt_patgate_${process.pid.toString(36)}_${(++seq).toString(36)}`,
    error: { type: ERRORS[code].type, code, message: message ?? ERRORS[code].message, param: param ?? null, event_id: eventId ?? null },
  });
}

/** The `event_id` of a client event, for the error that answers it (null when absent or not a plain string). */
export function clientEventId(frame: Buffer): string | null {
  const f = stringAt(frame, ["event_id"]);
  return f.ok ? f.id : null;
}
