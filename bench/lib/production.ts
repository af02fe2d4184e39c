/**
 * The gateway as the container image runs it: compiled to JavaScript (no type
 * stripping in the process) and started with the node flags of the
 * Dockerfile's CMD, read from the Dockerfile itself so the two cannot drift.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { symlink } from "node:fs/promises";
import path from "node:path";
import { ROOT } from "./gateway-setup.ts";

/** The flags between `node` and the script in the Dockerfile's exec-form CMD. */
export function imageNodeFlags(): string[] {
  const text = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
  const cmd = [...text.matchAll(/^CMD\s+(\[.*\])\s*$/gm)].pop();
  if (cmd === undefined) throw new Error("Dockerfile: no exec-form CMD");
  const argv = JSON.parse(cmd[1] ?? "[]") as unknown;
  if (!Array.isArray(argv) || argv[0] !== "node" || argv.length < 2 || !argv.every((a) => typeof a === "string")) {
    throw new Error(`Dockerfile: CMD is not ["node", ...flags, script]: ${cmd[1] ?? ""}`);
  }
  return argv.slice(1, -1);
}

/** Compiles the gateway and the bench's harness for it into dist/; returns the harness's path. */
export function buildGatewayHarness(): string {
  const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", path.join(ROOT, "bench", "tsconfig.gateway.json")], { cwd: ROOT, stdio: "inherit" });
  return path.join(ROOT, "dist", "bench", "gateway-main.js");
}

/**
 * Checks `ref` out at `dir` (a detached worktree sharing the project's
 * node_modules) and builds its gateway harness there, for a side-by-side run
 * of another build; returns the script. The caller removes the worktree
 * (`git worktree remove --force <dir>`).
 */
export async function buildBase(ref: string, dir: string): Promise<string> {
  execFileSync("git", ["worktree", "add", "--detach", "--force", dir, ref], { cwd: ROOT, stdio: "ignore" });
  await symlink(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  execFileSync(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(dir, "bench", "tsconfig.gateway.json")], { cwd: dir, stdio: "inherit" });
  return path.join(dir, "dist", "bench", "gateway-main.js");
}

/** The Helm chart's container memory limit (`resources.limits.memory`), in bytes. */
export function chartMemoryLimit(): number {
  const text = readFileSync(path.join(ROOT, "helm", "patgate", "values.yaml"), "utf8");
  const m = /^\s*limits:\s*\{[^}]*\bmemory:\s*(\d+)(Mi|Gi)\b/m.exec(text);
  if (m === null) throw new Error("helm/patgate/values.yaml: no resources.limits.memory in Mi or Gi");
  return Number(m[1]) * (m[2] === "Gi" ? 1024 ** 3 : 1024 ** 2);
}

/**
 * A command prefix that runs a process inside a memory cgroup limited to
 * `bytes`, as the chart's pod would be: Node then sizes V8's heap from that
 * limit (about half of it) instead of from the machine's memory, as it does in
 * the container. Null when no cgroup can be made here (not root, no memory
 * controller); the caller then says so in its notes.
 */
export function memoryCgroup(bytes: number, tag: string): { wrap: string[]; where: string } | null {
  const name = `patgate-bench-${process.pid}-${tag}`;
  const candidates = [
    // cgroup v2: one unified tree, the limit is memory.max.
    { dir: path.join("/sys/fs/cgroup", name), limit: "memory.max", marker: "/sys/fs/cgroup/cgroup.controllers" },
    // cgroup v1: the memory controller's own tree.
    { dir: path.join("/sys/fs/cgroup/memory", name), limit: "memory.limit_in_bytes", marker: "/sys/fs/cgroup/memory/memory.limit_in_bytes" },
  ];
  for (const c of candidates) {
    try {
      readFileSync(c.marker);
      mkdirSync(c.dir, { recursive: true });
      writeFileSync(path.join(c.dir, c.limit), String(bytes));
      const procs = path.join(c.dir, "cgroup.procs");
      return { wrap: ["sh", "-c", `echo $$ > ${procs} && exec "$0" "$@"`], where: c.dir };
    } catch {
      // Not this kind of cgroup tree, or not allowed: try the next.
    }
  }
  return null;
}

/** Removes a cgroup made by memoryCgroup once its processes are gone (best effort). */
export function removeCgroup(where: string): void {
  try {
    rmdirSync(where);
  } catch {
    // Still busy or already gone: the kernel frees an empty cgroup's memory anyway.
  }
}
