// A port that is taken stops the start with exit 1 and one line naming the port
// and the variable that moves it, before anything is made: no data file, no
// first-start admin key printed and lost. The next start on a free port makes
// (and prints) the key as a first start should. The fake upstream does the same.
import net from "node:net";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, runMain, spawnGateway, writeConfig } from "../helpers/gateway.ts";

function hold(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      resolve({ port, close: () => new Promise((r) => srv.close(() => r())) });
    });
  });
}

describe("busy ports", () => {
  let taken: { port: number; close: () => Promise<void> };
  const dirs: string[] = [];

  beforeAll(async () => {
    taken = await hold();
  });
  afterAll(async () => {
    await taken?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function config(server: number, ops: number): Promise<{ file: string; data: string }> {
    const w = await writeConfig({
      upstreamUrl: "http://127.0.0.1:9",
      adminKey: null,
      patch: (cfg) => {
        cfg.server.port = server;
        cfg.ops = { port: ops };
      },
    });
    dirs.push(w.dir);
    const cfg = parse(await readFile(w.file, "utf8")) as { store: { embedded_path: string } };
    return { file: w.file, data: path.dirname(cfg.store.embedded_path) };
  }

  async function freePort(): Promise<number> {
    const h = await hold();
    await h.close();
    return h.port;
  }

  it("a taken data-plane port: exit 1, one line naming it and PATGATE_PORT, nothing created", async () => {
    const { file, data } = await config(taken.port, await freePort());
    const r = await runMain(file);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`port ${taken.port}`);
    expect(lines[0]).toContain("already in use");
    expect(lines[0]).toContain("PATGATE_PORT=");
    expect(r.stderr).not.toContain("pgadm_");
    expect(existsSync(data)).toBe(false);
  });

  it("a taken ops port: exit 1 naming PATGATE_METRICS_PORT, and the data plane never listened", async () => {
    const { file, data } = await config(await freePort(), taken.port);
    const r = await runMain(file);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringContaining("PATGATE_METRICS_PORT=") as string]);
    expect(r.stderr).toContain(`port ${taken.port}`);
    expect(existsSync(data)).toBe(false);
  });

  it("after a failed first start, the next start on the same data makes and prints the first-start admin key", async () => {
    const mine = await hold();
    const { file } = await config(mine.port, await freePort());
    const failed = await runMain(file);
    expect(failed.code).toBe(1);
    expect(failed.stderr).not.toContain("pgadm_");
    await mine.close();
    const gw = await spawnGateway(file);
    try {
      expect(gw.url).toBe(`http://127.0.0.1:${mine.port}`);
      expect(gw.stderr()).toMatch(/no admin key was configured, so this first start created one[\s\S]*pgadm_[A-Za-z0-9_]+/);
    } finally {
      await gw.stop();
    }
  });

  it("the fake upstream on a taken port: exit 1, one line naming --port", async () => {
    const child = spawn(process.execPath, [path.join(ROOT, "src", "devtools", "fake-upstream-main.ts"), "--port", String(taken.port), "--quiet"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect(err.trimEnd().split("\n")).toEqual([`fake upstream: port ${taken.port} on 127.0.0.1 is already in use; free it, or pick another with --port <n>`]);
  });
});
