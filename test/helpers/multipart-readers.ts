// Multipart parsers as backends run them, each asked one question: which
// values does the form hold under one field name? Three are independent npm
// parsers (busboy, undici's Request.formData, formidable); the fourth reads
// parameters the way Go's mime.ParseMediaType and python-multipart do (RFC 2231
// continuations joined, `*` values charset-decoded, a later continuation
// overriding a plain parameter), which none of the npm parsers does.
import { Readable, Writable } from "node:stream";
import { Busboy } from "@fastify/busboy";
import formidable from "formidable";

/** One parser's reading: the entries under the name (fields and files), or why it refused the body. */
export type Reading = { readonly ok: true; readonly fields: readonly string[]; readonly files: number } | { readonly ok: false; readonly error: string };

export interface Reader {
  readonly name: string;
  read(contentType: string, body: Buffer, field: string): Promise<Reading>;
}

const refuse = (err: unknown): Reading => ({ ok: false, error: err instanceof Error ? err.message : String(err) });

export const busboy: Reader = {
  name: "@fastify/busboy",
  read: (contentType, body, field) =>
    new Promise((resolve) => {
      const fields: string[] = [];
      let files = 0;
      try {
        const bb = new Busboy({ headers: { "content-type": contentType } });
        bb.on("field", (n: string, v: string) => {
          if (n === field) fields.push(v);
        });
        bb.on("file", (n: string, stream: Readable) => {
          if (n === field) files++;
          stream.resume();
        });
        bb.on("finish", () => resolve({ ok: true, fields, files }));
        bb.on("error", (e: unknown) => resolve(refuse(e)));
        bb.end(body);
      } catch (e) {
        resolve(refuse(e));
      }
    }),
};

export const undiciFormData: Reader = {
  name: "undici Request.formData",
  async read(contentType, body, field) {
    try {
      const fd = await new Request("http://backend/", { method: "POST", headers: { "content-type": contentType }, body }).formData();
      const all = fd.getAll(field);
      return { ok: true, fields: all.filter((v): v is string => typeof v === "string"), files: all.filter((v) => typeof v !== "string").length };
    } catch (e) {
      return refuse(e);
    }
  },
};

export const formidableReader: Reader = {
  name: "formidable",
  read: (contentType, body, field) =>
    new Promise((resolve) => {
      const req = Object.assign(Readable.from([body]), { headers: { "content-type": contentType, "content-length": String(body.length) } });
      const form = formidable({
        // Files are counted, never written to disk.
        fileWriteStreamHandler: () => new Writable({ write: (_c, _e, cb) => cb() }),
        maxFields: 100_000,
        allowEmptyFiles: true,
        minFileSize: 0,
      });
      form.parse(req, (err: unknown, fields: Record<string, string[] | undefined>, files: Record<string, unknown[] | undefined>) => {
        if (err !== null && err !== undefined) return resolve(refuse(err));
        resolve({ ok: true, fields: fields[field] ?? [], files: files[field]?.length ?? 0 });
      });
    }),
};

// ------------------------------------------------- RFC 2231 (Go, Python)

/**
 * Parameters as Go's mime.ParseMediaType reads them: quoted strings with
 * backslash escapes, `key*` charset-decoded, `key*0`, `key*1`… joined (and the
 * joined value replacing a plain `key`), a duplicate key an error.
 */
export function rfc2231Params(value: string): { type: string; params: Map<string, string> } | null {
  const semi = value.indexOf(";");
  const type = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  const params = new Map<string, string>();
  const pieces = new Map<string, Map<string, string>>();
  let i = semi === -1 ? value.length : semi;
  const ws = (): void => {
    while (i < value.length && (value[i] === " " || value[i] === "\t")) i++;
  };
  while (i < value.length) {
    ws();
    if (value[i] !== ";") return null;
    i++;
    ws();
    if (i >= value.length) break;
    const k0 = i;
    while (i < value.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(value[i]!)) i++;
    const key = value.slice(k0, i).toLowerCase();
    if (key === "" || value[i] !== "=") return null;
    i++;
    let v = "";
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length) return null;
        const c = value[i]!;
        if (c === "\\" && i + 1 < value.length) {
          v += value[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          break;
        } else {
          v += c;
          i++;
        }
      }
    } else {
      const v0 = i;
      while (i < value.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(value[i]!)) i++;
      v = value.slice(v0, i);
      if (v === "") return null;
    }
    const star = key.indexOf("*");
    if (star === -1) {
      if (params.has(key)) return null;
      params.set(key, v);
    } else {
      const base = key.slice(0, star);
      const m = pieces.get(base) ?? new Map<string, string>();
      if (m.has(key)) return null;
      m.set(key, v);
      pieces.set(base, m);
    }
  }
  for (const [base, m] of pieces) {
    const single = m.get(`${base}*`);
    if (single !== undefined) {
      const d = decodeExt(single);
      if (d !== null) params.set(base, d);
      continue;
    }
    let joined = "";
    let any = false;
    for (let n = 0; ; n++) {
      const plain = m.get(`${base}*${n}`);
      const enc = m.get(`${base}*${n}*`);
      if (plain === undefined && enc === undefined) break;
      any = true;
      if (enc !== undefined) {
        const d = n === 0 ? decodeExt(enc) : percentDecode(enc);
        if (d === null) return null;
        joined += d;
      } else joined += plain;
    }
    if (any) params.set(base, joined);
  }
  return { type, params };
}

function decodeExt(v: string): string | null {
  const parts = v.split("'");
  if (parts.length !== 3) return null;
  const cs = parts[0]!.toLowerCase();
  if (cs !== "utf-8" && cs !== "us-ascii" && cs !== "") return null;
  return percentDecode(parts[2]!);
}

function percentDecode(v: string): string | null {
  try {
    return decodeURIComponent(v);
  } catch {
    return null;
  }
}

/** Go's multipart.Reader + ReadForm, for one field: parts whose disposition does not parse are skipped, as Go skips them. */
export const rfc2231Reader: Reader = {
  name: "RFC 2231 (Go mime/multipart, python-multipart)",
  read: (contentType, body, field) => Promise.resolve(readRfc2231(contentType, body, field)),
};

function readRfc2231(contentType: string, body: Buffer, field: string): Reading {
  const ct = rfc2231Params(contentType);
  const boundary = ct?.params.get("boundary");
  if (ct === null || ct.type !== "multipart/form-data" || boundary === undefined || boundary === "") return { ok: false, error: "no boundary" };
  const text = body.toString("latin1");
  const dash = `--${boundary}`;
  let pos = text.indexOf(dash);
  if (pos === -1) return { ok: false, error: "no first boundary" };
  const fields: string[] = [];
  let files = 0;
  pos += dash.length;
  for (;;) {
    if (text.startsWith("--", pos)) return { ok: true, fields, files };
    // Go allows transport padding (spaces, tabs) after a delimiter.
    while (text[pos] === " " || text[pos] === "\t") pos++;
    if (!text.startsWith("\r\n", pos)) return { ok: false, error: "bad delimiter line" };
    pos += 2;
    const next = text.indexOf(`\r\n${dash}`, pos);
    if (next === -1) return { ok: false, error: "unexpected EOF" };
    const headEnd = text.startsWith("\r\n", pos) ? pos : text.indexOf("\r\n\r\n", pos);
    if (headEnd === -1 || headEnd > next) return { ok: false, error: "bad part headers" };
    const headers = new Map<string, string>();
    for (const line of text.slice(pos, headEnd).split("\r\n")) {
      if (line === "") continue;
      const c = line.indexOf(":");
      if (c <= 0) return { ok: false, error: "malformed header" };
      const k = line.slice(0, c).trim().toLowerCase();
      if (!headers.has(k)) headers.set(k, line.slice(c + 1).trim()); // Go's textproto: Get returns the first
    }
    const valueStart = headEnd === pos ? pos + 2 : headEnd + 4;
    const value = valueStart > next ? "" : text.slice(valueStart, next);
    const cd = rfc2231Params(headers.get("content-disposition") ?? "");
    if (cd !== null && cd.type === "form-data") {
      const name = cd.params.get("name");
      if (name === field) {
        if (cd.params.get("filename") !== undefined && cd.params.get("filename") !== "") files++;
        else fields.push(Buffer.from(value, "latin1").toString("utf8"));
      }
    }
    pos = next + 2 + dash.length;
  }
}

export const READERS: readonly Reader[] = [busboy, undiciFormData, formidableReader, rfc2231Reader];
