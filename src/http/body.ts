import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { Denial } from "../errors.ts";

const ABORTED = new Denial("bad_request", { message: "The request body ended early." });
const TIMED_OUT = new Denial("body_timeout");

/** The refusal of a body over a route's limit, naming the limit. */
export function bodyTooLarge(limit: number): Denial {
  return new Denial("body_too_large", { message: `The body exceeds this route's limit of ${limit} bytes.` });
}

/**
 * Reads the whole request body, refusing it as soon as it passes `limit` bytes
 * (413) or takes longer than `timeoutMs` (408), or when the client cuts it off (400).
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer | Denial> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve(bodyTooLarge(limit));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // A slow sender must not hold a buffer and a decision open forever.
    const timer = setTimeout(() => {
      req.pause();
      done(TIMED_OUT);
    }, timeoutMs);
    const done = (r: Buffer | Denial): void => {
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
        done(bodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => done(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    const onError = (): void => done(ABORTED);
    const onClose = (): void => {
      if (!req.complete) done(ABORTED);
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

/** Raised inside a streamed request body that grew past its route's limit (see bodies.ts DeadlineBody). */
export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
}

/** Sends 100 Continue to a client that waits for it: called only once the request is authorized. */
export function continueIfAsked(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers.expect !== undefined) res.writeContinue();
}
