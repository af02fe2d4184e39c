// A certificate the gateway cannot serve refuses start (exit 1) with a message
// naming the file: a key that is not the certificate's, an expired
// certificate, client certificates required without a CA, a missing file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMain, writeConfig, type TestConfig } from "../helpers/gateway.ts";
import { TestCa, type IssuedCert } from "../helpers/certs.ts";

describe("TLS settings that refuse start", () => {
  let ca: TestCa;
  let good: IssuedCert;
  let other: IssuedCert;
  let expired: IssuedCert;

  beforeAll(() => {
    ca = new TestCa("start");
    good = ca.issue("localhost");
    other = ca.issue("localhost");
    expired = ca.issue("localhost", { expired: true });
  });
  afterAll(() => ca?.remove());

  const start = async (tls: Record<string, unknown>): Promise<{ code: number | null; stderr: string }> => {
    const { file } = await writeConfig({ upstreamUrl: "http://127.0.0.1:9", patch: (cfg: TestConfig) => (cfg.server.tls = tls) });
    return runMain(file);
  };

  it("a key that does not match the certificate: exit 1, naming both files", async () => {
    const r = await start({ cert_file: good.cert, key_file: other.key });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to start/);
    expect(r.stderr).toContain(`server.tls: ${other.key} does not match the certificate in ${good.cert}`);
    expect(r.stderr).not.toMatch(/PRIVATE KEY/);
  });

  it("an expired certificate: exit 1, naming the file and the date", async () => {
    const r = await start({ cert_file: expired.cert, key_file: expired.key });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`server.tls: ${expired.cert} expired on 2020-01-02T00:00:00.000Z`);
  });

  it("client_auth require without a CA file: exit 1", async () => {
    const r = await start({ cert_file: good.cert, key_file: good.key, client_auth: "require" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/server\.tls\.client_ca_file: is required with server\.tls\.client_auth: require/);
  });

  it("a certificate file that is not there: exit 1, naming it", async () => {
    const r = await start({ cert_file: "/nonexistent/tls.crt", key_file: good.key });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("server.tls: cannot read /nonexistent/tls.crt: ENOENT");
  });
});
