// src/http/server.ts on its own, over real sockets: client certificates
// (require / optional), the minimum TLS version, overTls() for the places that
// must know (a Secure cookie), and upgrade listeners on every port.
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readKeyPair, type KeyPair, type ServerTlsSettings } from "../../src/config/tls.ts";
import { Listeners, overTls } from "../../src/http/server.ts";
import { TestCa, type IssuedCert } from "../helpers/certs.ts";

const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`tls=${overTls(req)}`);
};

/** GET / over TLS with the given client options; the body, or the error's code. */
function get(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/", createConnection: () => tls.connect({ host: "127.0.0.1", port, servername: "localhost", ...opts }) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve(`error:${err.code ?? err.message}`));
    req.end();
  });
}

describe("the listeners", () => {
  let serverCa: TestCa;
  let clientCa: TestCa;
  let rogueCa: TestCa;
  let server: IssuedCert;
  let client: IssuedCert;
  let rogue: IssuedCert;
  let pair: KeyPair;
  const open: Listeners[] = [];

  const start = async (over: Partial<ServerTlsSettings>): Promise<Listeners> => {
    const settings: ServerTlsSettings = { certFile: server.cert, keyFile: server.key, caFile: null, minVersion: "TLSv1.2", clientAuth: "none", http2: false, hstsMaxAgeSec: 0, plainPort: null, ...over };
    const r = readKeyPair(settings);
    if (!r.ok) throw new Error(r.error);
    const l = new Listeners({ tls: settings, pair: r.pair, handler });
    await l.listen(0, "127.0.0.1");
    open.push(l);
    return l;
  };

  beforeAll(() => {
    serverCa = new TestCa("listeners");
    clientCa = new TestCa("listener-clients");
    rogueCa = new TestCa("listener-rogue");
    server = serverCa.issue("localhost");
    client = clientCa.issue("alice");
    rogue = rogueCa.issue("alice");
    const r = readKeyPair({ certFile: server.cert, keyFile: server.key, caFile: null });
    if (!r.ok) throw new Error(r.error);
    pair = r.pair;
  });
  afterAll(async () => {
    for (const l of open) {
      l.closeAllConnections();
      await l.close();
    }
    for (const ca of [serverCa, clientCa, rogueCa]) ca?.remove();
  });

  const trust = (): tls.ConnectionOptions => ({ ca: readFileSync(serverCa.cert) });
  const withCert = (c: IssuedCert): tls.ConnectionOptions => ({ ...trust(), cert: readFileSync(c.cert), key: readFileSync(c.key) });

  it("client_auth require: no certificate or one from another CA is refused; one from client_ca_file is served", async () => {
    const l = await start({ clientAuth: "require", caFile: clientCa.cert });
    expect(await get(l.port, trust())).toMatch(/^error:/);
    expect(await get(l.port, withCert(rogue))).toMatch(/^error:/);
    expect(await get(l.port, withCert(client))).toBe("tls=true");
  });

  it("client_auth optional: no certificate is served, one that does not verify is not", async () => {
    const l = await start({ clientAuth: "optional", caFile: clientCa.cert });
    expect(await get(l.port, trust())).toBe("tls=true");
    expect(await get(l.port, withCert(client))).toBe("tls=true");
    expect(await get(l.port, withCert(rogue))).toMatch(/^error:/);
  });

  it("min_version TLSv1.3 refuses a TLS 1.2 client; the default accepts it", async () => {
    const strict = await start({ minVersion: "TLSv1.3" });
    expect(await get(strict.port, { ...trust(), maxVersion: "TLSv1.2" })).toMatch(/^error:/);
    expect(await get(strict.port, trust())).toBe("tls=true");
    const def = await start({});
    expect(await get(def.port, { ...trust(), maxVersion: "TLSv1.2" })).toBe("tls=true");
  });

  it("the minimum version survives a certificate swap (setSecureContext gets the whole context)", async () => {
    const l = await start({ minVersion: "TLSv1.3" });
    l.setCertificate(pair);
    expect(await get(l.port, { ...trust(), maxVersion: "TLSv1.2" })).toMatch(/^error:/);
  });

  it("overTls: true on HTTPS (HTTP/1.1 and HTTP/2), false on the plain listener beside it", async () => {
    const l = await start({ http2: true, plainPort: 1 });
    expect(await get(l.port, trust())).toBe("tls=true");
    const plain = await fetch(`http://127.0.0.1:${l.plainPort ?? 0}/`);
    expect(await plain.text()).toBe("tls=false");
    const http2 = await import("node:http2");
    const session = http2.connect(`https://localhost:${l.port}`, trust());
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ":path": "/" });
      let text = "";
      req.setEncoding("utf8");
      req.on("data", (d: string) => (text += d));
      req.on("end", () => resolve(text));
      req.on("error", reject);
    });
    session.close();
    expect(body).toBe("tls=true");
  });

  it("onUpgrade: an HTTP/1.1 upgrade reaches the listener on the HTTPS port (HTTP/2 server included) and on the plain one", async () => {
    const l = await start({ http2: true, plainPort: 1 });
    const seen: Array<{ url: string; tls: boolean }> = [];
    l.onUpgrade((req, socket) => {
      seen.push({ url: req.url ?? "", tls: overTls(req) });
      socket.end("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n");
    });
    const upgrade = (sock: net.Socket, path: string): Promise<string> =>
      new Promise((resolve) => {
        let text = "";
        sock.on("data", (d: Buffer) => (text += d.toString()));
        sock.on("close", () => resolve(text));
        sock.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n`);
      });
    const secure = tls.connect({ host: "127.0.0.1", port: l.port, servername: "localhost", ALPNProtocols: ["http/1.1"], ...trust() });
    await new Promise((r) => secure.once("secureConnect", r));
    expect(await upgrade(secure, "/v1/realtime?model=x")).toMatch(/^HTTP\/1\.1 101/);
    const plain = net.connect(l.plainPort ?? 0, "127.0.0.1");
    await new Promise((r) => plain.once("connect", r));
    expect(await upgrade(plain, "/plain")).toMatch(/^HTTP\/1\.1 101/);
    expect(seen).toEqual([
      { url: "/v1/realtime?model=x", tls: true },
      { url: "/plain", tls: false },
    ]);
  });
});
