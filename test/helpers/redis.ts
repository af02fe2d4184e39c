import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, connect } from "node:net";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

/** A Redis server for one test file: private (killable) unless REDIS_URL points elsewhere. */
export interface RedisHandle {
  readonly url: string;
  readonly port: number;
  /** Unique per startRedis() call, so concurrent runs on a shared server never collide. */
  readonly keyPrefix: string;
  /** True when REDIS_URL is used: kill() and restart() are then impossible. */
  readonly external: boolean;
  /** SIGKILLs the server (a crash, not a shutdown) and waits until it has exited. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and waits until it answers PING. */
  restart(): Promise<void>;
  /** SIGSTOPs the server: connections stay open but nothing answers (a hung server). */
  pause(): void;
  /** SIGCONTs a paused server. */
  resume(): void;
  /** Stops the server for good and removes its directory (REDIS_URL: deletes this prefix's keys). */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

// Every server this process started, so none outlives it even if a test forgets stop().
const live = new Set<Server>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: process.kill is.
  process.on("exit", () => {
    for (const s of live) s.killNow();
  });
  // A signal's default action skips 'exit' handlers: clean up, then die of the same signal.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      for (const s of live) s.killNow();
      process.kill(process.pid, sig);
    });
  }
}

/**
 * Starts a private redis-server (no persistence, temp dir, free port) and waits
 * until it answers PING. With REDIS_URL set, returns a handle for that server instead.
 */
export async function startRedis(): Promise<RedisHandle> {
  const keyPrefix = `pgtest:${process.pid}:${randomBytes(4).toString("hex")}:`;
  const external = process.env["REDIS_URL"];
  if (external !== undefined && external !== "") return externalHandle(external, keyPrefix);

  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), "patgate-redis-"));
  // A port picked this way can be taken by someone else before redis binds it: retry.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const server = new Server(port, dir);
    try {
      await server.start();
      return server.handle(keyPrefix);
    } catch (err) {
      lastError = err;
      await server.kill();
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`could not start redis-server: ${String(lastError)}`);
}

/** A TCP port that was free a moment ago (another process may still take it: callers retry). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

// The wrapper shell holds the server's lifetime to ours: when this process dies
// (even by SIGKILL) the pipe on fd 3 closes, `read` returns, and the server is killed.
const WRAPPER = `
exec 3<&0
redis-server "$@" &
child=$!
echo "$child"
( read -r _ <&3; kill -9 "$child" 2>/dev/null ) &
watcher=$!
wait "$child"
code=$?
kill "$watcher" 2>/dev/null
exit "$code"
`;

/** One private redis-server process (used by startRedis, and by the cluster helper with extra arguments). */
export class Server {
  readonly port: number;
  readonly #dir: string;
  readonly #extraArgs: readonly string[];
  readonly #configFile: string | null;
  #wrapper: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #redisPid = 0;
  #stopped = false;

  /** `configFile` comes first on the command line (Sentinel needs one, writable). */
  constructor(port: number, dir: string, extraArgs: readonly string[] = [], configFile: string | null = null) {
    this.port = port;
    this.#dir = dir;
    this.#extraArgs = extraArgs;
    this.#configFile = configFile;
  }

  async start(): Promise<void> {
    installExitHook();
    const args = [
      ...(this.#configFile === null ? [] : [this.#configFile]),
      "--port", String(this.port),
      "--bind", "127.0.0.1",
      "--save", "",
      "--appendonly", "no",
      "--dir", this.#dir,
      "--logfile", join(this.#dir, "redis.log"),
      "--loglevel", "warning",
      ...this.#extraArgs,
    ];
    const child = spawn("sh", ["-c", WRAPPER, "sh", ...args], { stdio: ["pipe", "pipe", "ignore"] });
    this.#wrapper = child;
    live.add(this);
    this.#exited = new Promise((resolve) => {
      child.once("exit", () => {
        resolve();
      });
    });
    this.#redisPid = await firstLine(child);
    // Neither the child nor its pipes may keep a finished test process alive.
    child.unref();
    (child.stdin as unknown as Socket | null)?.unref();
    (child.stdout as unknown as Socket | null)?.unref();
    await this.#waitReady();
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let exited = false;
    void this.#exited.then(() => {
      exited = true;
    });
    while (Date.now() < deadline) {
      if (exited) throw new Error(`redis-server on port ${this.port} exited at start (see ${this.#dir}/redis.log)`);
      if (await pingOnce(this.port)) return;
      await sleep(25);
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING within ${READY_TIMEOUT_MS} ms`);
  }

  /** Synchronous SIGKILL for exit handlers. */
  killNow(): void {
    if (this.#redisPid > 0) {
      try {
        process.kill(this.#redisPid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    live.delete(this);
  }

  async kill(): Promise<void> {
    this.killNow();
    await this.#exited;
    this.#wrapper = null;
    this.#redisPid = 0;
  }

  signal(sig: "SIGSTOP" | "SIGCONT"): void {
    if (this.#redisPid === 0) throw new Error("redis-server is not running");
    process.kill(this.#redisPid, sig);
  }

  async restart(): Promise<void> {
    if (this.#stopped) throw new Error("restart() after stop()");
    if (this.#wrapper !== null) await this.kill();
    // The old listening socket can take a moment to be released: retry the bind.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      try {
        await this.start();
        return;
      } catch (err) {
        await this.kill();
        if (Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.kill();
    await rm(this.#dir, { recursive: true, force: true });
  }

  handle(keyPrefix: string): RedisHandle {
    return {
      url: `redis://127.0.0.1:${this.port}`,
      port: this.port,
      keyPrefix,
      external: false,
      kill: () => this.kill(),
      restart: () => this.restart(),
      pause: () => {
        this.signal("SIGSTOP");
      },
      resume: () => {
        this.signal("SIGCONT");
      },
      stop: () => this.stop(),
    };
  }
}

function externalHandle(url: string, keyPrefix: string): RedisHandle {
  const why = (what: string): Error => new Error(`${what}() is not possible with REDIS_URL: that server is not ours to control`);
  const impossible = (what: string) => (): Promise<void> => Promise.reject(why(what));
  return {
    url,
    port: Number(new URL(url).port || 6379),
    keyPrefix,
    external: true,
    kill: impossible("kill"),
    restart: impossible("restart"),
    pause: () => {
      throw why("pause");
    },
    resume: () => {
      throw why("resume");
    },
    stop: () => deletePrefix(url, keyPrefix),
  };
}

async function deletePrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
}

async function firstLine(child: ChildProcess): Promise<number> {
  const out = child.stdout;
  if (out === null) throw new Error("no stdout from redis wrapper");
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      out.off("data", onData);
      const pid = Number(buf.slice(0, nl).trim());
      if (Number.isInteger(pid) && pid > 0) resolve(pid);
      else reject(new Error(`unexpected output from redis wrapper: ${buf}`));
    };
    out.on("data", onData);
    child.once("exit", () => {
      reject(new Error("redis wrapper exited before starting redis-server"));
    });
  });
}

/** One raw RESP PING; true on +PONG. No client library, so it cannot hide a bad server. */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: "127.0.0.1" });
    let answer = "";
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => {
      done(false);
    });
    sock.once("error", () => {
      done(false);
    });
    sock.once("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d: Buffer) => {
      answer += d.toString("utf8");
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
