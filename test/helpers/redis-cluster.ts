import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort, Server } from "./redis.ts";

const run = promisify(execFile);

/** A private 3-master Redis Cluster for one test file. */
export interface RedisClusterHandle {
  /** Every master, as seeds for a cluster client. */
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  /** The same as `host:port` strings (the form `store.redis_nodes` takes). */
  readonly seeds: readonly string[];
  /** Unique per startRedisCluster() call. */
  readonly keyPrefix: string;
  /** Kills every node and removes their directories. */
  stop(): Promise<void>;
}

const MASTERS = 3;
const READY_TIMEOUT_MS = 20_000;

/**
 * Starts three cluster-enabled redis-servers (temp dirs, free ports, each with
 * its own free cluster-bus port), joins them with `redis-cli --cluster create`
 * and waits until every node reports `cluster_state:ok`. The servers are the
 * same wrapped processes as startRedis(), so none outlives the test process.
 */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const servers: Server[] = [];
  const dirs: string[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    for (let i = 0; i < MASTERS; i++) servers.push(await startNode(dirs));
    const seeds = servers.map((s) => `127.0.0.1:${s.port}`);
    await run("redis-cli", ["--cluster", "create", ...seeds, "--cluster-replicas", "0", "--cluster-yes"], { timeout: READY_TIMEOUT_MS });
    await waitClusterOk(servers.map((s) => s.port));
    return {
      nodes: servers.map((s) => ({ host: "127.0.0.1", port: s.port })),
      seeds,
      keyPrefix: `pgtest:${process.pid}:${randomBytes(4).toString("hex")}:`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One cluster-enabled node; a port taken meanwhile (by anyone) means another try. */
async function startNode(dirs: string[]): Promise<Server> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "patgate-cluster-"));
    dirs.push(dir);
    const port = await freePort();
    let bus = await freePort();
    // The bus port must differ from the data port (freePort may hand out the same one twice).
    while (bus === port) bus = await freePort();
    const server = new Server(port, dir, [
      "--cluster-enabled", "yes",
      "--cluster-config-file", "nodes.conf",
      "--cluster-port", String(bus),
      "--cluster-node-timeout", "3000",
    ]);
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
    }
  }
  throw new Error(`could not start a cluster node: ${String(lastError)}`);
}

async function waitClusterOk(ports: readonly number[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const states = await Promise.all(ports.map((p) => clusterState(p)));
    if (states.every((s) => s === "ok")) return;
    if (Date.now() > deadline) throw new Error(`Redis Cluster not ok within ${READY_TIMEOUT_MS} ms: ${states.join(", ")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function clusterState(port: number): Promise<string> {
  const conn = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  conn.on("error", () => undefined);
  try {
    await conn.connect();
    const info = String(await conn.call("CLUSTER", "INFO"));
    return /cluster_state:(\w+)/.exec(info)?.[1] ?? "unknown";
  } catch (err) {
    return `error (${(err as Error).message})`;
  } finally {
    conn.disconnect();
  }
}
