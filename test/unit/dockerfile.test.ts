/**
 * Static checks of the Dockerfile and .dockerignore (no Docker engine here):
 * multi-stage on Node 24, production dependencies only, a numeric non-root
 * user, a node-based HEALTHCHECK on /healthz, the CMD, and a build context
 * that lets in what the COPYs need and nothing secret. Also that the image and
 * the Helm chart agree on user, port and data directory.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const ROOT = path.resolve(import.meta.dirname, "..", "..");

interface Instruction {
  readonly cmd: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? "";
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i] ?? "";
      if (/^\s*#/.test(next)) continue; // comments inside a continued instruction are skipped by Docker too
      line = line.replace(/\\\s*$/, " ") + next.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m === null) throw new Error(`Dockerfile:${start + 1}: cannot read "${line}"`);
    out.push({ cmd: (m[1] ?? "").toUpperCase(), args: (m[2] ?? "").trim(), line: start + 1 });
  }
  return out;
}

interface Stage {
  readonly image: string;
  readonly name: string | null;
  readonly body: Instruction[];
}

function stages(all: Instruction[]): { args: Map<string, string>; stages: Stage[] } {
  const args = new Map<string, string>();
  const out: { image: string; name: string | null; body: Instruction[] }[] = [];
  for (const ins of all) {
    if (ins.cmd === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (m === null) throw new Error(`Dockerfile:${ins.line}: cannot read FROM`);
      const image = (m[1] ?? "").replace(/\$\{?([A-Za-z_]\w*)\}?/g, (_x, n: string) => args.get(n) ?? "");
      out.push({ image, name: m[2] ?? null, body: [] });
    } else if (out.length === 0) {
      if (ins.cmd !== "ARG") throw new Error(`Dockerfile:${ins.line}: only ARG may come before the first FROM`);
      const [name, def] = ins.args.split("=", 2);
      args.set((name ?? "").trim(), (def ?? "").trim());
    } else {
      out[out.length - 1]?.body.push(ins);
    }
  }
  return { args, stages: out };
}

/** ENV KEY=VALUE pairs of a stage (the KEY=VALUE form only; the Dockerfile uses no other). */
function env(stage: Stage): Map<string, string> {
  const out = new Map<string, string>();
  for (const ins of stage.body.filter((i) => i.cmd === "ENV")) {
    for (const m of ins.args.matchAll(/([A-Za-z_]\w*)=("[^"]*"|\S+)/g)) out.set(m[1] ?? "", (m[2] ?? "").replace(/^"|"$/g, ""));
  }
  return out;
}

function jsonArgs(ins: Instruction | undefined, strip = ""): unknown {
  if (ins === undefined) return undefined;
  return JSON.parse(ins.args.slice(strip.length).trim()) as unknown;
}

const dockerfile = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
const parsed = stages(instructions(dockerfile));
const final = parsed.stages[parsed.stages.length - 1];
if (final === undefined) throw new Error("Dockerfile has no FROM");
const finalEnv = env(final);
const last = (cmd: string): Instruction | undefined => final.body.filter((i) => i.cmd === cmd).pop();

describe("Dockerfile", () => {
  it("is multi-stage, every stage on a Node 24 image", () => {
    expect(parsed.stages.length).toBeGreaterThanOrEqual(2);
    for (const s of parsed.stages) expect(s.image).toMatch(/^(docker\.io\/(library\/)?)?node:24([.-][\w.-]*)?(@sha256:[0-9a-f]{64})?$/);
    expect(final.image).toMatch(/slim/);
  });

  it("installs production dependencies only, exactly as locked, in a build stage", () => {
    const deps = parsed.stages.find((s) => s.body.some((i) => i.cmd === "RUN" && /\bnpm ci\b/.test(i.args)));
    expect(deps, "a stage that runs npm ci").toBeDefined();
    expect(deps).not.toBe(final);
    const ci = deps?.body.find((i) => i.cmd === "RUN" && /\bnpm ci\b/.test(i.args));
    expect(ci?.args).toMatch(/--omit=dev\b/);
    expect(deps?.body.some((i) => i.cmd === "COPY" && /\bpackage-lock\.json\b/.test(i.args))).toBe(true);
    const fromDeps = final.body.find((i) => i.cmd === "COPY" && i.args.startsWith(`--from=${deps?.name ?? "?"} `));
    expect(fromDeps?.args).toMatch(/\/node_modules\s+\.\/node_modules$/);
  });

  it("runs no package install in the final stage", () => {
    for (const i of final.body.filter((x) => x.cmd === "RUN")) {
      expect(i.args, `Dockerfile:${i.line}`).not.toMatch(/\b(npm|npx|yarn|pnpm|corepack)\s+(i|install|ci|add)\b|apt-get install|apk add/);
    }
  });

  it("copies only package.json, bin/, config/ and routes.yaml from the context (the code comes from the build stage)", () => {
    const sources = final.body
      .filter((i) => (i.cmd === "COPY" || i.cmd === "ADD") && !i.args.startsWith("--from="))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith("--")).slice(0, -1));
    expect(sources.sort()).toEqual(["bin", "config", "package.json", "routes.yaml"]);
    expect(final.body.some((i) => i.cmd === "ADD")).toBe(false);
  });

  it("compiles src/ in a build stage with the project's build script and copies only its output", () => {
    const build = parsed.stages.find((s) => s.body.some((i) => i.cmd === "RUN" && /\bnpm run build\b/.test(i.args)));
    expect(build, "a stage that runs npm run build").toBeDefined();
    expect(build).not.toBe(final);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    // tsc, then the web page's files (served as they are) copied next to the compiled src/ui/.
    expect(pkg.scripts["build"]).toMatch(/^tsc -p tsconfig\.build\.json && node -e .*cpSync\('src\/ui\/web','dist\/src\/ui\/web'/);
    const tsconfig = JSON.parse(readFileSync(path.join(ROOT, "tsconfig.build.json"), "utf8")) as { compilerOptions: { outDir: string }; include: string[] };
    expect(tsconfig.compilerOptions.outDir).toBe("dist");
    expect(tsconfig.include).toEqual(["src"]);
    const copied = final.body.filter((i) => i.cmd === "COPY" && i.args.startsWith(`--from=${build?.name ?? "?"} `));
    expect(copied.map((i) => i.args.split(/\s+/).slice(1).join(" "))).toEqual(["/app/dist/src ./dist/src"]);
  });

  it("has the patgate CLI on the PATH, running the build (no sources in the image)", () => {
    expect(final.body.some((i) => i.cmd === "COPY" && /^bin\s+\.\/bin$/.test(i.args))).toBe(true);
    expect(final.body.some((i) => i.cmd === "RUN" && /\bln -s \/app\/bin\/patgate\.js \/usr\/local\/bin\/patgate\b/.test(i.args))).toBe(true);
    // bin/patgate.js falls back to the build when src/ is absent, which the image never copies.
    const bin = readFileSync(path.join(ROOT, "bin", "patgate.js"), "utf8");
    expect(bin).toContain('"../dist/src/cli/main.js"');
    expect(final.body.some((i) => i.cmd === "COPY" && /^src\b/.test(i.args))).toBe(false);
    expect(readFileSync(path.join(ROOT, "bin", "patgate.js"), "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
  });

  it("works in /app as a numeric non-root user", () => {
    expect(last("WORKDIR")?.args).toBe("/app");
    const user = last("USER")?.args ?? "";
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
    expect(Number(user.split(":")[1] ?? "1")).toBeGreaterThan(0);
    // USER comes after everything that needs root.
    const userLine = last("USER")?.line ?? 0;
    expect(final.body.filter((i) => i.cmd === "RUN").every((i) => i.line < userLine)).toBe(true);
  });

  it("sets production mode, listens on every interface and writes only to a data volume", () => {
    expect(finalEnv.get("NODE_ENV")).toBe("production");
    expect(finalEnv.get("PATGATE_HOST")).toBe("0.0.0.0");
    const data = finalEnv.get("PATGATE_DATA") ?? "";
    expect(data).toMatch(/^\/\w+/);
    expect(jsonArgs(last("VOLUME"))).toContain(data);
    expect(final.body.some((i) => i.cmd === "RUN" && i.args.includes(`chown ${last("USER")?.args ?? "?"} ${data}`))).toBe(true);
    const port = finalEnv.get("PATGATE_PORT");
    expect(port).toMatch(/^\d+$/);
    expect(last("EXPOSE")?.args).toBe(port);
    expect(finalEnv.get("PATGATE_CONFIG")).toBe("/app/config/patgate.yaml");
  });

  it("has a HEALTHCHECK that asks /healthz with node (no curl in a slim image)", () => {
    const hc = last("HEALTHCHECK");
    expect(hc).toBeDefined();
    const cmd = /^(?:--\S+\s+)*CMD\s+(\[.*\])$/.exec(hc?.args ?? "");
    expect(cmd, "exec-form CMD").not.toBeNull();
    const argv = JSON.parse(cmd?.[1] ?? "[]") as string[];
    expect(argv[0]).toBe("node");
    expect(argv.join(" ")).toContain("/healthz");
    expect(argv.join(" ")).toContain("process.env.PATGATE_PORT");
    expect(hc?.args).not.toMatch(/\b(curl|wget)\b/);
  });

  it("stops with SIGTERM and runs the build of src/main.ts with node and its memory flags", () => {
    expect(last("STOPSIGNAL")?.args).toBe("SIGTERM");
    expect(jsonArgs(last("CMD"))).toEqual([
      "node",
      "--max-semi-space-size=8",
      "--incremental-marking-soft-trigger=80",
      "--incremental-marking-hard-trigger=95",
      "dist/src/main.js",
    ]);
    expect(existsSync(path.join(ROOT, "src", "main.ts"))).toBe(true);
    expect(last("ENTRYPOINT")).toBeUndefined();
  });
});

// ---- .dockerignore ------------------------------------------------------------------

/** Go filepath.Match-style glob (with `**`) to a RegExp over slash-separated paths. */
function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? "";
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Whether a path is left out of the build context: the last matching pattern (or one matching a parent directory) decides. */
function excluded(patterns: readonly string[], file: string): boolean {
  const parts = file.split("/");
  const prefixes = parts.map((_p, i) => parts.slice(0, i + 1).join("/"));
  let out = false;
  for (const raw of patterns) {
    const negate = raw.startsWith("!");
    const glob = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, "");
    const re = globToRegExp(glob);
    if (prefixes.some((p) => re.test(p))) out = !negate;
  }
  return out;
}

describe(".dockerignore", () => {
  const patterns = readFileSync(path.join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));

  it("lets in every file the Dockerfile copies", () => {
    for (const f of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src/main.ts", "src/app.ts", "config/patgate.yaml", "routes.yaml", "bin/patgate.js"]) {
      expect(excluded(patterns, f), f).toBe(false);
    }
    // And whatever any stage copies from the context (a COPY of a left-out path fails the build).
    for (const stage of parsed.stages) {
      for (const i of stage.body.filter((x) => x.cmd === "COPY" && !x.args.startsWith("--from="))) {
        for (const src of i.args.split(/\s+/).filter((a) => !a.startsWith("--")).slice(0, -1)) expect(excluded(patterns, src), `Dockerfile:${i.line} ${src}`).toBe(false);
      }
    }
  });

  it("keeps secrets, local state, VCS data and dev files out of the build context", () => {
    for (const f of [".env", "src/.env", "data/patgate.json", "data/pepper", ".git/HEAD", "node_modules/yaml/package.json",
      "test/unit/tokens.test.ts", "helm/patgate/values.yaml", "bench/run.ts", "coverage/index.html", "npm-debug.log", "Dockerfile", "dist/src/main.js"]) {
      expect(excluded(patterns, f), f).toBe(true);
    }
  });
});

describe("image and Helm chart agree", () => {
  const values = parseYaml(readFileSync(path.join(ROOT, "helm", "patgate", "values.yaml"), "utf8")) as {
    server: { port: number };
    podSecurityContext: { runAsUser: number; runAsGroup: number; fsGroup: number };
    securityContext: { runAsUser: number };
  };
  const deployment = readFileSync(path.join(ROOT, "helm", "patgate", "templates", "deployment.yaml"), "utf8");

  it("on the user, the port and the data directory", () => {
    const [uid, gid] = (last("USER")?.args ?? "").split(":").map(Number);
    expect(values.podSecurityContext.runAsUser).toBe(uid);
    expect(values.securityContext.runAsUser).toBe(uid);
    expect(values.podSecurityContext.runAsGroup).toBe(gid);
    expect(values.podSecurityContext.fsGroup).toBe(gid);
    expect(String(values.server.port)).toBe(finalEnv.get("PATGATE_PORT"));
    const data = finalEnv.get("PATGATE_DATA") ?? "";
    expect(deployment).toContain(`- name: PATGATE_DATA\n              value: ${data}`);
    expect(deployment).toContain(`- name: data\n              mountPath: ${data}`);
  });
});
