import { Denial, type ErrorCode } from "../errors.ts";

/** The one refusal type (src/errors.ts), shared with the data plane. */
export { Denial };

/** A success: status and JSON body (none for 204), optionally where the new resource lives. */
export interface Success {
  readonly ok: true;
  readonly status: number;
  readonly body: unknown;
  readonly location?: string;
}

export type Reply = Success | Denial;

export function deny(error: ErrorCode, message?: string, param?: string): Denial {
  return new Denial(error, { message, param });
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
