/**
 * A proxy process's memory, read inside it over IPC (S7): RSS and V8's heap,
 * optionally after a full garbage collection so the heap figure is what is
 * live, not what the young generation has not yet collected.
 */
import v8 from "node:v8";
import vm from "node:vm";

export interface MemoryReading {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
  readonly arrayBuffersBytes: number;
  /** A full GC ran just before the reading. */
  readonly afterGc: boolean;
}

let gcFn: (() => void) | null | undefined;

/**
 * V8's `gc()`, exposed at run time: the proxies start without --expose-gc
 * (the gateway with the image's flags), and only S7 asks for it.
 */
function fullGc(): (() => void) | null {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      const fn: unknown = vm.runInNewContext("gc");
      gcFn = typeof fn === "function" ? (fn as () => void) : null;
    } catch {
      gcFn = null;
    }
  }
  return gcFn;
}

export function memoryReading(gc: boolean): MemoryReading {
  const collect = gc ? fullGc() : null;
  collect?.();
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers, afterGc: collect !== null };
}
