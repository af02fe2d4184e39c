import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort, Server } from "./redis.ts";

const run = promisify(execFile);

/** A private 3-master Redis Cluster (with a replica per master when asked) for one test file. */
export interface RedisClusterHandle {
  /** Every master, as seeds for a cluster client. */
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  /** The same as `host:port` strings (the form `store.redis_nodes` takes). */
  readonly seeds: readonly string[];
  /** Unique per startRedisCluster() call. */
  readonly keyPrefix: string;
  /** Every node (masters and replicas) by port, to reach one directly. */
  readonly ports: readonly number[];
  /** The port of the master that serves `slot` now. */
  masterOf(slot: number): Promise<number>;
  /** Moves `slot` and its keys to the master at `toPort` (clients meet ASK, then MOVED). */
  moveSlot(slot: number, toPort: number): Promise<void>;
  /** Promotes the replica of the master at `masterPort` (CLUSTER FAILOVER) and waits until every node says it serves `slot`; returns the new master's port. */
  failover(masterPort: number, slot: number): Promise<number>;
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
export async function startRedisCluster(opts: { replicas?: 0 | 1 } = {}): Promise<RedisClusterHandle> {
  const replicas = opts.replicas ?? 0;
  const servers: Server[] = [];
  const dirs: string[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    for (let i = 0; i < MASTERS * (1 + replicas); i++) servers.push(await startNode(dirs));
    const all = servers.map((s) => `127.0.0.1:${s.port}`);
    await run("redis-cli", ["--cluster", "create", ...all, "--cluster-replicas", String(replicas), "--cluster-yes"], { timeout: READY_TIMEOUT_MS });
    const ports = servers.map((s) => s.port);
    await waitClusterOk(ports);
    // redis-cli makes the first MASTERS nodes the masters.
    const seeds = all.slice(0, MASTERS);
    return {
      nodes: servers.slice(0, MASTERS).map((s) => ({ host: "127.0.0.1", port: s.port })),
      seeds,
      ports,
      keyPrefix: `pgtest:${process.pid}:${randomBytes(4).toString("hex")}:`,
      masterOf: (slot) => masterOf(ports, slot),
      moveSlot: (slot, toPort) => moveSlot(ports, slot, toPort),
      failover: (masterPort, slot) => failover(ports, masterPort, slot),
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

async function withNode<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const conn = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  conn.on("error", () => undefined);
  try {
    await conn.connect();
    return await fn(conn);
  } finally {
    conn.disconnect();
  }
}

type SlotRange = [number, number, [string, number, string], ...unknown[]];

async function masterOf(ports: readonly number[], slot: number): Promise<number> {
  for (const p of ports) {
    try {
      const ranges = (await withNode(p, (c) => c.call("CLUSTER", "SLOTS"))) as SlotRange[];
      for (const r of ranges) if (slot >= r[0] && slot <= r[1]) return r[2][1];
    } catch {
      // that node is down or not ready: ask the next
    }
  }
  throw new Error(`no node knows who serves slot ${slot}`);
}

const myId = (port: number): Promise<string> => withNode(port, async (c) => String(await c.call("CLUSTER", "MYID")));

async function moveSlot(ports: readonly number[], slot: number, toPort: number): Promise<void> {
  const fromPort = await masterOf(ports, slot);
  if (fromPort === toPort) return;
  const [fromId, toId] = await Promise.all([myId(fromPort), myId(toPort)]);
  await withNode(toPort, (c) => c.call("CLUSTER", "SETSLOT", slot, "IMPORTING", fromId));
  await withNode(fromPort, (c) => c.call("CLUSTER", "SETSLOT", slot, "MIGRATING", toId));
  // Keys go over in small batches, so clients meet ASK redirects while the slot is half moved.
  for (;;) {
    const keys = (await withNode(fromPort, (c) => c.call("CLUSTER", "GETKEYSINSLOT", slot, 5))) as string[];
    if (keys.length === 0) break;
    await withNode(fromPort, (c) => c.call("MIGRATE", "127.0.0.1", toPort, "", 0, 5000, "KEYS", ...keys));
    await new Promise((r) => setTimeout(r, 5));
  }
  // The new owner first, then the old one, then the rest (replicas refuse and learn by gossip).
  const order = [toPort, fromPort, ...ports.filter((p) => p !== toPort && p !== fromPort)];
  for (const p of order) await withNode(p, (c) => c.call("CLUSTER", "SETSLOT", slot, "NODE", toId)).catch(() => undefined);
  await waitOwner(ports, slot, toPort);
}

/** Waits until every node says `port` serves `slot`. */
async function waitOwner(ports: readonly number[], slot: number, port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const owners = await Promise.all(ports.map((p) => masterOf([p], slot).catch(() => 0)));
    if (owners.every((o) => o === port)) return waitClusterOk(ports);
    if (Date.now() > deadline) throw new Error(`slot ${slot}: nodes disagree on its master: ${owners.join(", ")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function failover(ports: readonly number[], masterPort: number, slotOf: number): Promise<number> {
  const id = await myId(masterPort);
  let replicaPort = 0;
  for (const p of ports) {
    if (p === masterPort) continue;
    const role = (await withNode(p, (c) => c.call("ROLE"))) as [string, string, number];
    if (role[0] === "slave" && role[2] === masterPort) replicaPort = p;
  }
  if (replicaPort === 0) throw new Error(`no replica of ${masterPort} (${id})`);
  // A manual failover the replica cannot finish in time (it waits to catch up with its master, which a loaded
  // machine can delay past the cluster's own deadline) is dropped silently: ask again until it takes over.
  const deadline = Date.now() + READY_TIMEOUT_MS * 2;
  let askedAt = 0;
  for (;;) {
    if (Date.now() - askedAt > 5000) {
      askedAt = Date.now();
      await withNode(replicaPort, (c) => c.call("CLUSTER", "FAILOVER")).catch(() => undefined);
    }
    const role = (await withNode(replicaPort, (c) => c.call("ROLE"))) as [string];
    if (role[0] === "master") break;
    if (Date.now() > deadline) throw new Error(`replica ${replicaPort} did not take over from ${masterPort}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await waitOwner(ports, slotOf, replicaPort);
  return replicaPort;
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
