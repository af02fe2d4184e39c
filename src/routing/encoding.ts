/**
 * A body the gateway reads (to find the entity) must reach the upstream as
 * the same text: no Content-Encoding the upstream would undo (a gzip body is
 * bytes the gateway cannot have checked; some frameworks inflate it, others
 * not) and no charset but UTF-8 (Python decodes `charset=utf-16` bodies,
 * Node and Go do not). Refused rather than decoded: identity UTF-8 is what
 * every SDK sends.
 */
/** Why a body-reading route refuses this Content-Encoding and Content-Type (a message for 415 unsupported_encoding), or null. */
export function bodyEncodingProblem(ce: string | undefined, contentType: string): string | null {
  if (ce !== undefined && ce.trim().toLowerCase() !== "identity" && ce.trim() !== "") {
    return `The body is sent with Content-Encoding "${ce.slice(0, 40)}"; this route reads the body, so send it uncompressed.`;
  }
  const semi = contentType.indexOf(";");
  if (semi === -1) return null;
  return charsetProblem(contentType.slice(semi + 1));
}

// `; key=value` pairs of a media type: a charset (in any spelling a parser could
// read as one: `charset*=`, quoted, repeated) must be plain utf-8.
function charsetProblem(params: string): string | null {
  let seen = false;
  for (const raw of params.split(";")) {
    const eq = raw.indexOf("=");
    const key = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase();
    if (!key.startsWith("charset")) continue;
    if (key !== "charset") return `The Content-Type parameter "${key}" is not accepted; write charset=utf-8 or leave it out.`;
    if (seen) return "The Content-Type names a charset twice.";
    seen = true;
    let v = raw.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    const cs = v.toLowerCase();
    if (cs !== "utf-8" && cs !== "utf8") return `The body's charset "${v.slice(0, 40)}" is not accepted; send UTF-8.`;
  }
  return null;
}
