import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Denial } from "../../src/errors.ts";
import { forwardedPath, splitTarget } from "../../src/routing/normalize.ts";
import { resolveRoute } from "../../src/routing/request.ts";
import { RouteTable, type Route } from "../../src/routing/table.ts";

describe("splitTarget: accepted targets", () => {
  it("splits path and query and keeps the raw forms", () => {
    expect(splitTarget("/proxy/acme/v1/chat/completions?stream=true")).toEqual({
      rawPath: "/proxy/acme/v1/chat/completions",
      query: "?stream=true",
      segments: ["proxy", "acme", "v1", "chat", "completions"],
      rawSegments: ["proxy", "acme", "v1", "chat", "completions"],
    });
  });

  it("returns no segments for the root", () => {
    expect(splitTarget("/")).toEqual({ rawPath: "/", query: "", segments: [], rawSegments: [] });
  });

  it("keeps a bare '?' as the query", () => {
    expect(splitTarget("/a?")?.query).toBe("?");
  });

  it("decodes percent-encoded characters into segments, not into rawSegments", () => {
    const t = splitTarget("/v1/models/llama3%3A8b/%E2%82%AC%41");
    expect(t?.segments).toEqual(["v1", "models", "llama3:8b", "€A"]);
    expect(t?.rawSegments).toEqual(["v1", "models", "llama3%3A8b", "%E2%82%AC%41"]);
    expect(t?.rawPath).toBe("/v1/models/llama3%3A8b/%E2%82%AC%41");
  });

  it("accepts every unreserved and sub-delim character raw, except ';'", () => {
    expect(splitTarget("/a-._~!$&'()*+,=:@z")?.segments).toEqual(["a-._~!$&'()*+,=:@z"]);
  });

  it("accepts dots that are not whole segments", () => {
    expect(splitTarget("/a/.b/c../...")?.segments).toEqual(["a", ".b", "c..", "..."]);
  });

  it("accepts encoded '?' and '#' as data inside a segment", () => {
    expect(splitTarget("/a%3Fb%23c")?.segments).toEqual(["a?b#c"]);
  });

  it("does not validate the query beyond control characters and '#'", () => {
    expect(splitTarget("/a?x=%zz&y=%2F..%2F")?.query).toBe("?x=%zz&y=%2F..%2F");
  });
});

describe("splitTarget: rejected targets", () => {
  const rejected: [string, string][] = [
    ["empty", ""],
    ["relative", "v1/models"],
    ["absolute-form", "http://evil.example/v1/models"],
    ["absolute-form https", "https://gw/proxy/acme/v1/models"],
    ["asterisk-form", "*"],
    ["authority-form", "gw:443"],
    ["double slash", "/proxy//v1"],
    ["leading double slash", "//proxy/acme"],
    ["trailing slash", "/v1/models/"],
    ["dot segment", "/proxy/./acme"],
    ["dot-dot segment", "/proxy/acme/../other"],
    ["trailing dot-dot", "/proxy/acme/.."],
    ["encoded dot-dot lower", "/proxy/acme/%2e%2e/other"],
    ["encoded dot-dot mixed case", "/proxy/acme/%2e%2E/other"],
    ["half-encoded dot-dot", "/proxy/acme/.%2e/other"],
    ["encoded single dot", "/proxy/%2E/acme"],
    ["encoded slash upper", "/proxy/acme%2Fother/v1"],
    ["encoded slash lower", "/proxy/acme%2fother/v1"],
    ["encoded backslash upper", "/proxy/acme%5Cother"],
    ["encoded backslash lower", "/proxy/acme%5cother"],
    ["raw backslash", "/proxy/acme\\..\\other"],
    ["encoded NUL", "/v1/models/a%00b"],
    ["raw NUL", "/v1/models/a\u0000b"],
    ["encoded control", "/v1/models/a%0Ab"],
    ["raw control", "/v1/models/a\nb"],
    ["encoded DEL", "/v1/models/a%7Fb"],
    ["raw DEL", "/v1/models/a\u007fb"],
    ["raw space", "/v1/models/a b"],
    ["encoded space", "/v1/models/a%20b"],
    ["encoded C1 control", "/v1/models/a%C2%85b"],
    ["double encoding", "/proxy/acme/%252e%252e/x"],
    ["invalid escape", "/v1/models/a%zzb"],
    ["truncated escape", "/v1/models/a%4"],
    ["lone percent", "/v1/models/a%"],
    ["invalid UTF-8", "/v1/models/%FF"],
    ["overlong UTF-8 for '/'", "/v1/models/%C0%AF"],
    ["encoded surrogate", "/v1/models/%ED%A0%80"],
    ["truncated UTF-8", "/v1/models/%E2%82"],
    ["fragment", "/v1/models#frag"],
    ["fragment in query", "/v1/models?a=1#frag"],
    ["control in query", "/v1/models?a=\u0001"],
    ["space in query", "/v1/models?a= b"],
    ["raw non-ASCII", "/v1/models/caf\u00e9"],
    ["matrix parameter", "/v1/chat;x=y/completions"],
    ["raw quote", '/v1/models/a"b'],
    ["raw braces", "/v1/models/{x}"],
    ["raw pipe", "/v1/models/a|b"],
  ];
  it.each(rejected)("rejects %s", (_name, target) => {
    expect(splitTarget(target)).toBeNull();
  });
});

describe("splitTarget: robustness", () => {
  it("never throws on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
        splitTarget(s);
        splitTarget("/" + s);
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on percent-heavy paths", () => {
    const unit = fc.constantFrom("%", "2e", "2E", "2f", "5c", "/", "a", "F", "C0", "E2", "82", "AC", ".", "00", "?", "#");
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 40 }), (parts) => {
        const t = splitTarget("/" + parts.join(""));
        if (t !== null) {
          // Whatever is accepted has no separators or dot segments left after decoding.
          for (const s of t.segments) {
            expect(s).not.toBe("");
            expect(s).not.toBe(".");
            expect(s).not.toBe("..");
            expect(s.includes("/")).toBe(false);
            expect(s.includes("\\")).toBe(false);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("handles very long segments without throwing", () => {
    const long = "%41".repeat(200_000);
    expect(splitTarget("/" + long)?.segments[0]?.length).toBe(200_000);
  });
});

describe("encoded slashes (splitTarget(url, true))", () => {
  it("decodes %2F inside a segment and says where the first one is", () => {
    const t = splitTarget("/proxy/acme/v1/models/meta-llama%2FLlama-3%2f8B", true);
    expect(t?.segments).toEqual(["proxy", "acme", "v1", "models", "meta-llama/Llama-3/8B"]);
    expect(t?.slashedAt).toBe(4);
    expect(splitTarget("/proxy/acme/v1/models/x", true)?.slashedAt).toBeUndefined();
  });

  it.each(["/a/b%2F..%2Fc", "/a/b%2F.", "/a/%2Fb", "/a/b%2F", "/a/b%2F%2Fc", "/a/b%2F%00"])("refuses %s: each part must be a clean segment", (url) => {
    expect(splitTarget(url, true)).toBeNull();
  });

  it("stays refused without the flag", () => {
    expect(splitTarget("/proxy/acme/v1/models/a%2Fb")).toBeNull();
  });

  it("only inside the {name+} parameter (resolveRoute), forwarded as plain '/' (forwardedPath)", () => {
    const table = new RouteTable([
      { id: "rest", method: "GET", path: "/v1/models/{model+}", operation: "llm_read", entityType: "models", entity: { from: "path", param: "model" }, bodyLimit: 1, also: [] } as unknown as Route,
      { id: "one", method: "GET", path: "/v1/files/{file}", operation: "llm_read", entityType: "models", entity: { from: "path", param: "file" }, bodyLimit: 1, also: [] } as unknown as Route,
    ]);
    const t = splitTarget("/proxy/acme/v1/models/a%2Fb", true)!;
    const m = resolveRoute(table, "GET", t, 2);
    expect(m).not.toBeInstanceOf(Denial);
    expect(forwardedPath(t)).toBe("/proxy/acme/v1/models/a/b");
    expect(resolveRoute(table, "GET", splitTarget("/proxy/acme/v1/files/a%2Fb", true)!, 2)).toMatchObject({ error: "bad_path" });
    expect(resolveRoute(table, "GET", splitTarget("/proxy/acme/v1%2Fmodels/a", true)!, 2)).toMatchObject({ error: "bad_path" });
    expect(resolveRoute(table, "GET", splitTarget("/proxy/acme/v9/nothing%2Fhere", true)!, 2)).toMatchObject({ error: "bad_path" });
    const plain = splitTarget("/proxy/acme/v1/models/a", true)!;
    expect(forwardedPath(plain)).toBe(plain.rawPath);
  });
});
