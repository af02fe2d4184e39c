// Each rule of the strict multipart reader (src/routing/multipart.ts), shown
// by a form that breaks only that rule and would otherwise be read: the
// defect sits in a sibling part or in the framing, the model field itself is
// plain. Without the rule the gateway would authorize "m" from a body another
// parser splits or names differently. The accepted forms at each rule's edge
// show the rule refuses no more than it says.
import { describe, expect, it } from "vitest";
import { entityFromMultipart, type EntityResult } from "../../src/routing/entity.ts";

const B = "----patgateRules9x";
const CT = `multipart/form-data; boundary=${B}`;
const code = (r: EntityResult): string => (r.ok ? `ok:${r.id}` : r.code);

const part = (disposition: string, headers = "", value = "v", boundary = B): string => `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${headers}\r\n${value}\r\n`;
const model = (boundary = B): string => part('form-data; name="model"', "", "m", boundary);
const end = (boundary = B): string => `--${boundary}--\r\n`;
const read = async (body: string | Buffer, contentType = CT): Promise<string> =>
  code(await entityFromMultipart(typeof body === "string" ? Buffer.from(body, "latin1") : body, contentType, "model"));

describe("the Content-Type", () => {
  it("must be multipart/form-data: a body that would split under an empty boundary is not read", async () => {
    const body = `--\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n----\r\n`;
    for (const ct of ["application/json", "multipart/form-data", 'multipart/form-data; boundary=""']) expect(await read(body, ct), ct).toBe("bad_multipart");
    for (const ct of [`multipart/mixed; boundary=${B}`, `text/plain; boundary=${B}`]) expect(await read(model() + end(), ct), ct).toBe("bad_multipart");
  });

  it("accepts OWS around the type and its parameters, a tab, and one trailing ';'", async () => {
    for (const ct of [`multipart/form-data  ; boundary=${B}`, `multipart/form-data;\tboundary=${B}`, `multipart/form-data; boundary=${B} ; charset=utf-8`, `multipart/form-data; boundary=${B};`, `Multipart/Form-Data; boundary=${B}`]) {
      expect(await read(model() + end(), ct), ct).toBe("ok:m");
    }
  });

  it("takes a utf-8, utf8 or us-ascii charset in any case, and refuses any other", async () => {
    for (const cs of ["utf-8", "UTF-8", "utf8", "us-ascii", '"utf-8"']) expect(await read(model() + end(), `${CT}; charset=${cs}`), cs).toBe("ok:m");
    for (const cs of ["latin1", "utf-16", "iso-8859-1"]) expect(await read(model() + end(), `${CT}; charset=${cs}`), cs).toBe("bad_multipart");
  });

  it("refuses parameters other than boundary and charset, parameters not separated by ';', and key:value", async () => {
    for (const ct of [`${CT}; foo=bar`, `${CT},charset=utf-8`, `multipart/form-data; boundary:${B}`]) expect(await read(model() + end(), ct), ct).toBe("bad_multipart");
  });

  it("bounds the boundary: 1 to 70 bchars, no trailing space", async () => {
    const ok = async (b: string): Promise<string> => read(model(b) + end(b), `multipart/form-data; boundary="${b}"`);
    expect(await ok("b".repeat(70))).toBe("ok:m");
    expect(await ok("b".repeat(71))).toBe("bad_multipart");
    expect(await ok(" lead")).toBe("ok:m");
    expect(await ok("trail ")).toBe("bad_multipart");
    // '=' names no parameter in a boundary (Python's email module writes such boundaries).
    expect(await ok("==a=b")).toBe("ok:m");
    for (const b of ["a<b", "a@b", "a\u00e9b", "a[b"]) expect(await ok(b), b).toBe("bad_multipart");
  });
});

describe("the framing", () => {
  it("the first line must be the delimiter, even when a line as long as one stands there", async () => {
    const first = `--${B}`;
    const body = model() + end();
    expect(await read("X".repeat(first.length) + body.slice(first.length))).toBe("bad_multipart");
  });

  it("a delimiter is followed by CRLF or a close: nothing else is skipped", async () => {
    const rest = `Content-Disposition: form-data; name="model"\r\n\r\nm\r\n${end()}`;
    for (const after of ["XX", "\rX", "X\n"]) expect(await read(part('form-data; name="a"') + `--${B}${after}${rest}`), JSON.stringify(after)).toBe("bad_multipart");
  });

  it("a close is exactly two dashes, then nothing or one CRLF", async () => {
    expect(await read(model() + `--${B}--`)).toBe("ok:m");
    expect(await read(model() + `--${B}--\r\n`)).toBe("ok:m");
    for (const tail of ["-\r", "X-", "-X", "--X\n", "--\rX", "--\r\n\r\n"]) expect(await read(model() + `--${B}${tail}`), JSON.stringify(tail)).toBe("bad_multipart");
  });

  it("takes at most 256 parts", async () => {
    const others = (n: number): string => Array.from({ length: n }, (_, i) => part(`form-data; name="f${i}"`)).join("");
    expect(await read(others(255) + model() + end())).toBe("ok:m");
    expect(await read(others(256) + model() + end())).toBe("bad_multipart");
  });

  it("an empty value whose header block's last CRLF is the delimiter's is read as empty", async () => {
    const empty = `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\n`;
    expect(await read(empty + model() + end())).toBe("ok:m");
    expect(await read(`--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\n` + end())).toBe("entity_invalid");
  });
});

describe("a part's headers", () => {
  it.each([
    ["a bare LF in a value", "X-Note: a\nb\r\n"],
    ["a bare CR in a value", "X-Note: a\rb\r\n"],
    ["a line starting with ':'", ": v\r\n"],
    ["a space in a header name", "X Note: v\r\n"],
    ["a '(' in a header name", "X(Note): v\r\n"],
    ["two Content-Type headers", "Content-Type: text/plain\r\nContent-Type: text/plain\r\n"],
    ["two Content-Transfer-Encoding headers", "Content-Transfer-Encoding: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n"],
  ])("refuse the form for %s in another part", async (_name, headers) => {
    expect(await read(part('form-data; name="a"', headers) + model() + end())).toBe("bad_multipart");
  });

  it("OWS around a header value is trimmed, spaces and tabs alike", async () => {
    expect(await read(`--${B}\r\nContent-Disposition:\t form-data; name="model" \t\r\n\r\nm\r\n` + end())).toBe("ok:m");
    expect(await read(part('form-data; name="model"', "Content-Transfer-Encoding: \t8bit \t\r\n", "m") + end())).toBe("ok:m");
  });

  it("the entity's part may say 7bit, 8bit or binary, nothing else", async () => {
    for (const cte of ["7bit", "8bit", "binary", "BINARY"]) expect(await read(part('form-data; name="model"', `Content-Transfer-Encoding: ${cte}\r\n`, "m") + end()), cte).toBe("ok:m");
    for (const cte of ["quoted-printable", "base64", "x-7bit"]) expect(await read(part('form-data; name="model"', `Content-Transfer-Encoding: ${cte}\r\n`, "m") + end()), cte).toBe("entity_invalid");
  });

  it("a file part named like the field is refused even without a Content-Type", async () => {
    expect(await read(part('form-data; name="model"; filename="m"', "", "m") + end())).toBe("entity_invalid");
  });
});

describe("Content-Disposition parameters", () => {
  it.each([
    ["a DEL", 'form-data; name="a"; filename="x\u007fy"'],
    ["a control character", 'form-data; name="a"; filename="x\u0001y"'],
    ["a ';'", 'form-data; name="a"; filename="x;y"'],
    ["a '='", 'form-data; name="a"; filename="x=y"'],
    ["a tab in the name", 'form-data; name="a\tb"'],
    ["a non-ASCII name", 'form-data; name="\u00e9"'],
    ["an empty unquoted name", "form-data; name="],
    ["another parameter", 'form-data; name="a"; size=3'],
    ["key:value", "form-data; name:a"],
  ])("refuse the form for %s in another part", async (_name, disposition) => {
    expect(await read(part(disposition) + model() + end())).toBe("bad_multipart");
  });

  it("accept a tab or space in a quoted value, printable names up to '~', and an unquoted name", async () => {
    for (const disposition of ['form-data; name="a"; filename="x\ty.wav"', 'form-data; name="a b"; filename="my file.wav"', 'form-data; name="a~b"', "form-data; name=a", 'form-data ; name="a" ; filename="f"']) {
      expect(await read(part(disposition) + model() + end()), disposition).toBe("ok:m");
    }
  });
});

describe("the value", () => {
  it("keeps a leading byte order mark: the id is exactly what an upstream reads", async () => {
    const body = Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\n`), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`m\r\n${end()}`)]);
    expect(await read(body)).toBe("ok:\ufeffm");
  });

  it("takes an id of 256 characters of three UTF-8 bytes each", async () => {
    const id = "\u20ac".repeat(256);
    const body = Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\n`), Buffer.from(id, "utf8"), Buffer.from(`\r\n${end()}`)]);
    expect(await read(body)).toBe(`ok:${id}`);
  });
});

// A refusal says which rule the form broke, so a client can fix it: the
// message names the rule. Each case breaks exactly one rule, so the check that
// refuses it is the one named (another check further on would refuse the same
// form with another message).
describe("each refusal names the rule that refused it", () => {
  const why = async (body: string, contentType = CT): Promise<string> => {
    const r = await entityFromMultipart(Buffer.from(body, "latin1"), contentType, "model");
    return r.ok ? "ok" : `${r.code}: ${r.message}`;
  };
  const form = model() + end();

  it.each([
    ["not multipart", "application/json", /^bad_multipart: .*multipart\/form-data with one valid boundary/],
    ["no parameters", "multipart/form-data", /one valid boundary/],
    ["no boundary", "multipart/form-data; charset=utf-8", /one valid boundary/],
    ["an empty boundary", 'multipart/form-data; boundary=""', /one valid boundary/],
    ["a charset", `${CT}; charset=latin1`, /charset must be utf-8/],
    ["another parameter", `${CT}; foo=bar`, /parameters are not accepted: the parameter "foo" is not accepted \(only boundary, charset\)/],
    ["RFC 2231", `multipart/form-data; boundary*=utf-8''${B}`, /"boundary\*…" is an RFC 2231 encoded or continued parameter/],
    ["not key=value", `multipart/form-data; boundary:${B}`, /not written key=value/],
    ["an empty key", "multipart/form-data; =x", /not written key=value/],
    ["no ';'", `${CT} charset=utf-8`, /separated by ';'/],
    ["an unclosed quote", 'multipart/form-data; boundary="abc', /quoted parameter value is not closed/],
    ["no value", "multipart/form-data; boundary=;", /"boundary" has no value/],
    ["twice", `${CT}; boundary=x`, /"boundary" is given twice/],
    ["a ';' in a quoted value", 'multipart/form-data; boundary="a;b"', /holds a character parsers read differently/],
  ])("the Content-Type: %s", async (_name, ct, message) => {
    expect(await why(form, ct)).toMatch(message);
  });

  it.each([
    ["a preamble", `x${form}`, /start with the boundary delimiter/],
    ["junk after a delimiter", `--${B}X\r\n`, /followed by CRLF or "--"/],
    ["an epilogue", `${form}x`, /Nothing but one CRLF may follow the closing/],
    ["no closing delimiter", model(), /ends without a closing boundary delimiter/],
    ["too many parts", Array.from({ length: 257 }, (_, i) => part(`form-data; name="f${i}"`)).join("") + end(), /more than 256 parts/],
    ["headers without an empty line", `--${B}\r\nContent-Disposition: form-data; name="model"\r\n--${B}\r\nContent-Disposition: form-data; name="x"\r\n\r\nv\r\n${end()}`, /not terminated by an empty line/],
    ["a part without headers", `--${B}\r\n\r\nv\r\n${end()}`, /exactly one Content-Disposition/],
    ["a bare LF", part('form-data; name="a"', "X: a\nb\r\n") + form, /bare CR or LF/],
    ["a folded line", part('form-data; name="a"', " folded\r\n") + form, /malformed \(folded lines/],
    ["a bad header name", part('form-data; name="a"', "X Y: z\r\n") + form, /header name is malformed/],
    ["two dispositions", part('form-data; name="a"', 'Content-Disposition: form-data; name="b"\r\n') + form, /exactly one Content-Disposition/],
    ["not form-data", part('attachment; name="a"') + form, /must be form-data/],
    ["no name", part("form-data") + form, /needs a name/],
    ["a name parameter written twice", part('form-data; name="a"; name="b"') + form, /Content-Disposition parameters are not accepted: the parameter "name" is given twice\./],
    ["a non-ASCII name", part('form-data; name="\u00e9"') + form, /printable ASCII/],
    ["two Content-Types", part('form-data; name="a"', "Content-Type: a/b\r\nContent-Type: a/b\r\n") + form, /more than one content-type header/],
  ])("the body: %s", async (_name, body, message) => {
    expect(await why(body)).toMatch(message);
  });

  it.each([
    ["two fields", model() + model() + end(), /^entity_ambiguous: .*"model" appears 2 times/],
    ["a differently spelled field", part('form-data; name="Model"') + end(), /^entity_missing: The form has no "model" field \(a differently spelled field "Model" is not accepted\)\.$/],
    ["no field", part('form-data; name="a"') + end(), /^entity_missing: The form has no "model" field\.$/],
    ["a file", part('form-data; name="model"; filename="f"') + end(), /^entity_invalid: .*not a file/],
    ["a Content-Type", part('form-data; name="model"', "Content-Type: text/plain\r\n", "m") + end(), /^entity_invalid: .*no Content-Type header/],
    ["too long", part('form-data; name="model"', "", "m".repeat(1025)) + end(), /^entity_invalid: The form field "model" is longer than 256 characters/],
  ])("the field: %s", async (_name, body, message) => {
    expect(await why(body)).toMatch(message);
  });

  it("a value that is not UTF-8 is named so", async () => {
    const body = Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\n`), Buffer.from([0xff]), Buffer.from(`\r\n${end()}`)]);
    const r = await entityFromMultipart(body, CT, "model");
    expect(r.ok ? "" : r.message).toMatch(/not valid UTF-8/);
  });
});
