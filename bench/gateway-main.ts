/**
 * The gateway as a bench child: built with `buildApp` from a generated config
 * (full auth, the production logger writing every access line to `--log`,
 * /dev/null by default), plus what only the benchmark needs:
 *
 * - with `--store-calls count`, every Store method call is counted (S4: zero
 *   store calls for malformed tokens); with `time`, its synchronous CPU time
 *   is taken too (the storage bench);
 * - with `--stall-monitor`, the longest event-loop block of the process's own
 *   making (the storage bench);
 * - RSS, heap and event-loop delay are reported on request (S6 soak; S7's
 *   reading after a full GC), and how long it took to start (the storage bench).
 *
 * They are read over the IPC channel, so the data plane's event loop serves
 * nothing extra while traffic runs. The first two are off by default: the
 * gateway's cached path asks the store whether its change feed is live five
 * times a request, and two CPU-time readings (system calls) around each ask
 * cost the measured gateway more than some of what the bench compares.
 * `--bare` also leaves the event-loop delay histogram out (bench:instructions:
 * under callgrind a process runs ~50 times slower, so timer-driven work is
 * thousands of instructions per counted request the other proxies' harnesses
 * do not pay).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pino from "pino";
import { buildApp } from "../src/app.ts";
import { loadSettings } from "../src/config/config.ts";
import type { Store } from "../src/store/types.ts";
import { createLogger, DESTINATION } from "../src/telemetry/logger.ts";
import { memoryReading } from "./lib/memory.ts";
import { announceReady, serveIpc } from "./lib/proc.ts";

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    log: { type: "string", default: "/dev/null" },
    "store-calls": { type: "string", default: "off" },
    "stall-monitor": { type: "boolean", default: false },
    bare: { type: "boolean", default: false },
  },
});
if (values.config === undefined) throw new Error("--config is required");
const storeCallsMode = values["store-calls"];
if (storeCallsMode !== "off" && storeCallsMode !== "count" && storeCallsMode !== "time") throw new Error("--store-calls is off, count or time");

// Start-up, as the storage bench reports it: from process start (node's time origin) and from here, when the modules are loaded.
const appStart = performance.now();
const settings = loadSettings(values.config);
// The same destination options as the shipped logger, only pointed elsewhere than stdout.
const logger = createLogger(settings.logging.level, pino.destination({ ...DESTINATION, dest: values.log }));
const app = await buildApp(settings, { logger });
// The longest synchronous part of one store call, in this thread's CPU time: what the store itself costs the
// event loop, whatever other tenants of a shared machine take from the process meanwhile.
const storeCpu = { max: 0 };
const storeCalls = storeCallsMode === "off" ? new Map<string, number>() : countCalls(app.store, storeCallsMode === "time" ? storeCpu : null);
// The event loop's longest block that this thread's own work caused: for each 5 ms tick, the smaller of how
// late it came and how much CPU the thread used since the last one. Lateness while the process was not
// running (another tenant had the core) uses no CPU and so is left out; a long task is not.
const ownStall = { max: 0 };
if (values["stall-monitor"]) {
  let last = performance.now();
  let lastCpu = process.threadCpuUsage();
  setInterval(() => {
    const now = performance.now();
    const cpu = process.threadCpuUsage(lastCpu);
    const late = now - last - 5;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    ownStall.max = Math.max(ownStall.max, Math.min(late, cpuMs));
    last = now;
    lastCpu = process.threadCpuUsage();
  }, 5).unref();
}
const round2 = (x: number): number => Math.round(x * 100) / 100;
const ELD_RESOLUTION_MS = 10;
const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
// The histogram holds whole timer intervals (an idle loop reads ~10 ms): report the delay beyond the interval.
const delayMs = (ns: number): number => Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS);
if (!values.bare) eld.enable();
const port = await app.listen(0, "127.0.0.1");
const readyAt = performance.now();
const startup = { processToReadyMs: readyAt, appToReadyMs: readyAt - appStart, rssAtReadyBytes: process.memoryUsage().rss };

serveIpc((msg) => {
  switch (msg["cmd"]) {
    case "stats": {
      const mem = process.memoryUsage();
      return {
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        heapTotalBytes: mem.heapTotal,
        externalBytes: mem.external,
        eldMs: { mean: delayMs(eld.mean), p50: delayMs(eld.percentile(50)), p99: delayMs(eld.percentile(99)), max: delayMs(eld.max) },
        storeCalls: Object.fromEntries(storeCalls),
        verifierCacheSize: app.verifier.cacheSize,
        startup,
        ownStallMs: round2(ownStall.max),
        storeCallMaxCpuMs: round2(storeCpu.max),
      };
    }
    case "memory":
      return memoryReading(msg["gc"] === true);
    case "reset":
      eld.reset();
      ownStall.max = 0;
      storeCpu.max = 0;
      storeCalls.clear();
      return true;
    default:
      throw new Error(`unknown command ${String(msg["cmd"])}`);
  }
});
announceReady(port);

process.on("SIGTERM", () => {
  // A clean exit, so --cpu-prof can write its profile.
  app.close(1000).then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

/**
 * Counts calls to every method of the store, per method name. The wrapper is
 * an own property of the same object the verifier and rights already hold,
 * so their calls go through it.
 */
function countCalls(store: Store, cpu: { max: number } | null): Map<string, number> {
  const counts = new Map<string, number>();
  const target = store as unknown as Record<string, unknown>;
  for (let proto: object | null = Object.getPrototypeOf(store) as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const fn = target[name];
      if (name === "constructor" || typeof fn !== "function" || Object.hasOwn(target, name)) continue;
      const method = fn as (...args: unknown[]) => unknown;
      const counted = (...args: unknown[]): unknown => {
        counts.set(name, (counts.get(name) ?? 0) + 1);
        return method.apply(store, args);
      };
      const timed = (into: { max: number }) => (...args: unknown[]): unknown => {
        const before = process.threadCpuUsage();
        try {
          return counted(...args);
        } finally {
          const used = process.threadCpuUsage(before);
          into.max = Math.max(into.max, (used.user + used.system) / 1000);
        }
      };
      Object.defineProperty(store, name, { configurable: true, value: cpu === null ? counted : timed(cpu) });
    }
  }
  return counts;
}
