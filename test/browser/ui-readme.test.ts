// README.md's "The web page", followed as a newcomer would, with real processes:
// shell 1 the fake upstream, shell 2 `npm run dev-idp` (whose printed line is what
// shell 3 runs), shell 3 `npm start` with exactly that line's PATGATE_OIDC_* values,
// the README's CLI alternative for step 1, then Chromium: step 2 signs alice in at
// the provider and lands on Personal Access Tokens, step 3 creates a token there.
//
// Two things differ from the README, so the test can run beside others: every port
// is a free one (the provider's --port and --gateway, PATGATE_PORT, and the shipped
// config copied with its upstream pointed at the fake's port), and PATGATE_DATA is a
// temporary directory.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { launch, openContext, screenshot, signInThroughIdp } from "../helpers/browser.ts";
import { ROOT } from "../helpers/gateway.ts";
import { noteSecret, sinkLog } from "../helpers/log-sink.ts";
import { freePort } from "../helpers/redis.ts";

const BIN = path.join(ROOT, "bin", "patgate.js");
const BASE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PATGATE_")));

interface Proc {
  readonly child: ChildProcess;
  out: string;
}
const running: Proc[] = [];
let dir = "";
let browser: Browser | null = null;

/** Starts `node args…` and resolves once stdout + stderr match `ready`. */
async function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ p: Proc; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...BASE_ENV, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const p: Proc = { child, out: "" };
  running.push(p);
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")} did not become ready:\n${p.out}`)), 20_000);
    const seen = (d: Buffer, log: boolean): void => {
      p.out += d.toString();
      // Logs (stdout) go to the log-leak check; stderr is the terminal, where the first start shows its key once.
      if (log) sinkLog(d.toString("utf8"));
      const m = ready.exec(p.out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on("data", (d: Buffer) => seen(d, true));
    child.stderr?.on("data", (d: Buffer) => seen(d, false));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited with ${code}:\n${p.out}`));
    });
  });
  return { p, match };
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...BASE_ENV, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, out }));
  });
}

/** The README's section "The web page", its line continuations joined. */
async function readmeSection(): Promise<string> {
  const readme = (await readFile(path.join(ROOT, "README.md"), "utf8")).replace(/\s*\\\n\s*/g, " ");
  const at = readme.indexOf("\n## The web page\n");
  expect(at).toBeGreaterThan(0);
  const section = readme.slice(at + 1);
  return section.slice(0, section.indexOf("\n## ", 4));
}

/** `NAME=value` pairs of a shell line (values unquoted or in double quotes). */
function envOf(line: string): Record<string, string> {
  return Object.fromEntries([...line.matchAll(/\b(PATGATE_[A-Z_]+)=("([^"]*)"|\S+)/g)].map((m) => [m[1] ?? "", m[3] ?? m[2] ?? ""]));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "patgate-readme-ui-"));
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(
    running.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once("exit", () => resolve());
          p.child.kill("SIGTERM");
        }),
    ),
  );
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("README: the web page", () => {
  it("three shells as written, then the browser: alice signs in at the provider, lands on Personal Access Tokens and creates a token", { timeout: 90_000 }, async () => {
    const text = await readmeSection();
    // The shells the README gives, and the scripts they run.
    expect(text).toContain("npm run fake-upstream -- --port 11434");
    expect(text).toContain("npm run dev-idp");
    const shell3 = /PATGATE_OIDC_ISSUER=\S+[^\n]*npm start/.exec(text)?.[0] ?? "";
    expect(shell3).not.toBe("");
    const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts["start"]).toBe("node src/main.ts");
    expect(pkg.scripts["fake-upstream"]).toBe("node src/devtools/fake-upstream-main.ts");
    expect(pkg.scripts["dev-idp"]).toBe("node devtools/dev-idp-main.ts");

    // Shell 1.
    const fake = await start([path.join(ROOT, "src", "devtools", "fake-upstream-main.ts"), "--port", "0", "--quiet"], {}, /fake upstream listening on (http:\/\/\S+)/);
    const upstreamUrl = fake.match[1] ?? "";
    // Shell 2, on free ports; it prints the line for shell 3.
    const [idpPort, gwPort, opsPort] = [await freePort(), await freePort(), await freePort()];
    const gateway = `http://127.0.0.1:${gwPort}`;
    const idp = await start([path.join(ROOT, "devtools", "dev-idp-main.ts"), "--port", String(idpPort), "--gateway", gateway], {}, /then open \S+\n/);
    const printed = /PATGATE_OIDC_ISSUER=[^\n]*(?:\\\n[^\n]*)*npm start/.exec(idp.p.out)?.[0].replace(/\s*\\\n\s*/g, " ") ?? "";
    expect(printed).not.toBe("");
    // The README's shell 3 is the printed line without the operator extras (which the README names).
    const readmeEnv = envOf(shell3);
    const printedEnv = envOf(printed);
    for (const [k, v] of Object.entries(readmeEnv)) expect(printedEnv[k], k).toBe(k === "PATGATE_OIDC_ISSUER" || k === "PATGATE_OIDC_JWKS_URL" ? v.replace(":9400", `:${idpPort}`) : v);
    for (const extra of ["PATGATE_OIDC_LOGIN_SCOPES", "PATGATE_OIDC_OPERATOR_CLAIM", "PATGATE_OIDC_OPERATOR_VALUE"]) expect(text).toContain(extra);

    // Shell 3: `npm start` (node src/main.ts) with the README's variables, the shipped config pointed at shell 1.
    const shipped = await readFile(path.join(ROOT, "config", "patgate.yaml"), "utf8");
    expect(shipped).toContain("targets: [http://127.0.0.1:11434]");
    const config = path.join(ROOT, "config", `.readme-ui-${process.pid}.yaml`);
    await writeFile(config, shipped.replace("targets: [http://127.0.0.1:11434]", `targets: [${upstreamUrl}]`));
    try {
      const env = { ...printedEnv, ...readmeEnv, PATGATE_OIDC_ISSUER: printedEnv["PATGATE_OIDC_ISSUER"] ?? "", PATGATE_OIDC_JWKS_URL: printedEnv["PATGATE_OIDC_JWKS_URL"] ?? "", PATGATE_CONFIG: config, PATGATE_PORT: String(gwPort), PATGATE_METRICS_PORT: String(opsPort), PATGATE_DATA: dir };
      const gw = await start([path.join(ROOT, "src", "main.ts")], env, /"msg":"patgate listening"/);
      // The first start prints the admin key once; step 1's CLI alternative uses it.
      await expect.poll(() => gw.p.out, { timeout: 5000 }).toMatch(/only its hash is stored/);
      const key = /^ {2}(pgadm_[A-Za-z0-9_-]{43})$/m.exec(gw.p.out)?.[1] ?? "";
      noteSecret(key);
      expect(key).not.toBe("");
      expect(text).toContain("npx patgate domain create demo && npx patgate member add demo alice --role developer");
      const cli = { PATGATE_URL: gateway, PATGATE_TOKEN: key };
      expect((await run(["domain", "create", "demo"], cli)).code).toBe(0);
      expect((await run(["member", "add", "demo", "alice", "--role", "developer"], cli)).code).toBe(0);

      // The browser, at the address the README gives (on this test's port).
      expect(text).toContain("in a browser at `http://127.0.0.1:8080/ui/`");
      const watched = await openContext(browser as Browser, gateway);
      const { page, context } = watched;
      try {
        // Step 2: sign in as alice / alice; the landing page is Personal Access Tokens.
        await signInThroughIdp(page, gateway, "alice");
        expect(await page.getByRole("heading", { name: "Personal Access Tokens", level: 1 }).isVisible()).toBe(true);
        await screenshot(page, "readme-landing-1280");
        // Step 3: Create token, a name, Add scope → models → fake-model → Chat completions → Add, Create, shown once.
        await page.getByRole("button", { name: /^Create (your first )?token$/ }).first().click();
        const dialog = page.getByRole("dialog", { name: "Create a personal access token" });
        await dialog.getByLabel("Name").fill("readme");
        await dialog.getByLabel("Entity type").selectOption("models");
        await dialog.getByRole("radio", { name: "fake-model" }).check();
        await dialog.getByRole("checkbox", { name: /Chat completions/ }).check();
        await dialog.getByRole("button", { name: "Add", exact: true }).click();
        await dialog.getByRole("region", { name: "Summary" }).waitFor();
        await dialog.getByRole("button", { name: "Create token" }).click();
        const once = page.getByRole("dialog", { name: "Copy your new token" });
        await once.waitFor();
        const token = await once.getByLabel("Token “readme”").inputValue();
        noteSecret(token);
        expect(token).toMatch(/^pat_/);
        await screenshot(page, "readme-created-1280");
        // Step 4: the token works for the model it was scoped to.
        const chat = await fetch(`${gateway}/proxy/demo/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }] }),
        });
        expect(chat.status).toBe(200);
        expect(await watched.cspViolations()).toEqual([]);
      } finally {
        await context.close();
      }
    } finally {
      await rm(config, { force: true });
    }
  });
});
