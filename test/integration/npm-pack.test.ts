// The package as a newcomer installs it: `npm pack` (whose prepack compiles the
// sources), the tarball installed into an empty prefix (`npm install -g
// --prefix`), and that `patgate` run from an empty directory, outside any clone:
// --help, catalog --json (offline, from the shipped config) and serve.
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/gateway.ts";

const run = promisify(execFile);

describe("npm pack, installed into an empty prefix", () => {
  let tmp = "";
  let bin = "";
  let pkgDir = "";
  // Only what a shell would have: no PATGATE_* from the test run, node on the PATH first.
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PATGATE_") && !k.startsWith("npm_"))),
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
  };

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "patgate-pack-"));
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024 });
    const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf("["))) as [{ filename: string }];
    const prefix = path.join(tmp, "prefix");
    await run("npm", ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", path.join(tmp, filename)], { cwd: tmp, env, maxBuffer: 64 * 1024 * 1024 });
    bin = path.join(prefix, "bin", "patgate");
    pkgDir = path.join(prefix, "lib", "node_modules", "patgate");
  }, 240_000);
  afterAll(async () => {
    if (tmp !== "") await rm(tmp, { recursive: true, force: true });
  });

  const cwd = (): string => path.join(tmp, "elsewhere");

  it("ships the compiled JavaScript, not the sources, tests or dev tools", async () => {
    expect(existsSync(path.join(pkgDir, "dist", "src", "cli", "main.js"))).toBe(true);
    expect(existsSync(path.join(pkgDir, "dist", "src", "main.js"))).toBe(true);
    for (const absent of ["src", "test", "bench", path.join("dist", "src", "devtools")]) expect(existsSync(path.join(pkgDir, absent)), absent).toBe(false);
    expect((await readdir(pkgDir)).sort()).toEqual(expect.arrayContaining(["README.md", "bin", "config", "dist", "docs", "package.json", "routes.yaml"]));
  });

  it("patgate --help and --version", async () => {
    await run("mkdir", ["-p", cwd()]);
    const help = await run(bin, ["--help"], { cwd: cwd(), env });
    expect(help.stdout).toContain("usage: patgate <command>");
    expect(help.stdout).toContain("patgate catalog");
    expect((await run(bin, ["--version"], { cwd: cwd(), env })).stdout).toMatch(/^patgate \d+\.\d+\.\d+\n$/);
  });

  it("patgate catalog --json, offline from the shipped config", async () => {
    const { stdout } = await run(bin, ["catalog", "--json"], { cwd: cwd(), env });
    const cat = JSON.parse(stdout) as { entity_types: Array<{ name: string; operations: string[] }> };
    expect(cat.entity_types.map((t) => t.name)).toEqual(["domains", "models", "datasets"]);
  });

  it("patgate serve runs the gateway from the package, and stops on SIGTERM", async () => {
    const child = spawn(bin, ["serve"], {
      cwd: cwd(),
      env: { ...env, PATGATE_PORT: "0", PATGATE_METRICS_PORT: "0", PATGATE_DATA: path.join(tmp, "data") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start: ${err}`)), 20_000);
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /"port":(\d+)[^\n]*"msg":"patgate listening"/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
    });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/proxy/d1/v1/models`)).status).toBe(401);
    // The first start made its admin key, into the data directory it was given.
    expect(err).toContain("pgadm_");
    expect(existsSync(path.join(tmp, "data", "patgate.db"))).toBe(true);
    const code = await new Promise<number | null>((resolve) => {
      child.once("exit", resolve);
      child.kill("SIGTERM");
    });
    expect(code).toBe(0);
  });
});
