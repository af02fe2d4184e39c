/** A private redis-server for the storage bench: a free port, a temp dir, no persistence; optionally pinned. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { pinned, stopProcess } from "./proc.ts";

export interface BenchRedis {
  readonly url: string;
  readonly pid: number;
  /** INFO memory's used_memory, in bytes. */
  usedMemory(): Promise<number>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startBenchRedis(cpus: string | null): Promise<BenchRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-bench-redis-"));
  const port = await freePort();
  const [cmd, args] = pinned(cpus, "redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir]);
  const proc: ChildProcess = spawn(cmd, args, { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 50 ? null : 100) });
  client.on("error", () => undefined);
  for (let i = 0; ; i++) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      if (i > 50) throw new Error(`redis-server did not start: ${(err as Error).message}`, { cause: err });
      client.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    pid: proc.pid ?? 0,
    async usedMemory() {
      const info = await client.info("memory");
      return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
    },
    async stop() {
      client.disconnect();
      await stopProcess(proc, 3000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
