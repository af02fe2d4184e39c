// The README's HTTPS block, run as written (in a temp directory, on a free
// port): its openssl line makes the certificate, the gateway starts with the
// two variables it sets, the CLI creates the PAT it shows, and the seed's
// `curl -k https://…/proxy/<domain>/v1/models` returns the model list.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ROOT, spawnGateway, writeConfig } from "../helpers/gateway.ts";

const run = promisify(execFile);
const BIN = path.join(ROOT, "bin", "patgate.js");
const BASE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PATGATE_")));

/** The shell lines of the README block that follows the test's marker, continuation lines joined. */
async function readmeBlock(): Promise<string[]> {
  const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
  const at = readme.indexOf("<!-- test/integration/readme-https.test.ts");
  const open = readme.indexOf("```sh\n", at);
  const close = readme.indexOf("\n```", open + 6);
  if (at === -1 || open === -1 || close === -1) throw new Error("README.md: the HTTPS block or its marker is missing");
  return readme
    .slice(open + 6, close)
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"));
}

/** Splits a simple shell line into words (no quotes in these lines but $(…) and "…"). */
function words(line: string): string[] {
  return (line.replace(/\s+#.*$/, "").match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"|"$/g, ""));
}

describe("README: HTTPS with a self-signed certificate", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("the openssl line, the start line, the CLI line and the seed's curl -k line work as written", async () => {
    const lines = await readmeBlock();
    const find = (re: RegExp): string => {
      const l = lines.find((x) => re.test(x));
      if (l === undefined) throw new Error(`README HTTPS block: no line matching ${re}`);
      return l;
    };
    const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-readme-https-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));

    // mkdir + openssl, as written, in the temp dir.
    await run("sh", ["-c", `${find(/^mkdir -p data$/)} && ${find(/^openssl req /)}`], { cwd: dir });

    // The start line's variables, with $PWD as the shell would expand it, for a gateway on a free port.
    const start = find(/ npm start/);
    const vars = Object.fromEntries(
      words(start)
        .filter((w) => /^PATGATE_[A-Z_]+=/.test(w))
        .map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1).replace("$PWD", dir)]),
    );
    expect(Object.keys(vars).sort()).toEqual(["PATGATE_TLS_CERT_FILE", "PATGATE_TLS_KEY_FILE"]);
    const upstream: FakeUpstream = await startFakeUpstream();
    cleanup.push(() => upstream.close());
    const { file, adminKey } = await writeConfig({ upstreamUrl: upstream.url });
    const gw = await spawnGateway(file, [path.join(ROOT, "src", "main.ts")], { ...BASE_ENV, ...vars });
    cleanup.push(() => gw.stop());
    const port = new URL(gw.url).port;
    const origin = `https://localhost:${port}`;

    // What the newcomer flow has made by then: domain demo, alice a developer there.
    const exported = Object.fromEntries(
      words(find(/^export PATGATE_URL=/))
        .slice(1)
        .map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1).replace("https://localhost:8080", origin)]),
    );
    const cliEnv = { ...BASE_ENV, ...exported, PATGATE_CA_FILE: path.join(dir, exported.PATGATE_CA_FILE ?? ""), PATGATE_TOKEN: adminKey ?? "" };
    const cli = (args: string[]): Promise<{ stdout: string }> => run(process.execPath, [BIN, ...args], { env: cliEnv, cwd: dir });
    await cli(["domain", "create", "demo"]);
    await cli(["member", "add", "demo", "alice", "--role", "developer"]);

    const patLine = find(/^PAT=\$\(npx patgate /);
    const patArgs = words(patLine.slice(patLine.indexOf("npx patgate ") + "npx patgate ".length, patLine.lastIndexOf(")")));
    const pat = (await cli(patArgs)).stdout.trim();
    expect(pat).toMatch(/^pat_/);

    const curl = words(find(/^curl -k /)).map((w) => w.replace("https://localhost:8080", origin).replace("$PAT", pat));
    const { stdout } = await run(curl[0] ?? "curl", [...curl.slice(1), "-sS"]);
    const list = JSON.parse(stdout) as { object: string; data: Array<{ id: string }> };
    expect(list.object).toBe("list");
    expect(list.data.map((m) => m.id)).toContain("fake-model");
    // And with the certificate checked instead of -k, as the README says.
    const checked = await run("curl", ["-sS", "--cacert", path.join(dir, "data", "tls.crt"), `${origin}/proxy/demo/v1/models`, "-H", `Authorization: Bearer ${pat}`, "-o", "/dev/null", "-w", "%{http_code}"]);
    expect(checked.stdout).toBe("200");
  });
});
