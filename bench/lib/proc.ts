/**
 * Child processes for the benchmark: every server under test and the load
 * generator run in their own process, optionally pinned to a core with
 * `taskset`, and talk to the orchestrator over Node's IPC channel.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

/** What every bench child sends first: `{type: "ready", port}`. */
export interface ReadyMessage {
  readonly type: "ready";
  readonly port: number;
}

/** Replies to requests carry the request's id. */
interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

let tasksetPath: string | null | undefined;

/** The taskset binary, or null when it is not installed (then nothing is pinned). */
export function taskset(): string | null {
  if (tasksetPath === undefined) {
    try {
      tasksetPath = execFileSync("sh", ["-c", "command -v taskset"], { encoding: "utf8" }).trim() || null;
    } catch {
      tasksetPath = null;
    }
  }
  return tasksetPath;
}

/** `[cmd, ...args]` prefixed with `taskset -c <cpus>` when pinning is possible and asked for. */
export function pinned(cpus: string | null, cmd: string, args: readonly string[]): [string, string[]] {
  const ts = taskset();
  if (cpus === null || ts === null) return [cmd, [...args]];
  return [ts, ["-c", cpus, cmd, ...args]];
}

/** Pins an already running process (all its threads) to `cpus`. */
export function pinProcess(pid: number, cpus: string): void {
  const ts = taskset();
  if (ts !== null) execFileSync(ts, ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
}

export interface NodeChildOptions {
  readonly cpus: string | null;
  readonly args?: readonly string[];
  readonly execArgv?: readonly string[];
  /** A command the node process runs under (e.g. valgrind and its options); the pid is then the wrapper's, which valgrind keeps. */
  readonly wrap?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly startTimeoutMs?: number;
}

/** A Node child with an IPC channel: request/reply by id, and a clean stop. */
export class NodeChild {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly cpus: string | null;
  port = 0;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #exited = false;
  #stderr = "";

  private constructor(name: string, proc: ChildProcess, cpus: string | null) {
    this.name = name;
    this.proc = proc;
    this.cpus = cpus;
    proc.on("message", (msg: unknown) => this.#onMessage(msg));
    proc.once("exit", (code, signal) => {
      this.#exited = true;
      const err = new Error(`${name} exited (${code ?? signal ?? "?"})${this.#stderr === "" ? "" : `: ${this.#stderr.slice(-2000)}`}`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    });
    proc.stderr?.on("data", (d: Buffer) => {
      // Keep the tail only: enough to explain a crash.
      this.#stderr = (this.#stderr + d.toString()).slice(-8000);
    });
  }

  /** Spawns `node <script>` and waits for its ready message. */
  static async start(name: string, script: string, opts: NodeChildOptions): Promise<NodeChild> {
    const nodeArgs = [...(opts.execArgv ?? []), script, ...(opts.args ?? [])];
    const wrap = opts.wrap ?? [];
    const [cmd, args] = wrap.length === 0 ? pinned(opts.cpus, process.execPath, nodeArgs) : pinned(opts.cpus, wrap[0] as string, [...wrap.slice(1), process.execPath, ...nodeArgs]);
    const proc = spawn(cmd, args, { stdio: ["ignore", "inherit", "pipe", "ipc"], env: opts.env ?? process.env });
    const child = new NodeChild(name, proc, opts.cpus);
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${opts.startTimeoutMs ?? 30_000} ms: ${child.#stderr}`)), opts.startTimeoutMs ?? 30_000);
      const onMsg = (msg: unknown): void => {
        if (isReady(msg)) {
          clearTimeout(timer);
          proc.off("message", onMsg);
          resolve(msg);
        }
      };
      proc.on("message", onMsg);
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before it was ready: ${child.#stderr}`));
      });
    });
    child.port = ready.port;
    return child;
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  /** Sends `{id, ...msg}` and resolves with the child's `result`. */
  request<T>(msg: Record<string, unknown>): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} is not running: ${this.#stderr}`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...msg, id });
    });
  }

  #onMessage(msg: unknown): void {
    if (typeof msg !== "object" || msg === null || !("id" in msg)) return;
    const r = msg as Reply;
    const p = this.#pending.get(r.id);
    if (p === undefined) return;
    this.#pending.delete(r.id);
    if (r.ok) p.resolve(r.result);
    else p.reject(new Error(`${this.name}: ${r.error ?? "failed"}`));
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs = 5000): Promise<void> {
    if (this.#exited) return Promise.resolve();
    return stopProcess(this.proc, graceMs);
  }
}

function isReady(msg: unknown): msg is ReadyMessage {
  return typeof msg === "object" && msg !== null && (msg as { type?: unknown }).type === "ready";
}

/** SIGTERM, then SIGKILL after `graceMs`. Only ever signals the process we started, by its pid. */
export function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    proc.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}

/** The child side of the IPC protocol: answer requests with `handler`, announce readiness. */
export function serveIpc(handler: (msg: Record<string, unknown>) => unknown): void {
  process.on("message", (raw: unknown) => {
    if (typeof raw !== "object" || raw === null) return;
    const msg = raw as Record<string, unknown>;
    const id = msg["id"];
    if (typeof id !== "number") return;
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (result) => process.send?.({ id, ok: true, result }),
        (err: unknown) => process.send?.({ id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  // The orchestrator going away must not leave servers behind.
  process.on("disconnect", () => process.exit(0));
}

/** Tells the orchestrator that this child listens on `port`. */
export function announceReady(port: number): void {
  process.send?.({ type: "ready", port } satisfies ReadyMessage);
}

// ---- CPU accounting from /proc ---------------------------------------------

const CLK_TCK = clockTicks();

function clockTicks(): number {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/** A /proc file's text, or null when its process is gone. */
function procFile(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** utime+stime (seconds) and RSS (bytes) of one process, or null when it is gone. */
export function procStat(pid: number): { cpuSec: number; rssBytes: number } | null {
  const text = procFile(`/proc/${pid}/stat`);
  if (text === null) return null;
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const rssPages = Number(rest[21]);
  return { cpuSec: (utime + stime) / CLK_TCK, rssBytes: rssPages * 4096 };
}

/**
 * Nanoseconds the process's main thread has spent on a CPU and waiting on a
 * run queue for one (/proc/<pid>/schedstat), or null when it is gone: the
 * wait says how long it was ready to run while its core ran something else.
 */
export function schedStat(pid: number): { runNs: number; waitNs: number } | null {
  const text = procFile(`/proc/${pid}/schedstat`);
  if (text === null) return null;
  const [run, wait] = text.trim().split(" ").map(Number);
  return run === undefined || wait === undefined || !Number.isFinite(run + wait) ? null : { runNs: run, waitNs: wait };
}

/** Busy and total jiffies per core from /proc/stat. */
function coreTimes(): Array<{ busy: number; total: number }> {
  const out: Array<{ busy: number; total: number }> = [];
  let text: string;
  try {
    text = readFileSync("/proc/stat", "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    if (!/^cpu\d+ /.test(line)) continue;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    out.push({ busy: total - idle, total });
  }
  return out;
}

/** A point-in-time CPU reading of some named processes and of every core. */
export interface CpuSnapshot {
  readonly at: number;
  readonly procs: ReadonlyMap<string, number>;
  readonly cores: ReadonlyArray<{ busy: number; total: number }>;
}

/** CPU use between two snapshots: percent of one core per process, percent busy per core. */
export interface CpuUsage {
  readonly procs: Record<string, number>;
  readonly cores: number[];
  /** Busy core-percent not used by the listed processes: other tenants of a shared machine (and some kernel work). */
  readonly other: number;
  /**
   * How much of the measured process's core others took (percent): the
   * proxy's core when there is a proxy, else the busiest core of the others
   * listed. Others filling spare time on the load generator's core do not
   * count: that core has headroom whenever a proxy is the bottleneck. Without
   * pinning: `other` spread over the cores.
   */
  readonly contention: number;
}

export function cpuSnapshot(pids: ReadonlyMap<string, number>): CpuSnapshot {
  const procs = new Map<string, number>();
  for (const [name, pid] of pids) {
    const s = procStat(pid);
    if (s !== null) procs.set(name, s.cpuSec);
  }
  return { at: performance.now(), procs, cores: coreTimes() };
}

/** `coreOf` maps a process name to the core it is pinned to (null: not pinned). */
export function cpuUsage(a: CpuSnapshot, b: CpuSnapshot, coreOf: ReadonlyMap<string, number> | null = null): CpuUsage {
  const wall = (b.at - a.at) / 1000;
  const procs: Record<string, number> = {};
  for (const [name, end] of b.procs) {
    const start = a.procs.get(name);
    if (start !== undefined && wall > 0) procs[name] = round1(((end - start) / wall) * 100);
  }
  const cores = b.cores.map((c, i) => {
    const s = a.cores[i];
    if (s === undefined || c.total === s.total) return 0;
    return round1(((c.busy - s.busy) / (c.total - s.total)) * 100);
  });
  const ours = Object.values(procs).reduce((x, y) => x + y, 0);
  const busy = cores.reduce((x, y) => x + y, 0);
  const other = round1(Math.max(0, busy - ours));
  let contention = cores.length > 0 ? round1(other / cores.length) : 0;
  if (coreOf !== null) {
    const byCore = new Map<number, number>();
    for (const [name, pct] of Object.entries(procs)) {
      const core = coreOf.get(name);
      if (core !== undefined) byCore.set(core, (byCore.get(core) ?? 0) + pct);
    }
    const othersOn = (core: number): number => round1(Math.max(0, (cores[core] ?? 0) - (byCore.get(core) ?? 0)));
    const proxyCore = procs["proxy"] === undefined ? undefined : coreOf.get("proxy");
    if (proxyCore !== undefined) contention = othersOn(proxyCore);
    else {
      contention = 0;
      for (const core of byCore.keys()) contention = Math.max(contention, othersOn(core));
    }
  }
  return { procs, cores, other, contention };
}

/**
 * Waits until the machine is quiet: total busy core-percent below `maxBusy`
 * over a 300 ms window, or `timeoutMs` passed. On a shared machine this keeps
 * other tenants' bursts (a test run, a lint) out of most measurements.
 * Resolves with the ms waited and whether quiet was reached.
 */
export async function waitQuiet(maxBusy: number, timeoutMs: number): Promise<{ waitedMs: number; quiet: boolean }> {
  const start = performance.now();
  for (;;) {
    const a = cpuSnapshot(new Map());
    await new Promise((r) => setTimeout(r, 300));
    const u = cpuUsage(a, cpuSnapshot(new Map()));
    const busy = u.cores.reduce((x, y) => x + y, 0);
    const waitedMs = Math.round(performance.now() - start);
    if (busy < maxBusy) return { waitedMs, quiet: true };
    if (waitedMs >= timeoutMs) return { waitedMs, quiet: false };
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
