/**
 * S3's (and S3h2's) capacity: how many SSE streams, opened at once, a target
 * holds with no stall. Each level is decided by the majority of
 * `runsPerLevel` runs (the median of their pass/fail), targets interleaved
 * within a level; then one bisection step between the last level held and
 * the first that stalled turns the ladder's answer into a number (256 and
 * 512 give 384).
 */
import type { SseJob, SseResult } from "./jobs.ts";
import { rotate, sse, type Bench, type Measured, type Target, type TargetName } from "./context.ts";
import type { CpuUsage } from "./proc.ts";

/** One "once" run at one level. */
export interface CapacityRun {
  readonly target: TargetName;
  readonly level: number;
  /** 0-based run of this level for this target. */
  readonly run: number;
  readonly held: boolean;
  readonly bisect: boolean;
  readonly result: SseResult;
  readonly cpu: CpuUsage;
  readonly quiet: Measured<unknown>["quiet"];
}

/** A target's answer: the streams it held, and the lowest level at which it stalled (null: none tried did). */
export interface Capacity {
  readonly held: number;
  readonly stalledAt: number | null;
}

export interface CapacityOptions {
  readonly levels: readonly number[];
  readonly runsPerLevel: number;
  readonly bisect: boolean;
  /** The S3 log line's tag and the target name's width in it. */
  readonly tag: string;
  readonly pad: number;
}

/** The stall definition of S3: every stream completed, none late. */
export function heldAll(x: SseResult, level: number): boolean {
  return x.completed === level && x.stalled === 0;
}

/** A level passes when more than half of its runs held (2 of 3). */
export function majority(runs: number): number {
  return Math.floor(runs / 2) + 1;
}

/** The level between the last held and the first stalled, as a whole number; null when they are adjacent. */
export function midpoint(held: number, stalled: number): number | null {
  const mid = Math.round((held + stalled) / 2);
  return mid > held && mid < stalled ? mid : null;
}

/**
 * Runs the ladder, then the bisection step, over `targets`. A target stops
 * climbing at its first stalled level.
 */
export async function measureCapacity(b: Bench, targets: readonly Target[], job: (t: Target, level: number) => SseJob, o: CapacityOptions): Promise<{ capacity: Map<TargetName, Capacity>; runs: CapacityRun[] }> {
  const runs: CapacityRun[] = [];
  const held = new Map<TargetName, number>();
  const stalledAt = new Map<TargetName, number>();
  const level = async (n: number, ts: readonly Target[], bisect: boolean): Promise<Map<TargetName, boolean>> => {
    const out = await decideLevel(b, ts, n, job, o, bisect, runs);
    for (const [name, ok] of out) {
      if (ok) held.set(name, Math.max(held.get(name) ?? 0, n));
      else stalledAt.set(name, Math.min(stalledAt.get(name) ?? n, n));
    }
    return out;
  };
  for (const n of o.levels) {
    const climbing = targets.filter((t) => !stalledAt.has(t.name));
    if (climbing.length === 0) break;
    await level(n, climbing, false);
  }
  if (o.bisect) {
    // Targets that share a midpoint run it together, interleaved as the ladder was.
    const byMid = new Map<number, Target[]>();
    for (const t of targets) {
      const stall = stalledAt.get(t.name);
      if (stall === undefined) continue;
      const mid = midpoint(held.get(t.name) ?? 0, stall);
      if (mid !== null) byMid.set(mid, [...(byMid.get(mid) ?? []), t]);
    }
    for (const [mid, ts] of [...byMid].sort((x, y) => x[0] - y[0])) await level(mid, ts, true);
  }
  const capacity = new Map<TargetName, Capacity>();
  for (const t of targets) capacity.set(t.name, { held: held.get(t.name) ?? 0, stalledAt: stalledAt.get(t.name) ?? null });
  return { capacity, runs };
}

/**
 * Up to `runsPerLevel` runs of `level` per target, targets rotated each run;
 * a target's remaining runs are skipped once the majority is reached either
 * way (the median cannot change).
 */
async function decideLevel(b: Bench, targets: readonly Target[], level: number, job: (t: Target, level: number) => SseJob, o: CapacityOptions, bisect: boolean, runs: CapacityRun[]): Promise<Map<TargetName, boolean>> {
  const need = majority(o.runsPerLevel);
  const passes = new Map<TargetName, number>();
  const fails = new Map<TargetName, number>();
  const decided = (n: TargetName): boolean => (passes.get(n) ?? 0) >= need || (fails.get(n) ?? 0) >= need;
  for (let r = 0; r < o.runsPerLevel; r++) {
    for (const t of rotate(targets, r)) {
      if (decided(t.name)) continue;
      const m = await sse(b, t, job(t, level));
      const x = m.result;
      const ok = heldAll(x, level);
      (ok ? passes : fails).set(t.name, ((ok ? passes : fails).get(t.name) ?? 0) + 1);
      runs.push({ target: t.name, level, run: r, held: ok, bisect, result: x, cpu: m.cpu, quiet: m.quiet });
      b.log(`  ${o.tag} ${String(level).padStart(5)} streams${bisect ? " (bisect)" : ""} run ${r + 1} ${t.name.padEnd(o.pad)} ${ok ? "held" : "STALL"}  completed ${x.completed} stalled ${x.stalled}  ttfb p99 ${x.ttfbMs.p99.toFixed(1)} ms  gap max ${x.gapMs.max.toFixed(1)} ms  cpu ${JSON.stringify(m.cpu.procs)} other ${m.cpu.other}%`);
    }
  }
  return new Map(targets.map((t) => [t.name, (passes.get(t.name) ?? 0) >= need]));
}

/** The table cell: "384 (stall at 512)", or "1024+" when no level tried stalled. */
export function heldCell(c: Capacity | undefined): string {
  if (c === undefined) return "-";
  return c.stalledAt === null ? `${c.held}+` : `${c.held} (stall at ${c.stalledAt})`;
}
