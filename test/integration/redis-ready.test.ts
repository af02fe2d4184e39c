/**
 * untilReady(): how the gateway waits for a fail-fast Redis client (no offline
 * queue) before relying on it, against a real server, a refused port and a
 * server that accepts but never answers.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, untilReady } from "../../src/store/redis.ts";
import { freePort, startRedis, type RedisHandle } from "../helpers/redis.ts";

/** Listeners that untilReady adds while it waits; all must be gone once it has answered. */
const EVENTS = ["ready", "error", "end"] as const;

function listenerCounts(client: ReturnType<typeof createRedisClient>): number[] {
  return EVENTS.map((e) => client.listenerCount(e));
}

/**
 * Listener counts once the client is closed: while it reconnects, ioredis
 * holds a "ready" listener of its own, which it drops when the client ends.
 */
async function countsWhenClosed(client: ReturnType<typeof createRedisClient>): Promise<number[]> {
  if (client.status !== "end") {
    const ended = new Promise((resolve) => client.once("end", resolve));
    client.disconnect();
    await ended;
  }
  return listenerCounts(client);
}

describe("untilReady", () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("answers true once the client is ready, and true at once when it already is", async () => {
    const client = createRedisClient({ url: redis.url });
    client.on("error", () => undefined);
    try {
      const before = listenerCounts(client);
      await expect(untilReady(client, { url: redis.url })).resolves.toBe(true);
      expect(listenerCounts(client)).toEqual(before);
      expect(client.status).toBe("ready");
      await expect(untilReady(client, { url: redis.url })).resolves.toBe(true);
      expect(listenerCounts(client)).toEqual(before);
    } finally {
      client.disconnect();
    }
  });

  it("answers false at the first refused connection, long before the connect timeout", async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const client = createRedisClient({ url });
    client.on("error", () => undefined);
    try {
      const before = listenerCounts(client);
      const t0 = performance.now();
      await expect(untilReady(client, { url, connectTimeoutMs: 10_000 })).resolves.toBe(false);
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(await countsWhenClosed(client)).toEqual(before);
    } finally {
      client.disconnect();
    }
  });

  it("answers false after the connect timeout when the server accepts but never answers", async () => {
    // Accepts and holds every connection, reads nothing back: a hung server.
    const held = new Set<Socket>();
    const server: Server = createServer((s) => {
      held.add(s);
      s.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const url = `redis://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    const client = createRedisClient({ url, connectTimeoutMs: 300 });
    client.on("error", () => undefined);
    try {
      const before = listenerCounts(client);
      const t0 = performance.now();
      await expect(untilReady(client, { url, connectTimeoutMs: 300 })).resolves.toBe(false);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
      expect(await countsWhenClosed(client)).toEqual(before);
    } finally {
      client.disconnect();
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("answers false when the client is closed while it waits", async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const client = createRedisClient({ url });
    client.on("error", () => undefined);
    const waiting = untilReady(client, { url, connectTimeoutMs: 10_000 });
    client.disconnect();
    await expect(waiting).resolves.toBe(false);
  });
});
