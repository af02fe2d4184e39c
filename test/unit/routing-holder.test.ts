import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RouteTableHolder } from "../../src/routing/holder.ts";
import type { ReloadResult } from "../../src/routing/holder.ts";
import { RouteTableError } from "../../src/routing/table.ts";
import { testCatalog } from "../fixtures/catalog.ts";

function routesYaml(path: string): string {
  return `version: 1
routes:
  - id: r
    method: POST
    path: ${path}
    operation: llm_chat_completions
    entity: { type: models, from: body, field: model }
`;
}

const INVALID = "version: 1\nroutes:\n  - id: r\n    method: POST\n    path: /x\n    operation: nope\n";

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const paths = (h: RouteTableHolder): string[] => h.current.routes.map((r) => r.path);

describe("RouteTableHolder", () => {
  let dir: string;
  let holder: RouteTableHolder | null = null;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "patgate-routes-"));
  });

  afterEach(() => {
    holder?.close();
    holder = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses to start on an invalid or missing file", () => {
    const file = join(dir, "routes.yaml");
    writeFileSync(file, INVALID);
    expect(() => RouteTableHolder.load(file, testCatalog)).toThrow(RouteTableError);
    expect(() => RouteTableHolder.load(join(dir, "missing.yaml"), testCatalog)).toThrow(RouteTableError);
  });

  it("reload keeps the last good table on error and swaps on success", () => {
    const file = join(dir, "routes.yaml");
    writeFileSync(file, routesYaml("/a"));
    holder = RouteTableHolder.load(file, testCatalog);
    const first = holder.current;

    writeFileSync(file, INVALID);
    const bad = holder.reload();
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/routes\.yaml:6:16: route "r": unknown operation "nope"/);
    expect(holder.current).toBe(first);

    unlinkSync(file);
    const gone = holder.reload();
    expect(gone.ok).toBe(false);
    expect(holder.current).toBe(first);

    writeFileSync(file, routesYaml("/b"));
    expect(holder.reload()).toEqual({ ok: true });
    expect(paths(holder)).toEqual(["/b"]);
  });

  it("watch: reports an invalid edit, keeps serving, then picks up a valid one", async () => {
    const file = join(dir, "routes.yaml");
    writeFileSync(file, routesYaml("/a"));
    holder = RouteTableHolder.load(file, testCatalog);
    const seen: ReloadResult[] = [];
    holder.watch((r) => seen.push(r), { debounceMs: 50 });

    writeFileSync(file, INVALID);
    await waitFor(() => seen.length >= 1);
    expect(seen[0]?.ok).toBe(false);
    expect(paths(holder)).toEqual(["/a"]);

    writeFileSync(file, routesYaml("/c"));
    await waitFor(() => seen.some((r) => r.ok));
    expect(paths(holder)).toEqual(["/c"]);
  });

  it("watch: debounces a burst of writes into one reload", async () => {
    const file = join(dir, "routes.yaml");
    writeFileSync(file, routesYaml("/a"));
    holder = RouteTableHolder.load(file, testCatalog);
    const seen: ReloadResult[] = [];
    holder.watch((r) => seen.push(r), { debounceMs: 150 });
    for (const p of ["/b", "/c", "/d", "/e"]) writeFileSync(file, routesYaml(p));
    await waitFor(() => seen.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual([{ ok: true }]);
    expect(paths(holder)).toEqual(["/e"]);
  });

  it("watch: follows a Kubernetes-style ConfigMap symlink swap", async () => {
    // <dir>/routes.yaml -> ..data/routes.yaml, ..data -> ..v1; the kubelet
    // writes ..v2 and atomically renames a new ..data symlink over the old one.
    mkdirSync(join(dir, "..v1"));
    writeFileSync(join(dir, "..v1", "routes.yaml"), routesYaml("/v1"));
    symlinkSync("..v1", join(dir, "..data"));
    symlinkSync(join("..data", "routes.yaml"), join(dir, "routes.yaml"));
    holder = RouteTableHolder.load(join(dir, "routes.yaml"), testCatalog);
    const seen: ReloadResult[] = [];
    holder.watch((r) => seen.push(r), { debounceMs: 50 });

    mkdirSync(join(dir, "..v2"));
    writeFileSync(join(dir, "..v2", "routes.yaml"), routesYaml("/v2"));
    symlinkSync("..v2", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    rmSync(join(dir, "..v1"), { recursive: true });

    await waitFor(() => seen.some((r) => r.ok));
    expect(paths(holder)).toEqual(["/v2"]);
  });

  it("watch: survives the file disappearing and picks it up when it returns", async () => {
    const file = join(dir, "routes.yaml");
    writeFileSync(file, routesYaml("/a"));
    holder = RouteTableHolder.load(file, testCatalog);
    const seen: ReloadResult[] = [];
    holder.watch((r) => seen.push(r), { debounceMs: 50 });

    unlinkSync(file);
    await waitFor(() => seen.length >= 1);
    expect(seen[0]?.ok).toBe(false);
    expect(paths(holder)).toEqual(["/a"]);

    writeFileSync(file, routesYaml("/a"));
    await waitFor(() => seen.some((r) => r.ok));
    expect(paths(holder)).toEqual(["/a"]);
  });

  it("watch: survives the directory disappearing", async () => {
    const sub = join(dir, "cfg");
    mkdirSync(sub);
    const file = join(sub, "routes.yaml");
    writeFileSync(file, routesYaml("/a"));
    holder = RouteTableHolder.load(file, testCatalog);
    const seen: ReloadResult[] = [];
    holder.watch((r) => seen.push(r), { debounceMs: 50, retryMs: 50 });

    rmSync(sub, { recursive: true });
    await waitFor(() => seen.some((r) => !r.ok));
    expect(paths(holder)).toEqual(["/a"]);

    mkdirSync(sub);
    writeFileSync(file, routesYaml("/back"));
    await waitFor(() => paths(holder as RouteTableHolder)[0] === "/back");
  });

  it("close stops reloading", async () => {
    const file = join(dir, "routes.yaml");
    writeFileSync(file, routesYaml("/a"));
    holder = RouteTableHolder.load(file, testCatalog);
    const seen: ReloadResult[] = [];
    holder.watch((r) => seen.push(r), { debounceMs: 20 });
    holder.close();
    writeFileSync(file, routesYaml("/b"));
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual([]);
    expect(paths(holder)).toEqual(["/a"]);
  });

  it("a throwing callback does not break watching", async () => {
    const file = join(dir, "routes.yaml");
    writeFileSync(file, routesYaml("/a"));
    holder = RouteTableHolder.load(file, testCatalog);
    holder.watch(() => {
      throw new Error("logger broke");
    }, { debounceMs: 20 });
    writeFileSync(file, routesYaml("/b"));
    await waitFor(() => paths(holder as RouteTableHolder)[0] === "/b");
    writeFileSync(file, routesYaml("/c"));
    await waitFor(() => paths(holder as RouteTableHolder)[0] === "/c");
  });
});
