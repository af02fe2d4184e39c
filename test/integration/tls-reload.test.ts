// Certificate reload the way Kubernetes updates a mounted Secret: the test
// swaps the `..data` symlink as the kubelet does. New handshakes see the new
// certificate's serial, a stream opened before keeps going on its connection,
// a bad new pair (wrong key, expired) is logged with its reason and the last
// good pair keeps serving; SIGHUP (in the real process shell) reloads too.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent, fetch as undiciFetch } from "undici";
import { parse, stringify } from "yaml";
import { fakeStreamPiece, startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { spawnGateway, startGateway, writeConfig, type TestGateway } from "../helpers/gateway.ts";
import { SecretMount, TestCa, type IssuedCert } from "../helpers/certs.ts";

/** The serial of the certificate a fresh handshake (no session resumption) gets. */
function handshakeSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: "127.0.0.1", servername: "localhost", ca: readFileSync(ca) }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.once("error", reject);
  });
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${String(v)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function metric(gw: TestGateway, line: RegExp): Promise<number | null> {
  const text = await (await fetch(`http://127.0.0.1:${gw.app.opsPort()}/metrics`)).text();
  const m = text.split("\n").find((l) => line.test(l));
  return m === undefined ? null : Number(m.slice(m.lastIndexOf(" ") + 1));
}

describe("certificate reload (kubelet-style ..data swap)", () => {
  let ca: TestCa;
  let dir: string;
  let mount: SecretMount;
  let first: IssuedCert;
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let agent: Agent;
  let token: string;

  beforeAll(async () => {
    ca = new TestCa("reload");
    dir = await mkdtemp(path.join(os.tmpdir(), "patgate-secret-"));
    mount = new SecretMount(path.join(dir, "tls"));
    first = ca.issue("localhost");
    mount.publish(first);
    upstream = await startFakeUpstream({ sseMode: "manual", sseChunks: 6 });
    gw = await startGateway({
      upstreamUrl: upstream.url,
      patch: (cfg) => {
        cfg.server.tls = { cert_file: mount.certFile, key_file: mount.keyFile };
      },
    });
    token = (await gw.issue({ scopes: [{ entityType: "models", entityId: "llama3", operation: "llm_chat_completions" }] })).token;
    agent = new Agent({ connect: { ca: readFileSync(ca.cert) } });
  });
  afterAll(async () => {
    await agent?.close();
    await gw?.close();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
    ca?.remove();
  });

  it("new handshakes get the new serial while an SSE stream opened before keeps going; bad pairs are logged and leave the last good one", async () => {
    expect(await handshakeSerial(gw.port, ca.cert)).toBe(first.serial);
    expect(await metric(gw, /^patgate_tls_certificate_expiry_timestamp_seconds\{certificate="server"\}/)).toBe(notAfterSec(first.cert));

    // A stream on a connection made with the first certificate.
    const res = await undiciFetch(`https://localhost:${gw.port}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      dispatcher: agent,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"model":"llama3","stream":true,"messages":[]}',
    });
    expect(res.status).toBe(200);
    const stream = await upstream.nextStream();
    const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const decoder = new TextDecoder();
    let received = "";
    const readUntil = async (piece: string): Promise<void> => {
      while (!received.includes(piece)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${piece}`);
        received += decoder.decode(value, { stream: true });
      }
    };
    await stream.release(1);
    await readUntil(fakeStreamPiece(0));

    const second = ca.issue("localhost");
    mount.publish(second);
    await until("the new serial", () => handshakeSerial(gw.port, ca.cert), (s) => s === second.serial);
    expect(await metric(gw, /^patgate_tls_certificate_reloads_total\{certificate="server",result="ok"\}/)).toBe(1);
    expect(await metric(gw, /^patgate_tls_certificate_expiry_timestamp_seconds\{certificate="server"\}/)).toBe(notAfterSec(second.cert));
    const reloaded = gw.logs.records().find((r) => r.msg === "certificate reloaded");
    expect(reloaded).toMatchObject({ certificate: "server", how: "file change", serial: second.serial });

    // The stream opened before the swap is still flowing on its connection.
    await stream.release(2);
    await readUntil(fakeStreamPiece(2));
    await stream.releaseAll();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += decoder.decode(value, { stream: true });
    }
    expect(received).toContain(fakeStreamPiece(5));
    expect(received).toContain("data: [DONE]");

    // A key that is not the certificate's: logged with the reason, the second pair keeps serving.
    const third = ca.issue("localhost");
    mount.publish({ cert: third.cert, key: first.key });
    const failed = await until("a logged reload failure", () => Promise.resolve(gw.logs.records().filter((r) => r.msg === "certificate reload failed; keeping the last good certificate")), (l) => l.length >= 1);
    expect(failed[0]).toMatchObject({ certificate: "server", how: "file change" });
    expect(String(failed[0]?.problem)).toBe(`${mount.keyFile} does not match the certificate in ${mount.certFile}`);
    expect(await handshakeSerial(gw.port, ca.cert)).toBe(second.serial);

    // An expired certificate: the same.
    mount.publish(ca.issue("localhost", { expired: true }));
    const failed2 = await until("a second logged failure", () => Promise.resolve(gw.logs.records().filter((r) => r.msg === "certificate reload failed; keeping the last good certificate")), (l) => l.length >= 2);
    expect(String(failed2[1]?.problem)).toMatch(new RegExp(`^${mount.certFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} expired on 2020-01-02`));
    expect(await handshakeSerial(gw.port, ca.cert)).toBe(second.serial);
    expect(await metric(gw, /^patgate_tls_certificate_reloads_total\{certificate="server",result="invalid"\}/)).toBe(2);

    // Fixed: the next good pair is taken.
    const fourth = ca.issue("localhost");
    mount.publish(fourth);
    await until("the fourth serial", () => handshakeSerial(gw.port, ca.cert), (s) => s === fourth.serial);
    // Never the key in a log line (the suite's log-leak check looks too).
    expect(gw.logs.lines.join("\n")).not.toContain(readFileSync(first.key, "utf8").split("\n")[1]);
  });
});

describe("SIGHUP reloads the certificate in the real process", () => {
  it("a SIGHUP re-reads the pair (and the routes) and logs it", async () => {
    const ca = new TestCa("sighup");
    const upstream = await startFakeUpstream();
    const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-hup-"));
    const mount = new SecretMount(path.join(dir, "tls"));
    const one = ca.issue("localhost");
    mount.publish(one);
    const { file } = await writeConfig({ upstreamUrl: upstream.url });
    const cfg = parse(readFileSync(file, "utf8")) as { server: Record<string, unknown> };
    cfg.server.tls = { cert_file: mount.certFile, key_file: mount.keyFile };
    await writeFile(file, stringify(cfg));
    const gw = await spawnGateway(file);
    try {
      const port = Number(new URL(gw.url).port);
      expect(await handshakeSerial(port, ca.cert)).toBe(one.serial);
      gw.child.kill("SIGHUP");
      await until("the SIGHUP reload line", () => Promise.resolve(gw.stdout()), (out) => /"how":"SIGHUP"[^\n]*"msg":"certificate reloaded"/.test(out));
      expect(gw.stdout()).toMatch(/"how":"SIGHUP"[^\n]*"msg":"route table reloaded"/);
      expect(gw.stdout()).toMatch(/"scheme":"https"[^\n]*"msg":"patgate listening"/);
    } finally {
      expect(await gw.stop()).toBe(0);
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
      ca.remove();
    }
  });
});

/** A certificate file's expiry as Unix seconds (what the expiry gauge shows). */
function notAfterSec(file: string): number {
  return Math.floor(new Date(new X509Certificate(readFileSync(file)).validTo).getTime() / 1000);
}
