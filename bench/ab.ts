/**
 * `npm run bench:ab -- --base <git ref> [options]`: the gateway's CPU per
 * request in two builds, the working tree's and `--base`'s, measured
 * alternately in one run.
 *
 * On a shared VM a proxy's CPU per request drifts by tens of percent within
 * minutes, far more than most changes move it: runs of the two builds minutes
 * apart cannot be compared. Here both gateways run side by side on the proxy
 * core, each round measures both back to back (the order alternates every
 * round), and the medians over the rounds are compared, with the count of
 * rounds in which the working tree used less CPU.
 *
 * The two sides can also differ in how they run rather than in their code
 * (`--base HEAD` with `--base-memory chart`, say): extra node flags or a
 * memory cgroup per side.
 *
 * Output: a table on stdout and bench/results/ab.json.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { CannonResult } from "./lib/jobs.ts";
import { NodeChild, procStat, taskset } from "./lib/proc.ts";
import { LIMITS_MODES, makeGatewayFixture, ROOT, type LimitsMode } from "./lib/gateway-setup.ts";
import { buildBase, buildGatewayHarness, chartMemoryLimit, imageNodeFlags, memoryCgroup, removeCgroup } from "./lib/production.ts";
import { chatBody, chatRequest, GATEWAY_PREFIX, type Target } from "./lib/context.ts";
import { median } from "./lib/stats.ts";

const USAGE = `usage: npm run bench:ab -- --base <git ref> [options]
  --base <ref>          the build to compare the working tree with (a commit, tag or branch)
  --body <bytes>        request body size: 1024 is S1's shape, 65536 S5's (default 1024)
  --rounds <n>          rounds; each measures both builds (default 10)
  --duration <s>        seconds per measurement (default 5)
  --connections <n>     autocannon connections (default 50)
  --base-flags "<f>"    node flags for the base's gateway, after the image's (e.g. "--max-old-space-size=2048")
  --tree-flags "<f>"    the same for the working tree's
  --base-memory <MiB>   run the base's gateway in a memory cgroup of this size ("chart": the Helm chart's limit; needs root)
  --tree-memory <MiB>   the same for the working tree's
  --base-limits <m>     the base gateway's limits and usage metering: on, off or none (default: none, the
                        keys left out, for a base that predates them; docs: bench/README.md)
  --tree-limits <m>     the same for the working tree's (default none: the build's defaults)
  --out <file>          JSON output (default bench/results/ab.json)`;

const { values: a } = parseArgs({
  options: {
    base: { type: "string" },
    body: { type: "string", default: "1024" },
    rounds: { type: "string", default: "10" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
    "base-flags": { type: "string", default: "" },
    "tree-flags": { type: "string", default: "" },
    "base-memory": { type: "string" },
    "tree-memory": { type: "string" },
    "base-limits": { type: "string", default: "none" },
    "tree-limits": { type: "string", default: "none" },
    out: { type: "string", default: path.join(ROOT, "bench", "results", "ab.json") },
    help: { type: "boolean", default: false },
  },
});
if (a.help || a.base === undefined) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(a.help ? 0 : 2);
}
const bodyBytes = positive(a.body, "--body");
const rounds = positive(a.rounds, "--rounds");
const durationSec = positive(a.duration, "--duration");
const connections = positive(a.connections, "--connections");
const sides = {
  base: { flags: a["base-flags"].split(/\s+/).filter((f) => f !== ""), memory: memoryBytes(a["base-memory"], "--base-memory"), limits: limitsMode(a["base-limits"], "--base-limits") },
  tree: { flags: a["tree-flags"].split(/\s+/).filter((f) => f !== ""), memory: memoryBytes(a["tree-memory"], "--tree-memory"), limits: limitsMode(a["tree-limits"], "--tree-limits") },
};

function limitsMode(v: string, name: string): LimitsMode {
  if ((LIMITS_MODES as readonly string[]).includes(v)) return v as LimitsMode;
  process.stderr.write(`${name} is one of ${LIMITS_MODES.join(", ")}\n${USAGE}\n`);
  process.exit(2);
}

/** A memory option in bytes ("chart": the Helm chart's limit), or null when not given. */
function memoryBytes(v: string | undefined, name: string): number | null {
  if (v === undefined) return null;
  if (v === "chart") return chartMemoryLimit();
  return positive(v, name) * 1024 * 1024;
}

function positive(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`${name} must be a positive integer, got "${v}"\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

function git(args: string[], cwd = ROOT): string {
  return execFileSync("git", args, { cwd, encoding: "utf8" }).trim();
}

interface Run {
  readonly round: number;
  readonly build: "base" | "tree";
  readonly rps: number;
  readonly cpuUsPerRequest: number;
  readonly non2xx: number;
}

async function main(): Promise<void> {
  const pin = taskset() !== null;
  const baseCommit = git(["rev-parse", a.base as string]);
  const treeCommit = git(["rev-parse", "HEAD"]);
  const dirty = git(["status", "--porcelain", "--untracked-files=no"]) !== "";
  const work = await mkdtemp(path.join(os.tmpdir(), "patgate-ab-"));
  const baseDir = path.join(work, "base");
  const children: NodeChild[] = [];
  const dirs: string[] = [];
  const cgroups: string[] = [];
  try {
    const baseScript = await buildBase(a.base as string, baseDir);
    const treeScript = buildGatewayHarness();
    const upstream = await NodeChild.start("upstream", path.join(ROOT, "bench", "servers", "upstream-main.ts"), { cpus: pin ? "0" : null, args: ["--response-bytes", "1024"] });
    children.push(upstream);
    const loadgen = await NodeChild.start("loadgen", path.join(ROOT, "bench", "load-main.ts"), { cpus: pin ? "0" : null });
    children.push(loadgen);
    // Each gateway has its own store and so its own token; a base from before the SQLite store reads the JSON file as its store.
    const fixture = (build: "base" | "tree", root: string): ReturnType<typeof makeGatewayFixture> =>
      makeGatewayFixture({ upstreamUrl: `http://127.0.0.1:${upstream.port}`, cacheMaxEntries: null, distinct: 0, connections: 1024, limits: sides[build].limits, root });
    const fixtures = { base: await fixture("base", baseDir), tree: await fixture("tree", ROOT) };
    dirs.push(fixtures.base.dir, fixtures.tree.dir);
    const start = (build: "base" | "tree", script: string): Promise<NodeChild> => {
      const { flags, memory } = sides[build];
      let wrap: string[] | undefined;
      if (memory !== null) {
        const cg = memoryCgroup(memory, `ab-${build}`);
        if (cg === null) throw new Error(`--${build}-memory: no memory cgroup could be made (needs root and a memory controller)`);
        cgroups.push(cg.where);
        wrap = cg.wrap;
      }
      return NodeChild.start(`gateway-${build}`, script, {
        cpus: pin ? "1" : null,
        execArgv: [...imageNodeFlags(), ...flags],
        args: ["--config", fixtures[build].configFile, "--log", "/dev/null"],
        ...(wrap === undefined ? {} : { wrap }),
      });
    };
    const gateways = { base: await start("base", baseScript), tree: await start("tree", treeScript) };
    children.push(gateways.base, gateways.tree);
    const body = chatBody(bodyBytes);
    const measure = async (build: "base" | "tree", seconds: number): Promise<{ result: CannonResult; cpuUs: number }> => {
      const gw = gateways[build];
      const t: Target = { name: "gateway", port: gw.port, prefix: GATEWAY_PREFIX, pid: gw.pid };
      const before = procStat(gw.pid);
      const result = await loadgen.request<CannonResult>({ cmd: "cannon", job: { request: chatRequest(t, body, fixtures[build].token), connections, durationSec: seconds } });
      const after = procStat(gw.pid);
      const cpuUs = before === null || after === null ? Number.NaN : (after.cpuSec - before.cpuSec) * 1e6;
      return { result, cpuUs };
    };
    process.stdout.write(`ab: base ${a.base} (${baseCommit.slice(0, 12)}) against the working tree (${treeCommit.slice(0, 12)}${dirty ? " + uncommitted changes" : ""}); ${bodyBytes} B body, c=${connections}, ${rounds} rounds x ${durationSec}s${pin ? ", gateways pinned to CPU 1, upstream and load generator to CPU 0" : ", not pinned (no taskset)"}\n`);
    for (const build of ["base", "tree"] as const) {
      const { flags, memory, limits } = sides[build];
      if (flags.length > 0 || memory !== null || limits !== "none") process.stdout.write(`  ${build}: ${[...flags, ...(memory === null ? [] : [`in a ${memory / 2 ** 20} MiB memory cgroup`]), ...(limits === "none" ? [] : [`limits ${limits}`])].join(", ")}\n`);
    }
    for (const build of ["base", "tree"] as const) await measure(build, 3);
    const runs: Run[] = [];
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? (["base", "tree"] as const) : (["tree", "base"] as const);
      for (const build of order) {
        const { result, cpuUs } = await measure(build, durationSec);
        const non2xx = result.total - (result.statuses["200"] ?? 0);
        const run: Run = { round, build, rps: Math.round(result.rps), cpuUsPerRequest: Math.round((cpuUs / Math.max(1, result.total)) * 10) / 10, non2xx };
        runs.push(run);
        process.stdout.write(`  round ${round} ${build.padEnd(4)} ${String(run.rps).padStart(6)} req/s  ${run.cpuUsPerRequest} us/req${non2xx > 0 ? `  ${non2xx} non-200` : ""}\n`);
      }
    }
    const per = (build: "base" | "tree"): number[] => runs.filter((r) => r.build === build).map((r) => r.cpuUsPerRequest);
    const baseMedian = median(per("base"));
    const treeMedian = median(per("tree"));
    const treeLess = runs.filter((r) => r.build === "tree").filter((r) => r.cpuUsPerRequest < (runs.find((b) => b.build === "base" && b.round === r.round)?.cpuUsPerRequest ?? Infinity)).length;
    const summary = {
      baseMedianUs: baseMedian,
      treeMedianUs: treeMedian,
      treeOverBase: Math.round((treeMedian / baseMedian) * 1000) / 1000,
      roundsTreeUsedLess: treeLess,
      rounds,
    };
    process.stdout.write(`\nCPU per request, median of ${rounds}: base ${baseMedian} us, tree ${treeMedian} us (tree/base ${summary.treeOverBase}); the tree used less in ${treeLess} of ${rounds} rounds.\n`);
    const out = { at: new Date().toISOString(), node: process.version, base: { ref: a.base, commit: baseCommit, nodeFlags: sides.base.flags, memoryBytes: sides.base.memory, limits: sides.base.limits }, tree: { commit: treeCommit, dirty, nodeFlags: sides.tree.flags, memoryBytes: sides.tree.memory, limits: sides.tree.limits }, bodyBytes, connections, durationSec, pinned: pin, runs, summary };
    await mkdir(path.dirname(a.out), { recursive: true });
    await writeFile(a.out, `${JSON.stringify(out, null, 2)}\n`);
    process.stdout.write(`raw runs: ${a.out}\n`);
  } finally {
    await Promise.all(children.map((c) => c.stop().catch(() => undefined)));
    try {
      git(["worktree", "remove", "--force", baseDir]);
    } catch {
      // never created (bad ref): nothing to remove
    }
    for (const dir of [...dirs, work]) await rm(dir, { recursive: true, force: true });
    for (const cg of cgroups) removeCgroup(cg);
  }
}

await main();
