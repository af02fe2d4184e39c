import type { ErrorCode } from "../errors.ts";

/** A refusal, as data: a catalogue code and, when it helps, a precise message and the field at fault. */
export interface Denial {
  readonly ok: false;
  readonly error: ErrorCode;
  readonly message?: string;
  readonly param?: string;
}

/** A success: status and JSON body (none for 204), optionally where the new resource lives. */
export interface Success {
  readonly ok: true;
  readonly status: number;
  readonly body: unknown;
  readonly location?: string;
}

export type Reply = Success | Denial;

export function deny(error: ErrorCode, message?: string, param?: string): Denial {
  const d: { ok: false; error: ErrorCode; message?: string; param?: string } = { ok: false, error };
  if (message !== undefined) d.message = message;
  if (param !== undefined) d.param = param;
  return d;
}

export function ok(body: unknown, status = 200): Success {
  return { ok: true, status, body };
}

export function created(body: unknown, location: string): Success {
  return { ok: true, status: 201, body, location };
}

export function noContent(): Success {
  return { ok: true, status: 204, body: undefined };
}

/** A value, or why there is none. */
export type Result<T> = { readonly ok: true; readonly value: T } | Denial;
