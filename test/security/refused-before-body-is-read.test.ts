// Finding (review, item 9): the refusal before the body is read (no scope of
// the token could allow the route's operation in this domain) was not tested
// in a form that fails when it is removed: the request was still refused after
// the body arrived. Here the client sends only the request head of a large
// upload and waits: the 403 must come without a byte of the body.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

/** Sends only the head (declaring a body it never sends) and resolves with the first response bytes, or "" after `waitMs`. */
function headOnly(port: number, head: string, waitMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.write(head));
    let data = "";
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(data);
    }, waitMs);
    sock.on("data", (d) => {
      data += d.toString();
      if (data.includes("\r\n\r\n")) {
        clearTimeout(timer);
        sock.destroy();
        resolve(data);
      }
    });
    sock.on("error", reject);
  });
}

describe("a request no scope could allow is refused before its body is read", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, patch: (cfg) => void (cfg.server = { ...cfg.server, body_timeout: "20s", body_idle_timeout: "20s" }) });
    // The user's role holds every operation; the token's only scope is for another operation.
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "*", operation: "llm_embeddings" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const head = (path: string, type: string): string =>
    `POST /proxy/d1${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nContent-Type: ${type}\r\nContent-Length: 5000000\r\n\r\n`;

  it.each([
    ["a JSON body route", "/v1/chat/completions", "application/json"],
    ["a multipart route", "/v1/audio/transcriptions", "multipart/form-data; boundary=x"],
  ])("%s: 403 insufficient_scope without the body", async (_name, path, type) => {
    const res = await headOnly(gw.port, head(path, type), 5_000);
    expect(res).toMatch(/^HTTP\/1\.1 403/);
    expect(res).toContain("insufficient_scope");
  });

  it("a route the token may use waits for the body instead (the check above is not a blanket refusal)", async () => {
    const res = await headOnly(gw.port, head("/v1/embeddings", "application/json"), 500);
    expect(res).toBe("");
  });
});
