// Response headers on their way to the client: hop-by-hop fields and the ones
// an upstream's Connection header names are dropped, everything else passes.
import { describe, expect, it } from "vitest";
import { HeaderPolicy } from "../../src/upstream/headers.ts";

describe("HeaderPolicy.responseHeaders", () => {
  const policy = new HeaderPolicy([]);

  it("drops hop-by-hop fields and the upstream's request id, keeps the rest", () => {
    const out = policy.responseHeaders({
      "content-type": "application/json",
      "content-length": "12",
      connection: "keep-alive",
      "keep-alive": "timeout=5",
      "transfer-encoding": "chunked",
      "x-request-id": "upstream-id",
      "openai-model": "m",
    });
    expect(out).toEqual({ "content-type": "application/json", "content-length": "12", "openai-model": "m" });
  });

  it("drops the fields a Connection header names, in any letter case and spacing", () => {
    const out = policy.responseHeaders({ connection: "Keep-Alive, X-Internal-Trace ,x-debug", "x-internal-trace": "1", "x-debug": "2", "x-kept": "3" });
    expect(out).toEqual({ "x-kept": "3" });
  });

  it("keeps every other field when Connection is a plain keep-alive or close", () => {
    for (const connection of ["keep-alive", "Keep-Alive", "close", "CLOSE"]) {
      expect(policy.responseHeaders({ connection, "x-kept": "1", server: "s" })).toEqual({ "x-kept": "1", server: "s" });
    }
  });
});
