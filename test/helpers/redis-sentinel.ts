import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort, Server } from "./redis.ts";

/** A private master watched by one Sentinel, for one test file. */
export interface RedisSentinelHandle {
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  /** The master group name the sentinel monitors. */
  readonly name: string;
  readonly keyPrefix: string;
  /** Kills both servers and removes their directories. */
  stop(): Promise<void>;
}

const NAME = "pgmaster";
const READY_TIMEOUT_MS = 10_000;

/**
 * Starts a private redis-server and one redis-sentinel monitoring it (quorum 1),
 * and waits until the sentinel names the master. Both are the wrapped processes
 * of test/helpers/redis.ts, so neither outlives the test process.
 */
export async function startRedisSentinel(): Promise<RedisSentinelHandle> {
  const servers: Server[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    const master = await startServer((dir, port) => new Server(port, dir));
    servers.push(master);
    const sentinel = await startServer(async (dir, port) => {
      // Sentinel rewrites its config file, so it must be its own, writable.
      const conf = join(dir, "sentinel.conf");
      await writeFile(conf, `sentinel monitor ${NAME} 127.0.0.1 ${master.port} 1\n`);
      return new Server(port, dir, ["--sentinel"], conf);
    });
    servers.push(sentinel);
    await waitForMaster(sentinel.port, master.port);
    return {
      sentinels: [{ host: "127.0.0.1", port: sentinel.port }],
      name: NAME,
      keyPrefix: `pgtest:${process.pid}:${randomBytes(4).toString("hex")}:`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startServer(make: (dir: string, port: number) => Server | Promise<Server>): Promise<Server> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "patgate-sentinel-"));
    const server = await make(dir, await freePort());
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
  throw new Error(`could not start redis-server: ${String(lastError)}`);
}

async function waitForMaster(sentinelPort: number, masterPort: number): Promise<void> {
  const conn = new Redis({ host: "127.0.0.1", port: sentinelPort, maxRetriesPerRequest: 0 });
  conn.on("error", () => undefined);
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const addr = await conn.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME).catch(() => null);
      if (Array.isArray(addr) && Number(addr[1]) === masterPort) return;
      if (Date.now() > deadline) throw new Error(`sentinel on ${sentinelPort} does not name the master: ${JSON.stringify(addr)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    conn.disconnect();
  }
}
