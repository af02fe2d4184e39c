/**
 * The embedded store's writer: a worker thread with its own connection to
 * the database, so that the waits a write brings — the fsync of every commit
 * (synchronous = FULL), SQLite's checkpoints of its log into the file, and
 * another process's write lock — happen on this thread and never hold up the
 * gateway's event loop. On a busy disk one fsync can take tens of
 * milliseconds; on the main thread each one was a stall.
 *
 * Messages are handled one at a time, in order, each WriteOp in its own
 * transaction together with its change rows; the reply carries the result and
 * the events, sent only once the commit is durable. This file is both the
 * thread's entry point and, below, the main thread's client for it.
 */
import { fileURLToPath } from "node:url";
import { extname } from "node:path";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { Statements } from "./embedded-rows.ts";
import { applyWrite, transaction, type WriteOp } from "./embedded-writes.ts";
import { DatabaseSync, isBusy, sqliteCode } from "./sqlite.ts";
import type { ChangeEvent } from "./types.ts";

/** What the writer is started with. */
interface WriterData {
  readonly file: string;
  /** Marks this store instance's rows in `changes`, so its own events are not delivered twice. */
  readonly origin: string;
  readonly lockTimeoutMs: number;
}

type Request = { readonly id: number; readonly write: WriteOp } | { readonly close: true };

type Reply =
  | { readonly id: number; readonly ok: true; readonly result: unknown; readonly events: readonly ChangeEvent[]; readonly at: number }
  | { readonly id: number; readonly ok: false; readonly kind: "type" | "busy" | "store"; readonly message: string; readonly code: number | null };

// Change rows are kept this long for processes that were busy or paused, then pruned (checked once a minute).
const CHANGE_RETENTION_MS = 10 * 60_000;
const PRUNE_EVERY_MS = 60_000;

function serve(data: WriterData): void {
  const port = parentPort;
  if (port === null) return;
  const db = new DatabaseSync(data.file);
  // Here a wait for another process's lock blocks only this thread.
  db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(data.lockTimeoutMs))}`);
  db.exec("PRAGMA synchronous = FULL");
  const q = new Statements(db);
  let lastPrune = 0;

  const prune = (now: number): void => {
    if (now - lastPrune < PRUNE_EVERY_MS) return;
    lastPrune = now;
    const upTo = Number((q.lastChangeBefore.get(now - CHANGE_RETENTION_MS) as { seq: number }).seq);
    if (upTo === 0) return;
    q.pruneChanges.run(upTo);
    q.putMeta.run("pruned_through", String(upTo));
  };

  port.on("message", (msg: Request) => {
    if ("close" in msg) {
      db.close();
      port.close();
      return;
    }
    const now = Date.now();
    let reply: Reply;
    try {
      const outcome = transaction(db, () => {
        const o = applyWrite(q, msg.write);
        for (const e of o.events) q.addChange.run(data.origin, now, JSON.stringify(e));
        if (o.events.length > 0) prune(now);
        return o;
      });
      reply = { id: msg.id, ok: true, result: outcome.result, events: outcome.events, at: now };
    } catch (err) {
      const kind = err instanceof TypeError ? "type" : isBusy(err) ? "busy" : "store";
      reply = { id: msg.id, ok: false, kind, message: err instanceof Error ? err.message : String(err), code: sqliteCode(err) };
    }
    port.postMessage(reply);
  });
}

if (!isMainThread && (workerData as { patgateEmbeddedWriter?: WriterData } | null)?.patgateEmbeddedWriter !== undefined) {
  serve((workerData as { patgateEmbeddedWriter: WriterData }).patgateEmbeddedWriter);
}

// ---- the main thread's side ---------------------------------------------------------

/** A write the writer refused or could not make: `kind` says whose problem it is. */
export class WriteError extends Error {
  readonly kind: "type" | "busy" | "store" | "stopped";
  readonly code: number | null;

  constructor(kind: WriteError["kind"], message: string, code: number | null = null) {
    super(message);
    this.kind = kind;
    this.code = code;
  }
}

/** The committed outcome of one write. */
export interface Committed {
  readonly result: unknown;
  readonly events: readonly ChangeEvent[];
  /** When it committed (epoch ms, the writer's clock). */
  readonly at: number;
}

/** The main thread's handle on the writer thread. */
export class WriterClient {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (c: Committed) => void; reject: (e: WriteError) => void }>();
  #nextId = 1;
  #stopped: WriteError | null = null;
  readonly #exited: Promise<void>;

  constructor(data: WriterData) {
    // The same file as this module, whether it runs as .ts (type stripping) or from the build as .js.
    const self = new URL(`./embedded-writer${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    // No node flags of the process's: V8 flags (the image's heap tuning) are process-wide and a worker refuses
    // them, as it does a `node -e` script's --input-type; the writer needs none (Node strips types by itself).
    this.#worker = new Worker(self, { execArgv: [], workerData: { patgateEmbeddedWriter: data } });
    // Idle, it must not keep a process alive (a CLI command ends when its work does); busy, it must.
    this.#worker.unref();
    this.#worker.on("message", (r: Reply) => this.#onReply(r));
    this.#worker.on("error", (err: Error) => this.#stop(new WriteError("stopped", `the embedded store's writer failed: ${err.message}`)));
    this.#exited = new Promise((resolve) => {
      this.#worker.once("exit", (code) => {
        this.#stop(new WriteError("stopped", `the embedded store's writer stopped (exit code ${code})`));
        resolve();
      });
    });
  }

  /** Sends one write; resolves once it is committed and durable. */
  call(write: WriteOp): Promise<Committed> {
    if (this.#stopped !== null) return Promise.reject(this.#stopped);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, write } satisfies Request);
    });
  }

  #onReply(r: Reply): void {
    const p = this.#pending.get(r.id);
    if (p === undefined) return;
    this.#pending.delete(r.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (r.ok) p.resolve({ result: r.result, events: r.events, at: r.at });
    else p.reject(new WriteError(r.kind, r.message, r.code));
  }

  #stop(err: WriteError): void {
    this.#stopped ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  /** Lets the writes already sent finish, then closes the writer's connection and ends the thread. */
  async close(): Promise<void> {
    if (this.#stopped === null) {
      this.#worker.ref();
      this.#worker.postMessage({ close: true } satisfies Request);
    }
    await this.#exited;
  }
}
