/** The management API's HTTP edges: request target, query, JSON body in; JSON and errors out. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ERRORS, errorBody, retryHeaders } from "../errors.ts";
import { hasBody, readBody } from "../http/body.ts";
import { deny, Denial, type Result } from "./reply.ts";

/** Request bodies of the management API are small JSON documents. */
export const BODY_LIMIT = 64 * 1024;

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
// Controls and separators that no id in a path may contain once decoded.
const BAD_DECODED = /[\p{Cc}/\\]/u;
const JSON_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;|$)/i;

export interface Target {
  /** Percent-decoded path segments. */
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
}

/** The path split into decoded segments, and the query; null when the path is not canonical (→ 400). */
export function parseTarget(url: string): Target | null | "not_found" {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
  if (!path.startsWith("/")) return null;
  const raw = path.slice(1).split("/");
  // A trailing slash or `//` names no resource here; it is not guessed at.
  if (raw.some((s) => s === "")) return "not_found";
  const segments: string[] = [];
  for (const s of raw) {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      return null;
    }
    if (d === "." || d === ".." || BAD_DECODED.test(d)) return null;
    segments.push(d);
  }
  return { segments, query };
}

/** A query parameter given at most once; absent → undefined. */
export function queryParam(query: URLSearchParams, name: string): Result<string | undefined> {
  const all = query.getAll(name);
  if (all.length > 1) return deny("invalid_field", `The query parameter "${name}" is given more than once.`, name);
  return { ok: true, value: all[0] };
}

/** A whole number query parameter within [min, max], or `def` when absent. */
export function queryInt(query: URLSearchParams, name: string, def: number, min: number, max: number): Result<number> {
  const r = queryParam(query, name);
  if (!r.ok) return r;
  if (r.value === undefined) return { ok: true, value: def };
  const n = /^\d{1,9}$/.test(r.value) ? Number(r.value) : NaN;
  if (!(n >= min && n <= max)) return deny("invalid_field", `The query parameter "${name}" must be a whole number from ${min} to ${max}.`, name);
  return { ok: true, value: n };
}

// Management bodies are small JSON: a sender this slow is stuck or hostile.
const BODY_TIMEOUT_MS = 30_000;

/** A read body, or why not; `close` when part of it may still be unread on the connection. */
export type BodyResult = { readonly ok: true; readonly body: Record<string, unknown> } | (Denial & { readonly close: boolean });

/** The JSON object body; `{}` when there is none. Non-JSON types → 415, oversize → 413, bad JSON → 400. */
export async function readJsonBody(req: IncomingMessage): Promise<BodyResult> {
  if (!hasBody(req)) return { ok: true, body: {} };
  const type = req.headers["content-type"];
  if (type === undefined || !JSON_TYPE.test(type)) {
    return { ...deny("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'."), close: true };
  }
  const body = await readBody(req, BODY_LIMIT, BODY_TIMEOUT_MS);
  if (body instanceof Denial) {
    if (body.error === "body_too_large") return { ...deny("body_too_large", `The request body is larger than ${BODY_LIMIT / 1024} KiB.`), close: true };
    return { ...body, close: true };
  }
  if (body.length === 0) return { ok: true, body: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(UTF8.decode(body));
  } catch {
    return { ...deny("bad_json"), close: false };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { ...deny("bad_json", "The request body must be a JSON object."), close: false };
  return { ok: true, body: parsed as Record<string, unknown> };
}

const BASE_HEADERS = { "content-type": "application/json", "cache-control": "no-store" } as const;

/** A JSON success response (no body for 204). */
export function sendJson(res: ServerResponse, requestId: string, status: number, body: unknown, location?: string): void {
  const headers: Record<string, string | number> = { ...BASE_HEADERS, "x-request-id": requestId };
  if (location !== undefined) headers.location = location;
  if (status === 204) {
    delete headers["content-type"];
    res.writeHead(204, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  headers["content-length"] = Buffer.byteLength(text);
  res.writeHead(status, headers);
  res.end(text);
}

/**
 * An error in the OpenAI envelope. 401s carry WWW-Authenticate (RFC 6750: no
 * `error` attribute when no credential was sent at all).
 */
export function sendDenial(res: ServerResponse, requestId: string, d: Denial, extra: { allow?: readonly string[]; close?: boolean } = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = ERRORS[d.error].status;
  const text = errorBody(d.error, d.message, d.param ?? null);
  const headers: Record<string, string | number> = { ...BASE_HEADERS, "x-request-id": requestId, "content-length": Buffer.byteLength(text) };
  if (status === 401) headers["www-authenticate"] = d.error === "missing_credential" ? 'Bearer realm="patgate"' : 'Bearer realm="patgate", error="invalid_token"';
  if (extra.allow !== undefined) headers.allow = extra.allow.join(", ");
  const retry = retryHeaders(d.error);
  for (let i = 0; i < retry.length; i += 2) headers[retry[i] as string] = retry[i + 1] as string;
  // A body we did not read would otherwise have to be drained before the connection is reused.
  if (extra.close === true) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(text);
}
