// Finding (review, high): multipart parameters meant one thing to the gateway
// and another to the parser behind it. `name*=` was refused, but RFC 2231
// continuations (`name*0`, `name*0*`, `boundary*0`) passed, and Go's
// mime/multipart and python-multipart join them: `name="x"; name*0="model"` is
// the field "model" there and "x" here, so a second `model` part chose the
// model the backend served. The class: any parameter form the gateway does not
// interpret exactly as every parser does (continuations, charset-encoded
// values, duplicates, odd quoting), and unbounded part counts.
//
// Differential: generated bodies go through the gateway's reader and four
// parsers (busboy, undici's Request.formData, formidable, and Go/Python's
// RFC 2231 reading). Whenever the gateway accepts a body, every parser must
// read exactly the one model the gateway authorized.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { entityFromMultipart, MAX_PARTS } from "../../src/routing/entity.ts";
import { READERS, type Reading } from "../helpers/multipart-readers.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

const B = "patgateB0und4ry";

const DISPOSITIONS = [
  'form-data; name="model"',
  "form-data; name=model",
  'form-data; NAME="model"',
  'form-data; name="MODEL"',
  'form-data; name="x"',
  'form-data; name="language"',
  'form-data; name="model"; filename="a.wav"',
  'form-data; name="model"; filename=""',
  'form-data; name="file"; filename="a.wav"',
  // RFC 2231 continuations and encodings
  'form-data; name*0="mo"; name*1="del"',
  "form-data; name*0*=utf-8''mo; name*1=del",
  'form-data; name="x"; name*0="model"',
  'form-data; name="model"; name*0="x"',
  "form-data; name*=utf-8''model",
  "form-data; name=\"x\"; name*=UTF-8''model",
  "form-data; name=\"model\"; filename*=utf-8''a.wav",
  'form-data; name="=?utf-8?q?model?="',
  // duplicates
  'form-data; name="x"; name="model"',
  'form-data; name="model"; Name="x"',
  'form-data; name="model"; filename="a"; filename="b"',
  // odd quoting
  'form-data; name="mod\\"el"',
  'form-data; name="model\\\\"; filename="x"',
  'form-data; filename="; name=model"; name="x"',
  'form-data; name="x"; filename="a; name=model"',
  'form-data; name= "model"',
  'form-data; name ="model"',
  'form-data;name="model"',
  'form-data; name="model";',
  'form-data; name="model" ; filename="a"',
  'form-data; name="mod el"',
  'form-data; name="modèl"',
  // other parameters and types
  'form-data; name="model"; size=3',
  'attachment; name="model"',
  "form-data",
] as const;

const EXTRA_HEADERS = [
  "",
  "Content-Type: text/plain\r\n",
  "Content-Type: text/plain; charset=utf-16le\r\n",
  "Content-Type: text/plain; charset*=utf-8''utf-8\r\n",
  "Content-Type: application/octet-stream\r\n",
  "Content-Transfer-Encoding: base64\r\n",
  "Content-Disposition: form-data; name=\"model\"\r\n",
  "X-Other: 1\r\n",
] as const;

const CONTENT_TYPES = [
  `multipart/form-data; boundary=${B}`,
  `multipart/form-data; boundary="${B}"`,
  `multipart/form-data; boundary=${B}; charset=utf-8`,
  `multipart/form-data; charset=utf-16; boundary=${B}`,
  `multipart/form-data; boundary*0=${B}`,
  `multipart/form-data; boundary*0="${B.slice(0, 5)}"; boundary*1="${B.slice(5)}"`,
  `multipart/form-data; boundary=${B}; boundary*0=other`,
  `multipart/form-data; boundary=other; boundary*0=${B}`,
  `multipart/form-data; boundary=${B}; boundary=${B}`,
  `multipart/form-data; boundary*=utf-8''${B}`,
  `multipart/form-data; xboundary=other; boundary=${B}`,
  `Multipart/Form-Data; BOUNDARY=${B}`,
] as const;

const VALUES = ["allowed", "secret", ""] as const;
const EPILOGUES = ["\r\n", "", `\r\n--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nsecret\r\n--${B}--\r\n`, "trailing text"] as const;

interface Generated {
  contentType: string;
  body: Buffer;
}

const part = fc.record({ disposition: fc.constantFrom(...DISPOSITIONS), extra: fc.constantFrom(...EXTRA_HEADERS), value: fc.constantFrom(...VALUES) });
const generated: fc.Arbitrary<Generated> = fc
  .record({
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constant(CONTENT_TYPES[0] as string) }, { weight: 4, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
    // Mostly plain parts, so that accepted bodies are common enough to check.
    parts: fc.array(fc.oneof({ weight: 3, arbitrary: fc.record({ disposition: fc.constant('form-data; name="model"'), extra: fc.constant(""), value: fc.constantFrom(...VALUES) }) }, { weight: 2, arbitrary: fc.record({ disposition: fc.constant('form-data; name="file"; filename="a.wav"'), extra: fc.constant("Content-Type: audio/wav\r\n"), value: fc.constant("RIFF") }) }, { weight: 5, arbitrary: part }), { minLength: 1, maxLength: 4 }),
    preamble: fc.constantFrom("", "", "", "", "", "preamble\r\n"),
    epilogue: fc.oneof({ weight: 6, arbitrary: fc.constant("\r\n") }, { weight: 2, arbitrary: fc.constantFrom(...EPILOGUES) }),
  })
  .map(({ contentType, parts, preamble, epilogue }) => {
    let text = preamble;
    for (const p of parts) text += `--${B}\r\nContent-Disposition: ${p.disposition}\r\n${p.extra}\r\n${p.value}\r\n`;
    text += `--${B}--${epilogue}`;
    return { contentType, body: Buffer.from(text, "utf8") };
  });

/** The model a parser would serve: the one field named model, or null when it reads none, several, or a file. */
function servedModel(r: Reading): string | null {
  if (!r.ok || r.files !== 0 || r.fields.length !== 1) return null;
  return r.fields[0] ?? null;
}

describe("multipart parameter forms: the gateway and four parsers read the same model", () => {
  it("every body the gateway accepts, each parser reads as the model the gateway authorized", async () => {
    let accepted = 0;
    let disagreements = 0;
    await fc.assert(
      fc.asyncProperty(generated, async ({ contentType, body }) => {
        const gw = await entityFromMultipart(body, contentType, "model");
        const readings = await Promise.all(READERS.map(async (r) => ({ parser: r.name, reading: await r.read(contentType, body, "model") })));
        const served = readings.map((r) => servedModel(r.reading));
        if (new Set(served).size > 1) disagreements++;
        if (!gw.ok) return;
        accepted++;
        for (const r of readings) {
          expect({ parser: r.parser, model: servedModel(r.reading), reading: r.reading }).toEqual({ parser: r.parser, model: gw.id, reading: r.reading });
        }
      }),
      { numRuns: 3000, seed: 20261201, endOnFailure: true },
    );
    // The generator must reach both sides: bodies the gateway forwards, and bodies the parsers read differently.
    expect(accepted).toBeGreaterThan(100);
    expect(disagreements).toBeGreaterThan(100);
  }, 120_000);

  it.each([
    ["a continuation naming a second model part", `--${B}\r\nContent-Disposition: form-data; name="x"; name*0="model"\r\n\r\nsecret\r\n--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}--\r\n`, `multipart/form-data; boundary=${B}`],
    ["a split continuation", `--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}\r\nContent-Disposition: form-data; name*0="mo"; name*1="del"\r\n\r\nsecret\r\n--${B}--\r\n`, `multipart/form-data; boundary=${B}`],
    ["an encoded continuation", `--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}\r\nContent-Disposition: form-data; name*0*=utf-8''mo; name*1=del\r\n\r\nsecret\r\n--${B}--\r\n`, `multipart/form-data; boundary=${B}`],
    ["a boundary continuation", `--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}--\r\n`, `multipart/form-data; boundary=${B}; boundary*0=other`],
    ["a name found inside a quoted filename", `--${B}\r\nContent-Disposition: form-data; filename="; name=model"; name="x"\r\n\r\nsecret\r\n--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}--\r\n`, `multipart/form-data; boundary=${B}`],
    ["an RFC 2047 encoded name", `--${B}\r\nContent-Disposition: form-data; name="=?utf-8?q?model?="\r\n\r\nsecret\r\n--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}--\r\n`, `multipart/form-data; boundary=${B}`],
    ["a second form after the closing delimiter", `--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}--\r\n--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nsecret\r\n--${B}--\r\n`, `multipart/form-data; boundary=${B}`],
  ])("refuses %s", async (_name, body, contentType) => {
    const r = await entityFromMultipart(Buffer.from(body), contentType, "model");
    expect(r.ok).toBe(false);
  });

  it(`refuses a form of more than ${MAX_PARTS} parts, however small`, async () => {
    const tiny = `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n`;
    const at = (n: number): Buffer => Buffer.from(tiny.repeat(n - 1) + `--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}--\r\n`);
    expect(await entityFromMultipart(at(MAX_PARTS), `multipart/form-data; boundary=${B}`, "model")).toEqual({ ok: true, id: "allowed" });
    const r = await entityFromMultipart(at(MAX_PARTS + 1), `multipart/form-data; boundary=${B}`, "model");
    expect(r).toMatchObject({ ok: false, code: "bad_multipart" });
    // The review's body: 200 000 empty parts (a few MB) is refused at part MAX_PARTS + 1, not parsed to the end.
    const big = await entityFromMultipart(at(200_000), `multipart/form-data; boundary=${B}`, "model");
    expect(big).toMatchObject({ ok: false, code: "bad_multipart" });
  });
});

describe("multipart parameter forms: through the gateway", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url });
    ({ token } = await gw.issue({ scopes: [{ entityType: "models", entityId: "allowed", operation: "llm_transcription" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const send = (contentType: string, body: string): Promise<Response> =>
    fetch(`${gw.url}/proxy/d1/v1/audio/transcriptions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": contentType }, body });

  it("the review's body is refused and never reaches the backend", async () => {
    upstream.clear();
    const body = `--${B}\r\nContent-Disposition: form-data; name="x"; name*0="model"\r\n\r\nsecret\r\n--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--${B}--\r\n`;
    const res = await send(`multipart/form-data; boundary=${B}`, body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("bad_multipart");
    expect(upstream.requests).toHaveLength(0);
  });

  it("a boundary continuation is refused", async () => {
    upstream.clear();
    const res = await send(`multipart/form-data; boundary=${B}; boundary*0=other`, `--${B}\r\nContent-Disposition: form-data; name="model"\r\n\r\nallowed\r\n--${B}--\r\n`);
    expect(res.status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it("a plain form still goes through, and the backend's parser reads the authorized model", async () => {
    upstream.clear();
    const form = new FormData();
    form.set("model", "allowed");
    form.set("file", new Blob([Buffer.from("RIFF")], { type: "audio/wav" }), "a.wav");
    const res = await fetch(`${gw.url}/proxy/d1/v1/audio/transcriptions`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
    expect(res.status).toBe(200);
    const got = upstream.requests[0]!;
    for (const r of READERS) expect(servedModel(await r.read(got.headers["content-type"]!, got.body, "model"))).toBe("allowed");
  });
});
