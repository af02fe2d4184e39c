/**
 * Request bodies as a whole: every body the gateway relays has a deadline, and
 * the bodies it buffers (to read the entity) share one memory budget.
 *
 * - A buffered body must arrive within `readTimeoutMs`, with no gap longer
 *   than `idleTimeoutMs`; all buffered bodies together may hold at most
 *   `budgetBytes`. A body that would pass the budget is refused (503
 *   busy_bodies with Retry-After): up front when its Content-Length says so,
 *   else as soon as its chunks do. Its share is given back when its response
 *   ends, which is when the gateway lets go of the buffer.
 * - A streamed body (passed through to the upstream as it arrives) may pause
 *   for at most `idleTimeoutMs` and take at most `streamTimeoutMs` in all:
 *   otherwise it is cut, and with it the pooled upstream connection it holds.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { totalmem } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import type { Readable } from "node:stream";
import { Denial } from "../errors.ts";
import { BodyTooLargeError, bodyTooLarge, hasBody } from "./body.ts";

/** The settings, from `server.*` (see docs/configuration.md). */
export interface BodySettings {
  readonly readTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly streamTimeoutMs: number;
  readonly budgetBytes: number;
}

type Failure = "too_large" | "aborted" | "timeout" | "busy";

const ABORTED = new Denial("bad_request", { message: "The request body ended early." });
const TIMED_OUT = new Denial("body_timeout");
const BUSY = new Denial("busy_bodies");
const NOT_ACCEPTED = new Denial("body_not_accepted");

/** Raised inside a streamed request body that stalled or ran past its total deadline. */
export class BodyTimeoutError extends Error {
  override readonly name = "BodyTimeoutError";
}

/** What one buffered body holds of the budget. */
interface Hold {
  reserved: number;
  released: boolean;
}

/** An empty body, taken whole. */
const EMPTY = Buffer.alloc(0);

/** Declared sizes above this are read into one preallocated buffer. */
const PREALLOCATE_FROM = 64 * 1024;

/** Deadlines for every relayed body, and the budget and gauge for buffered ones. */
export class Bodies {
  readonly settings: BodySettings;
  #held = 0;

  constructor(settings: BodySettings) {
    this.settings = settings;
  }

  /** Bytes of buffered request bodies held now (the patgate_request_body_bytes_held gauge). */
  get held(): number {
    return this.#held;
  }

  /**
   * Reads the whole body within the deadlines, the route's `limit` and the
   * shared budget: the body, or the refusal (413 over the limit, 503 over the
   * budget, 408 too slow, 400 cut off).
   */
  read(req: IncomingMessage, res: ServerResponse, limit: number): Promise<Buffer | Denial> {
    const declared = req.headers["content-length"];
    const size = declared === undefined ? -1 : Number(declared);
    if (size > limit) return Promise.resolve(bodyTooLarge(limit));
    if (size > 0 && this.#held + size > this.settings.budgetBytes) return Promise.resolve(BUSY);
    // What this body holds against the budget: its declared size up front, else what has arrived.
    const hold: Hold = { reserved: size > 0 ? size : 0, released: false };
    this.#held += hold.reserved;
    res.once("close", () => this.#release(hold));
    // Looked at one microtask later: by then Node has parsed the rest of the packet that brought the headers.
    // A body that is all there (its declared length buffered, or the message complete) is taken whole, with
    // no listeners and no timer: most small requests.
    return Promise.resolve().then(() => {
      const whole = req.readableFlowing === null && !req.readableDidRead && (req.complete || (size >= 0 && req.readableLength === size));
      if (!whole) return this.#listen(req, limit, size, hold);
      const body = (req.read() as Buffer | null) ?? EMPTY;
      // Its end is parsed a moment later: flowing (empty), the request then ends and closes as it would with listeners.
      if (!req.complete) req.resume();
      const refused = body.length > limit ? bodyTooLarge(limit) : this.#grow(hold, body.length) ? null : BUSY;
      if (refused === null) return body;
      this.#release(hold);
      return refused;
    });
  }

  /** The body as its chunks come, within the deadlines, the limit and the budget. */
  #listen(req: IncomingMessage, limit: number, size: number, hold: Hold): Promise<Buffer | Denial> {
    return new Promise((resolve) => {
      // A declared size is read straight into one buffer: no second copy at the end, and the socket's
      // chunks are garbage at once, so what is held is what the budget counts.
      // (Small bodies usually arrive as one chunk, which is kept as it is.)
      const into = size > PREALLOCATE_FROM ? Buffer.allocUnsafeSlow(size) : null;
      const chunks: Buffer[] = [];
      let got = 0;
      const fail = (reason: Failure): void => {
        req.pause();
        this.#release(hold);
        done(reason === "too_large" ? bodyTooLarge(limit) : reason === "busy" ? BUSY : reason === "timeout" ? TIMED_OUT : ABORTED);
      };
      // A slow sender must not hold a buffer, a budget share and a decision open forever. One timer per
      // body: it fires after a pause (refreshed per chunk) and at the total deadline, whichever comes first.
      const deadline = performance.now() + this.settings.readTimeoutMs;
      const idleMs = Math.min(this.settings.idleTimeoutMs, this.settings.readTimeoutMs);
      const idle = setTimeout(() => fail("timeout"), idleMs);
      const done = (r: Buffer | Denial): void => {
        clearTimeout(idle);
        req.off("data", onData);
        req.off("end", onEnd);
        req.off("error", onError);
        req.off("close", onClose);
        resolve(r);
      };
      const onData = (chunk: Buffer): void => {
        got += chunk.length;
        if (got > limit) return fail("too_large");
        // Undeclared (chunked) or longer than declared: reserve as it comes.
        if (!this.#grow(hold, got)) return fail("busy");
        if (performance.now() > deadline) return fail("timeout");
        idle.refresh();
        if (into !== null && got <= size) chunk.copy(into, got - chunk.length);
        else chunks.push(chunk);
      };
      const onEnd = (): void => {
        // Node ends a Content-Length body only at exactly that length, so `into` is full.
        if (into !== null) done(into);
        else done(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, got));
      };
      const onError = (): void => fail("aborted");
      const onClose = (): void => {
        if (!req.complete) fail("aborted");
      };
      req.on("data", onData);
      req.on("end", onEnd);
      req.on("error", onError);
      req.on("close", onClose);
      // The client may have left between the headers and this read: its close was before these listeners.
      if (req.destroyed && !req.complete) fail("aborted");
    });
  }

  /** Reserves `got` bytes for `hold` when it holds fewer; false when that would pass the budget. */
  #grow(hold: Hold, got: number): boolean {
    if (got <= hold.reserved) return true;
    if (this.#held - hold.reserved + got > this.settings.budgetBytes) return false;
    this.#held += got - hold.reserved;
    hold.reserved = got;
    return true;
  }

  /** Gives back what `hold` reserved (once). */
  #release(hold: Hold): void {
    if (hold.released) return;
    hold.released = true;
    this.#held -= hold.reserved;
  }

  /**
   * A body the gateway need not read, passed through as it streams: null when
   * there is none, refused when the route takes none or its declared length is
   * over the limit, else counted and under the stream deadlines (stream()).
   */
  streamed(req: IncomingMessage, limit: number, accepted: boolean): Readable | null | Denial {
    if (!hasBody(req)) return null;
    if (!accepted) return NOT_ACCEPTED;
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > limit) return bodyTooLarge(limit);
    return this.stream(req, limit);
  }

  /** The body as a stream for the upstream: counted against `limit`, cut when it stalls or runs long. */
  stream(req: IncomingMessage, limit: number): Transform {
    const out = new DeadlineBody(limit, this.settings.idleTimeoutMs, this.settings.streamTimeoutMs);
    req.pipe(out);
    // A client that leaves mid-body: end the upstream's body too, so its request fails at once.
    req.once("close", () => {
      if (!req.complete) out.destroy(new Error("the client left before its request body was complete"));
    });
    return out;
  }
}

/**
 * Passes a streamed body through, counting bytes: fails once it passes
 * `limit`, goes `idleMs` without a chunk, or is still flowing after `totalMs`.
 */
export class DeadlineBody extends Transform {
  readonly #limit: number;
  #seen = 0;
  readonly #idle: NodeJS.Timeout;
  readonly #total: NodeJS.Timeout;

  constructor(limit: number, idleMs: number, totalMs: number) {
    super();
    this.#limit = limit;
    this.#idle = setTimeout(() => this.destroy(new BodyTimeoutError(`request body idle for ${idleMs} ms`)), idleMs);
    this.#total = setTimeout(() => this.destroy(new BodyTimeoutError(`request body still arriving after ${totalMs} ms`)), totalMs);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) return cb(new BodyTooLargeError(`request body over ${this.#limit} bytes`));
    this.#idle.refresh();
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#stop();
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#stop();
    cb(err);
  }

  #stop(): void {
    clearTimeout(this.#idle);
    clearTimeout(this.#total);
  }
}

/** The Bodies settings from the `server` section, the budget resolved against this machine's memory limit. */
export function bodySettings(server: { readonly bodyTimeoutMs: number; readonly bodyIdleTimeoutMs: number; readonly streamedBodyTimeoutMs: number; readonly bodyMemory: { readonly bytes: number } | { readonly percent: number }; readonly memoryLimit: number }): BodySettings {
  return {
    readTimeoutMs: server.bodyTimeoutMs,
    idleTimeoutMs: server.bodyIdleTimeoutMs,
    streamTimeoutMs: server.streamedBodyTimeoutMs,
    budgetBytes: bodyBudget(server.bodyMemory, server.memoryLimit, totalmem(), process.constrainedMemory()),
  };
}

/** The budget for buffered bodies: `budget` in bytes, or a share (`25%`) of the memory limit (`memoryLimit`, else the cgroup's, else the machine's). */
export function bodyBudget(budget: { readonly bytes: number } | { readonly percent: number }, memoryLimit: number, totalMemory: number, constrained: number): number {
  if ("bytes" in budget) return budget.bytes;
  const limit = memoryLimit > 0 ? memoryLimit : constrained > 0 && constrained < totalMemory ? constrained : totalMemory;
  return Math.floor((limit * budget.percent) / 100);
}
