// The patgate CLI against a gateway that serves HTTPS with a certificate from a
// test CA: refused (with the hint to fix it) until told whom to trust, then
// working with --ca-file or PATGATE_CA_FILE; --insecure-skip-tls-verify works
// too and says loudly what it gives up. Real processes (bin/patgate.js).
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ROOT, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { TestCa } from "../helpers/certs.ts";

const BIN = path.join(ROOT, "bin", "patgate.js");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("patgate CLI over HTTPS", () => {
  let ca: TestCa;
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let env: Record<string, string>;

  const cli = (argv: string[], extra: Record<string, string> = {}): Promise<Run> => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PATGATE_") && k !== "NODE_EXTRA_CA_CERTS"));
    const child = spawn(process.execPath, [BIN, ...argv], { env: { ...base, ...env, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  };

  beforeAll(async () => {
    ca = new TestCa("cli");
    const server = ca.issue("localhost");
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => (cfg.server.tls = { cert_file: server.cert, key_file: server.key }) });
    env = { PATGATE_URL: `https://localhost:${gw.port}`, PATGATE_TOKEN: gw.adminKey ?? "" };
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
    ca?.remove();
  });

  it("an untrusted certificate: exit 1, and the hint names --ca-file", async () => {
    const r = await cli(["domain", "list"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^patgate: cannot reach https:\/\/localhost:\d+: UNABLE_TO_VERIFY_LEAF_SIGNATURE \(the gateway's certificate is not trusted: pass its CA with --ca-file or PATGATE_CA_FILE\)\n$/);
  });

  it("--ca-file and PATGATE_CA_FILE trust the test CA (besides the system's roots)", async () => {
    const made = await cli(["domain", "create", "tlsdemo", "--ca-file", ca.cert]);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    const listed = await cli(["domain", "list", "--json"], { PATGATE_CA_FILE: ca.cert });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("tlsdemo");
  });

  it("--insecure-skip-tls-verify works and warns on stderr every time", async () => {
    const r = await cli(["domain", "show", "tlsdemo", "--insecure-skip-tls-verify"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("tlsdemo");
    expect(r.stderr).toMatch(/^patgate: warning: --insecure-skip-tls-verify: the gateway's certificate is not checked/);
  });

  it("both at once is a usage error; an unreadable CA file is an error naming it", async () => {
    const both = await cli(["domain", "list", "--insecure-skip-tls-verify"], { PATGATE_CA_FILE: ca.cert });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("contradict each other");
    const missing = await cli(["domain", "list", "--ca-file", "/nonexistent/ca.pem"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("patgate: --ca-file: cannot read /nonexistent/ca.pem: ENOENT\n");
  });
});
