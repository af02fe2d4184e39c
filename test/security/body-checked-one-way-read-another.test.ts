// Finding (review, low): forward what was checked. A body the gateway read as
// UTF-8 JSON went on with a Content-Encoding or charset that makes a backend
// read other bytes (Python decodes `charset=utf-7`, where `+ACI-` is a quote,
// so one body holds two different objects; a gzip body is not what was
// scanned), and the "entity in the query string" check missed the forms query
// parsers map onto the field (`model[]`, `model%5B%5D`, `model[0]`, `model.x`,
// ` model`, `model%00`). Both are refused now.
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("a body checked one way and read another", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "allowed", operation: "llm_chat_completions" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const json = '{"model":"allowed","messages":[],"x":"+ACIALAAi-model+ACIAOgAi-secret+ACI-"}';
  const post = (headers: Record<string, string>, body: string | Buffer, query = ""): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1/v1/chat/completions${query}`, { method: "POST", headers: { authorization: `Bearer ${token}`, ...headers }, body });

  it.each([
    ["charset=utf-7 (Python reads a second model out of this body)", { "content-type": "application/json; charset=utf-7" }],
    ["charset=utf-16", { "content-type": "application/json; charset=utf-16" }],
    ["charset=iso-8859-1", { "content-type": "application/json; charset=iso-8859-1" }],
    ["a quoted non-UTF-8 charset", { "content-type": 'application/json; charset="latin1"' }],
    ["an RFC 2231 charset", { "content-type": "application/json; charset*=utf-8''utf-7" }],
    ["two charsets", { "content-type": "application/json; charset=utf-8; charset=utf-7" }],
    ["Content-Encoding: gzip", { "content-type": "application/json", "content-encoding": "gzip" }],
    ["Content-Encoding: br", { "content-type": "application/json", "content-encoding": "br" }],
    ["Content-Encoding listing identity after gzip", { "content-type": "application/json", "content-encoding": "gzip, identity" }],
  ])("%s → 415, not forwarded", async (_name, headers) => {
    upstream.clear();
    const res = await post(headers, json);
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unsupported_encoding");
    expect(upstream.requests).toHaveLength(0);
  });

  it("a gzip-compressed body is refused before it is read as JSON", async () => {
    upstream.clear();
    const res = await post({ "content-type": "application/json", "content-encoding": "gzip" }, gzipSync(json));
    expect(res.status).toBe(415);
    expect(upstream.requests).toHaveLength(0);
  });

  it.each([["application/json"], ["application/json; charset=utf-8"], ["application/json; charset=UTF-8"], ['application/json; charset="utf-8"'], ["application/json;charset=utf8"]])("%s goes through", async (type) => {
    upstream.clear();
    const res = await post({ "content-type": type, "content-encoding": "identity" }, json);
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  });

  it.each([
    ["?model[]=secret"],
    ["?model%5B%5D=secret"],
    ["?model%5b0%5d=secret"],
    ["?model[0]=secret"],
    ["?Model[a]=secret"],
    ["?model.x=secret"],
    ["?%20model=secret"],
    ["?+model=secret"],
    ["?model%00x=secret"],
    ["?x=1&MODEL%5B%5D=secret"],
  ])("the entity in the query string as %s → 400", async (query) => {
    upstream.clear();
    const res = await post({ "content-type": "application/json" }, '{"model":"allowed","messages":[]}', query);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("entity_ambiguous");
    expect(upstream.requests).toHaveLength(0);
  });

  it("a query without the entity still goes through", async () => {
    upstream.clear();
    const res = await post({ "content-type": "application/json" }, '{"model":"allowed","messages":[]}', "?api-version=2024-10-21&models_list=1");
    expect(res.status).toBe(200);
  });
});
