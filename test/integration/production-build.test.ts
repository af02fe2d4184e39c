// The production build, as the image runs it: `tsc -p tsconfig.build.json`,
// then node with the Dockerfile CMD's flags on the compiled main.js, with type
// stripping switched off so that any .ts file the build still reaches fails the
// start. It must listen, answer, and drain on SIGTERM with exit code 0.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageNodeFlags } from "../../bench/lib/production.ts";
import { ROOT, writeConfig } from "../helpers/gateway.ts";
import { sinkLog } from "../helpers/log-sink.ts";

const run = promisify(execFile);
// Inside dist/ (git- and lint-ignored) so that the build's imports resolve to the project's node_modules.
const OUT = path.join(ROOT, "dist", `test-build-${process.pid}`);

describe("production build", () => {
  let child: ChildProcess | undefined;
  let out = "";
  let err = "";
  let url = "";
  let configDir = "";

  beforeAll(async () => {
    await run(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(ROOT, "tsconfig.build.json"), "--outDir", OUT], { cwd: ROOT });
    const cfg = await writeConfig({ upstreamUrl: "http://127.0.0.1:9" });
    configDir = cfg.dir;
    const proc = spawn(process.execPath, ["--no-experimental-strip-types", ...imageNodeFlags(), path.join(OUT, "src", "main.js"), cfg.file], { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.stdout.on("data", (d: Buffer) => sinkLog(d.toString("utf8")));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the build did not start:\n${err}`)), 15_000);
      proc.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /"port":(\d+)[^\n]*"msg":"patgate listening"/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the build exited with ${code}:\n${err}`));
      });
    });
    url = `http://127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) child.kill("SIGKILL");
    await rm(OUT, { recursive: true, force: true });
    await rm(configDir, { recursive: true, force: true });
  });

  it("runs from plain JavaScript with the image's node flags", async () => {
    expect(imageNodeFlags()).toContain("--max-semi-space-size=8");
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const res = await fetch(`${url}/proxy/d1/v1/models`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("missing_token");
  });

  it("drains and exits 0 on SIGTERM", async () => {
    const proc = child;
    if (proc === undefined) throw new Error("not started");
    const code = await new Promise<number | null>((resolve) => {
      proc.once("exit", (c) => resolve(c));
      proc.kill("SIGTERM");
    });
    expect(code, err).toBe(0);
  });
});
