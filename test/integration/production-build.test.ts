// The production build, as the image runs it: `tsc -p tsconfig.build.json`,
// then node with the Dockerfile CMD's flags on the compiled main.js, with type
// stripping switched off so that any .ts file the build still reaches fails the
// start. It must listen, answer, and drain on SIGTERM with exit code 0.
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageNodeFlags } from "../../bench/lib/production.ts";
import { ROOT, spawnGateway, writeConfig } from "../helpers/gateway.ts";

const run = promisify(execFile);
// Inside dist/ (git- and lint-ignored) so that the build's imports resolve to the project's node_modules.
const OUT = path.join(ROOT, "dist", `test-build-${process.pid}`);

describe("production build", () => {
  let gw: Awaited<ReturnType<typeof spawnGateway>> | undefined;
  let configDir = "";

  beforeAll(async () => {
    await run(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(ROOT, "tsconfig.build.json"), "--outDir", OUT], { cwd: ROOT });
    const cfg = await writeConfig({ upstreamUrl: "http://127.0.0.1:9" });
    configDir = cfg.dir;
    gw = await spawnGateway(cfg.file, ["--no-experimental-strip-types", ...imageNodeFlags(), path.join(OUT, "src", "main.js")]);
  }, 60_000);

  afterAll(async () => {
    if (gw !== undefined && gw.child.exitCode === null) gw.child.kill("SIGKILL");
    await rm(OUT, { recursive: true, force: true });
    await rm(configDir, { recursive: true, force: true });
  });

  it("runs from plain JavaScript with the image's node flags", async () => {
    if (gw === undefined) throw new Error("not started");
    expect(imageNodeFlags()).toEqual(["--max-semi-space-size=8", "--incremental-marking-soft-trigger=80", "--incremental-marking-hard-trigger=95"]);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const res = await fetch(`${gw.url}/proxy/d1/v1/models`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("missing_token");
  });

  it("drains and exits 0 on SIGTERM", async () => {
    if (gw === undefined) throw new Error("not started");
    expect(await gw.stop(), gw.stderr()).toBe(0);
  });
});
