// The README's "Try it: the newcomer flow", with real processes and the CLI as a
// user runs it: the fake upstream, `patgate serve` on the embedded store with no
// admin key (so it prints one), then domain → member → PAT → chat 200 → revoke
// → the same chat 401. The README must show the same commands.
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, writeConfig } from "../helpers/gateway.ts";
import { noteSecret, sinkLog } from "../helpers/log-sink.ts";

const BIN = path.join(ROOT, "bin", "patgate.js");
const TOKEN_LINE = /^pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{49}\n$/;
const CHAT = JSON.stringify({ model: "llama3", messages: [{ role: "user", content: "hi" }] });
// No PATGATE_* from the machine running the tests.
const BASE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PATGATE_")));

interface Proc {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
}

const running: Proc[] = [];
const cleanup: (() => Promise<void>)[] = [];

/** Starts a long-running process and resolves once its output matches `ready`. */
async function start(args: string[], ready: RegExp, stream: "stdout" | "stderr"): Promise<{ p: Proc; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: BASE_ENV, stdio: ["ignore", "pipe", "pipe"] });
  const p: Proc = { child, stdout: "", stderr: "" };
  running.push(p);
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")} did not become ready:\n${p.stdout}\n${p.stderr}`)), 15_000);
    const check = (): void => {
      const m = ready.exec(p[stream]);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on("data", (d: Buffer) => {
      p.stdout += d.toString();
      // The gateway's JSON log goes to the log-leak check like every in-process gateway's.
      sinkLog(d.toString("utf8"));
      check();
    });
    child.stderr?.on("data", (d: Buffer) => {
      p.stderr += d.toString();
      check();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited with ${code}:\n${p.stdout}\n${p.stderr}`));
    });
  });
  return { p, match };
}

function stop(p: Proc): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve(p.child.exitCode);
    p.child.once("exit", (code) => resolve(code));
    p.child.kill("SIGTERM");
  });
}

/** One `patgate` command, as a shell runs it. */
function patgate(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...BASE_ENV, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      // Tokens the CLI printed (pat create / rotate) are searched for in every log after the run.
      noteSecret(...(stdout.match(/pat_[0-9A-Za-z_]{20,}|pgadm_[A-Za-z0-9_]{16,}/g) ?? []));
      resolve({ code, stdout, stderr });
    });
  });
}

afterAll(async () => {
  await Promise.all(running.map(stop));
  for (const f of cleanup) await f();
});

// The CLI steps, exactly as the README writes them (after `npx patgate`).
const STEPS = {
  domain: ["domain", "create", "demo"],
  member: ["member", "add", "demo", "alice", "--role", "developer"],
  create: ["pat", "create", "--user", "alice", "--name", "laptop", "--duration", "30d", "--scope", "demo:models:llama3:llm_chat_completions"],
  find: ["pat", "list", "--user", "alice", "--name", "laptop", "-q"],
};

describe("the newcomer flow", () => {
  it("fake upstream → gateway on the embedded store → domain, member, PAT → 200 → revoke → 401", { timeout: 60_000 }, async () => {
    const fake = await start([path.join(ROOT, "src", "devtools", "fake-upstream-main.ts"), "--port", "0", "--quiet"], /fake upstream listening on (http:\/\/\S+)/, "stdout");
    const upstreamUrl = fake.match[1] ?? "";

    // The shipped config, forwarding to the fake; no admin key and no pepper configured,
    // as on a fresh clone: the first start creates both.
    const cfg = await writeConfig({
      upstreamUrl,
      adminKey: null,
      patch: (c) => {
        c.security.pepper = "";
      },
    });
    cleanup.push(() => rm(cfg.dir, { recursive: true, force: true }));
    const { p: gw, match: listening } = await start([BIN, "serve", "--config", cfg.file], /"port":(\d+)[^\n]*"msg":"patgate listening"/, "stdout");
    const url = `http://127.0.0.1:${listening[1] ?? ""}`;
    // What a newcomer sees on the terminal: the key, once, on stderr.
    await expect.poll(() => gw.stderr, { timeout: 5000 }).toMatch(/only its hash is stored/);
    const keys = [...gw.stderr.matchAll(/^ {2}(pgadm_[A-Za-z0-9_-]{43})$/gm)].map((m) => m[1] ?? "");
    noteSecret(...keys);
    expect(keys).toHaveLength(1);
    const env = { PATGATE_URL: url, PATGATE_TOKEN: keys[0] ?? "" };

    const domain = await patgate(STEPS.domain, env);
    expect(domain).toEqual({ code: 0, stdout: "Created domain demo, served by the default upstream.\n", stderr: "" });
    const member = await patgate(STEPS.member, env);
    expect(member).toEqual({ code: 0, stdout: "alice is a member of demo with role developer.\n", stderr: "" });
    const created = await patgate(STEPS.create, env);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(TOKEN_LINE);
    expect(created.stderr).toMatch(/^Created PAT "laptop" \(id [0-9a-f-]{36}\) for alice/);
    const token = created.stdout.trim();

    const chat = (): Promise<Response> =>
      fetch(`${url}/proxy/demo/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: CHAT });
    const ok = await chat();
    expect(ok.status).toBe(200);
    const completion = (await ok.json()) as { object: string; choices: { message: { content: string } }[] };
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]?.message.content).toBe("Hello from the patgate fake upstream.");

    const found = await patgate(STEPS.find, env);
    expect(found.code).toBe(0);
    expect(found.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
    const id = found.stdout.trim();
    const revoked = await patgate(["pat", "revoke", id], env);
    expect(revoked).toEqual({ code: 0, stdout: `Revoked PAT "laptop" (${id}).\n`, stderr: "" });

    const refused = await chat();
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("revoked_token");

    // The embedded store kept everything in the config's data directory; nothing was printed twice.
    expect(gw.stderr.match(/pgadm_/g)).toHaveLength(1);
    expect(await stop(gw)).toBe(0);
  });

  it("is what the README shows", async () => {
    const readme = (await readFile(path.join(ROOT, "README.md"), "utf8")).replace(/\s*\\\n\s*/g, " ");
    const at = readme.indexOf("\n## Try it: the newcomer flow\n");
    expect(at).toBeGreaterThan(0);
    const section = readme.slice(at + 1);
    const text = section.slice(0, section.indexOf("\n## ", 4));
    for (const shell of ["npm run fake-upstream -- --port 11434", "npm start", "export PATGATE_TOKEN=pgadm_"]) expect(text).toContain(shell);
    for (const step of Object.values(STEPS)) expect(text).toContain(`npx patgate ${step.join(" ")}`);
    expect(text).toContain("TOKEN=$(npx patgate pat create");
    expect(text).toContain("npx patgate pat revoke $ID");
    expect(text).toContain('curl -s http://127.0.0.1:8080/proxy/demo/v1/chat/completions -H "Authorization: Bearer $TOKEN"');
    // `npx patgate` runs this package's own bin.
    const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };
    expect(pkg.bin.patgate).toBe("./bin/patgate.js");
  });
});
