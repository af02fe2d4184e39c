import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { Transform, type TransformCallback } from "node:stream";

export type BodyResult = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly reason: "too_large" | "aborted" | "timeout" };

/** Reads the whole request body, refusing as soon as it passes `limit` bytes or takes longer than `timeoutMs`. */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<BodyResult> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve({ ok: false, reason: "too_large" });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // A slow sender must not hold a buffer and a decision open forever.
    const timer = setTimeout(() => {
      req.pause();
      done({ ok: false, reason: "timeout" });
    }, timeoutMs);
    const done = (r: BodyResult): void => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        done({ ok: false, reason: "too_large" });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => done({ ok: true, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
    const onError = (): void => done({ ok: false, reason: "aborted" });
    const onClose = (): void => {
      if (!req.complete) done({ ok: false, reason: "aborted" });
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** Whether the request carries a body at all (a declared length above zero, chunked, or an HTTP/2 stream left open). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers["content-length"];
  if (len !== undefined) return len !== "0";
  if (req.headers["transfer-encoding"] !== undefined) return true;
  // HTTP/2 has no chunked coding: a body of unknown length is DATA frames after headers that did not end the stream.
  return req.httpVersionMajor === 2 && (req as unknown as Http2ServerRequest).stream.endAfterHeaders === false;
}

/** Raised inside a streamed request body that grew past its route's limit. */
export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
}

/**
 * Passes a streamed body through, counting bytes, and fails it once it passes
 * `limit` (for chunked bodies, whose size is not declared up front).
 */
export class LimitedBody extends Transform {
  readonly #limit: number;
  #seen = 0;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) cb(new BodyTooLargeError(`request body over ${this.#limit} bytes`));
    else cb(null, chunk);
  }
}
