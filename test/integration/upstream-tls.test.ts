// TLS towards upstreams, against HTTPS fake upstreams made by the test: a CA
// file that extends the default roots (never replaces them), mTLS with a
// client certificate that is reloaded like the server's, an SNI override, and
// failures that say they were TLS: a clear 502 upstream_tls_error and an
// "upstream TLS failed" log line. Verification off stays explicit and logged.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { ROOT, startGateway, writeConfig, type TestGateway } from "../helpers/gateway.ts";
import { SecretMount, TestCa, type IssuedCert } from "../helpers/certs.ts";
import { sinkLog } from "../helpers/log-sink.ts";

const CHAT = '{"model":"llama3","messages":[{"role":"user","content":"hi"}]}';
const SCOPE = [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }];

async function chat(gw: TestGateway, token: string): Promise<{ status: number; body: { error?: { code?: string } } }> {
  const res = await fetch(`${gw.url}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: CHAT });
  return { status: res.status, body: (await res.json()) as { error?: { code?: string } } };
}

function tlsFailures(gw: TestGateway): Array<Record<string, unknown>> {
  return gw.logs.records().filter((r) => r.msg === "upstream TLS failed");
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("upstream TLS", () => {
  let serverCa: TestCa;
  let clientCa: TestCa;
  let rogueCa: TestCa;
  let dir: string;
  let mount: SecretMount;
  let client1: IssuedCert;
  let rogue: IssuedCert;
  /** HTTPS, TLS 1.3, requires a client certificate from clientCa. */
  let mtls: FakeUpstream;
  /** The same, capped at TLS 1.2. */
  let mtls12: FakeUpstream;
  /** HTTPS with a certificate that names only llm.internal. */
  let internal: FakeUpstream;
  const gateways: TestGateway[] = [];

  const gateway = async (upstream: Record<string, unknown>, security: Record<string, unknown> = {}): Promise<{ gw: TestGateway; token: string }> => {
    const gw = await startGateway({
      upstreamUrl: "http://127.0.0.1:9",
      patch: (cfg) => {
        cfg.upstreams.default = { connect_timeout: "2s", headers_timeout: "10s", body_timeout: "10s", ...upstream };
        Object.assign(cfg.security, security);
      },
    });
    gateways.push(gw);
    return { gw, token: (await gw.issue({ scopes: SCOPE })).token };
  };

  beforeAll(async () => {
    serverCa = new TestCa("upstream-servers");
    clientCa = new TestCa("gateway-clients");
    rogueCa = new TestCa("rogue");
    dir = await mkdtemp(path.join(os.tmpdir(), "patgate-client-cert-"));
    mount = new SecretMount(path.join(dir, "client"));
    client1 = clientCa.issue("patgate-gateway");
    mount.publish(client1);
    rogue = rogueCa.issue("patgate-gateway");
    const server = serverCa.issue("localhost");
    const tls = { cert: readFileSync(server.cert), key: readFileSync(server.key), clientCa: readFileSync(clientCa.cert) };
    mtls = await startFakeUpstream({ tls });
    mtls12 = await startFakeUpstream({ tls: { ...tls, maxVersion: "TLSv1.2" } });
    const named = serverCa.issue("llm.internal", { sans: ["DNS:llm.internal"] });
    internal = await startFakeUpstream({ tls: { cert: readFileSync(named.cert), key: readFileSync(named.key) } });
  });
  afterAll(async () => {
    for (const gw of gateways) await gw.close();
    for (const u of [mtls, mtls12, internal]) await u?.close();
    await rm(dir, { recursive: true, force: true });
    for (const ca of [serverCa, clientCa, rogueCa]) ca?.remove();
  });

  it("mTLS: the gateway trusts the upstream through ca_file and presents its client certificate, reloaded on a kubelet-style swap", async () => {
    const { gw, token } = await gateway({ targets: [mtls.url], tls: { ca_file: serverCa.cert, cert_file: mount.certFile, key_file: mount.keyFile } });
    const r = await chat(gw, token);
    expect(r.status).toBe(200);
    expect(mtls.requests.at(-1)?.tls).toEqual({ servername: "localhost", clientCertSerial: client1.serial });
    const metrics = await (await fetch(`http://127.0.0.1:${gw.app.opsPort()}/metrics`)).text();
    expect(metrics).toMatch(/^patgate_tls_certificate_expiry_timestamp_seconds\{certificate="upstream:default"\} \d+$/m);

    const client2 = clientCa.issue("patgate-gateway");
    mount.publish(client2);
    await until("the client certificate reload", () => gw.logs.records().some((l) => l.msg === "certificate reloaded" && l.certificate === "upstream:default"));
    // Pooled connections keep the certificate they were made with; a new connection presents the new one.
    mtls.dropConnections();
    expect((await chat(gw, token)).status).toBe(200);
    expect(mtls.requests.at(-1)?.tls?.clientCertSerial).toBe(client2.serial);
  });

  it("a client certificate the upstream does not trust (TLS 1.3): 502 upstream_tls_error and a log line saying why", async () => {
    const { gw, token } = await gateway({ targets: [mtls.url], tls: { ca_file: serverCa.cert, cert_file: rogue.cert, key_file: rogue.key } });
    const before = mtls.requests.length;
    const r = await chat(gw, token);
    expect(r.status).toBe(502);
    expect(r.body.error?.code).toBe("upstream_tls_error");
    expect(mtls.requests.length).toBe(before);
    expect(tlsFailures(gw)).toHaveLength(1);
    const line = tlsFailures(gw)[0];
    expect(line).toMatchObject({ level: 40, upstream: "default" });
    expect(String(line?.target)).toMatch(/^https:\/\/localhost:\d+$/);
    expect(String(line?.tls_error)).toMatch(/refused the gateway's client certificate/);
    // The request's access line carries the same outcome (access lines are written in batches).
    await until("the access line", () => gw.logs.records().some((l) => l.msg === "access" && l.reason === "upstream_tls_error" && l.status === 502));
  });

  it("the same over TLS 1.2, where the refusal ends the handshake itself", async () => {
    const { gw, token } = await gateway({ targets: [mtls12.url], tls: { ca_file: serverCa.cert, cert_file: rogue.cert, key_file: rogue.key } });
    const r = await chat(gw, token);
    expect(r.status).toBe(502);
    expect(r.body.error?.code).toBe("upstream_tls_error");
    expect(String(tlsFailures(gw)[0]?.tls_error)).toMatch(/closed the connection during the TLS handshake/);
  });

  it("no client certificate where one is required: the upstream's alert is the reason", async () => {
    const { gw, token } = await gateway({ targets: [mtls.url], tls: { ca_file: serverCa.cert } });
    const r = await chat(gw, token);
    expect(r.status).toBe(502);
    expect(r.body.error?.code).toBe("upstream_tls_error");
    expect(String(tlsFailures(gw)[0]?.tls_error)).toMatch(/^ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: tlsv13 alert certificate required/);
  });

  it("an upstream certificate from a CA the gateway does not trust: 502 upstream_tls_error, nothing forwarded", async () => {
    const { gw, token } = await gateway({ targets: [internal.url.replace("localhost", "127.0.0.1")], tls: { servername: "llm.internal" } });
    const before = internal.requests.length;
    const r = await chat(gw, token);
    expect(r.status).toBe(502);
    expect(r.body.error?.code).toBe("upstream_tls_error");
    expect(String(tlsFailures(gw)[0]?.tls_error)).toMatch(/^UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    expect(internal.requests.length).toBe(before);
  });

  it("SNI override: a target by address, its certificate checked (and SNI sent) for the configured name", async () => {
    const byAddress = internal.url.replace("localhost", "127.0.0.1");
    const { gw, token } = await gateway({ targets: [byAddress], tls: { ca_file: serverCa.cert, servername: "llm.internal" } });
    expect((await chat(gw, token)).status).toBe(200);
    expect(internal.requests.at(-1)?.tls?.servername).toBe("llm.internal");
    // Without the override the same certificate does not name the address: refused, as a TLS failure.
    const plain = await gateway({ targets: [byAddress], tls: { ca_file: serverCa.cert } });
    const r = await chat(plain.gw, plain.token);
    expect(r.status).toBe(502);
    expect(r.body.error?.code).toBe("upstream_tls_error");
    expect(String(tlsFailures(plain.gw)[0]?.tls_error)).toMatch(/^ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it("verification off is explicit, per upstream, and logged at start", async () => {
    const { gw, token } = await gateway({ targets: [internal.url], tls_verify: false }, { allow_insecure_upstream_tls: true });
    expect(gw.logs.records().find((l) => l.level === 40 && String(l.msg).startsWith("TLS certificate verification is OFF"))).toMatchObject({ upstream: "default" });
    expect((await chat(gw, token)).status).toBe(200);
  });

  it("ca_file extends the default roots, never replaces them: one upstream reaches a target trusted through NODE_EXTRA_CA_CERTS and one through ca_file", async () => {
    const extraCa = new TestCa("extra-roots");
    const other = extraCa.issue("localhost");
    const viaDefault = await startFakeUpstream({ tls: { cert: readFileSync(other.cert), key: readFileSync(other.key) } });
    const { file, adminKey } = await writeConfig({
      upstreamUrl: "http://127.0.0.1:9",
      patch: (cfg) => {
        cfg.upstreams.default = { targets: [mtls.url, viaDefault.url], tls: { ca_file: serverCa.cert, cert_file: client1.cert, key_file: client1.key } };
      },
    });
    const child = spawn(process.execPath, [path.join(ROOT, "src", "main.ts"), file], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_EXTRA_CA_CERTS: extraCa.cert } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      sinkLog(d.toString());
    });
    try {
      await until("the gateway to listen", () => /"msg":"patgate listening"/.test(out), 15_000);
      const port = Number(/"port":(\d+)/.exec(out)?.[1]);
      const base = `http://127.0.0.1:${port}`;
      const admin = { authorization: `Bearer ${adminKey ?? ""}`, "content-type": "application/json" };
      expect((await fetch(`${base}/domains`, { method: "POST", headers: admin, body: '{"id":"d1","name":"d1"}' })).status).toBe(201);
      expect((await fetch(`${base}/domains/d1/members/alice`, { method: "PUT", headers: admin, body: '{"roles":["admin"]}' })).status).toBeLessThan(300);
      const created = (await (await fetch(`${base}/pats?user_id=alice`, { method: "POST", headers: admin, body: JSON.stringify({ name: "t", duration: "1h", scopes: [{ domain_id: "d1", entity_type: "models", entity_id: "llama3", operation: "llm_chat_completions" }] }) })).json()) as { token: string };
      const token = created.token;
      const statuses: number[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${base}/proxy/d1/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: CHAT });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([200, 200]);
      expect(viaDefault.requests.length).toBe(1);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await viaDefault.close();
      extraCa.remove();
    }
  });
});
