/**
 * Top self-time functions of a V8 .cpuprofile (as written by `node --cpu-prof`),
 * and the same time grouped by file/package.
 *
 *   node bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  /** Percent of the non-idle time. */
  readonly pct: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  readonly idleMs: number;
  readonly gcMs: number;
  readonly functions: readonly ProfileEntry[];
  readonly files: readonly ProfileEntry[];
}

const ROOT = path.resolve(import.meta.dirname, "..");

/** `node_modules/<pkg>` or a path relative to the project, from a profile URL. */
function shortWhere(url: string): string {
  if (url === "") return "(native)";
  const p = url.startsWith("file://") ? decodeURIComponent(url.slice(7)) : url;
  const nm = p.lastIndexOf("node_modules/");
  if (nm !== -1) {
    const rest = p.slice(nm + "node_modules/".length).split("/");
    const pkg = rest[0]?.startsWith("@") === true ? `${rest[0]}/${rest[1] ?? ""}` : (rest[0] ?? "");
    return `${pkg}/${rest.slice(pkg.includes("/") ? 2 : 1).join("/")}`;
  }
  if (p.startsWith(ROOT)) return path.relative(ROOT, p);
  return p;
}

/** Self time per function and per file; idle and GC reported apart. */
export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length === samples.length) {
    // timeDeltas[i] is the time before sample i; attribute it to the sample's node.
    for (let i = 0; i < samples.length; i++) {
      const id = samples[i] as number;
      self.set(id, (self.get(id) ?? 0) + Math.max(0, deltas[i] as number));
    }
  } else {
    const interval = samples.length > 0 ? (prof.endTime - prof.startTime) / samples.length : 1000;
    for (const n of prof.nodes) self.set(n.id, (n.hitCount ?? 0) * interval);
  }
  let idle = 0;
  let gc = 0;
  let total = 0;
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (n === undefined) continue;
    total += us;
    const name = n.callFrame.functionName;
    if (name === "(idle)") {
      idle += us;
      continue;
    }
    if (name === "(garbage collector)") gc += us;
    const where = shortWhere(n.callFrame.url);
    const loc = n.callFrame.url === "" ? where : `${where}:${n.callFrame.lineNumber + 1}`;
    const key = `${name || "(anonymous)"}@${loc}`;
    const e = fns.get(key) ?? { name: name || "(anonymous)", where: loc, us: 0 };
    e.us += us;
    fns.set(key, e);
    const fileKey = n.callFrame.url === "" ? `(native) ${name}` : where;
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  const busy = Math.max(1, total - idle);
  const functions = [...fns.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: Math.round(e.us / 100) / 10, pct: Math.round((e.us / busy) * 1000) / 10 }));
  const fileList = [...files.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, us]) => ({ name: where, where, selfMs: Math.round(us / 100) / 10, pct: Math.round((us / busy) * 1000) / 10 }));
  return { file, totalMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), gcMs: Math.round(gc / 1000), functions, files: fileList };
}

/** Plain-text rendering of a summary. */
export function renderProfile(s: ProfileSummary): string {
  const out = [
    `CPU profile ${s.file}`,
    `  sampled ${s.totalMs} ms, idle ${s.idleMs} ms, busy ${s.totalMs - s.idleMs} ms (GC ${s.gcMs} ms); % below are of busy time`,
    "  top self time by function:",
    ...s.functions.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(8)} ms  ${f.name}  ${f.where}`),
    "  self time by file / package:",
    ...s.files.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(8)} ms  ${f.name}`),
  ];
  return out.join("\n");
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename);
if (invokedDirectly) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write("usage: node bench/profile-summary.ts <file.cpuprofile> [top]\n");
    process.exit(2);
  }
  process.stdout.write(renderProfile(summarizeProfile(file, Number(process.argv[3] ?? 25))) + "\n");
}
