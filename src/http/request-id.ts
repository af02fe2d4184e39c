/**
 * A client's X-Request-Id is kept (logged, forwarded, echoed) only when it is
 * short and plain: at most 64 of `[A-Za-z0-9._:-]`, and nothing that could be
 * a token (a PAT is 76 characters; `pat_` and a base62 run of 40 or more are
 * refused too), since the id lands in every log line of the request.
 */
const MAX_LENGTH = 64;

/** The client's request id when it is acceptable, else null (the gateway then makes one). */
export function clientRequestId(given: string | string[] | undefined): string | null {
  if (typeof given !== "string" || given.length === 0 || given.length > MAX_LENGTH) return null;
  let run = 0;
  for (let i = 0; i < given.length; i++) {
    const c = given.charCodeAt(i);
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && c !== 0x2e && c !== 0x5f && c !== 0x3a && c !== 0x2d) return null;
    run = alnum ? run + 1 : 0;
    // A secret's worth of base62 in a row: most likely a pasted credential.
    if (run >= 40) return null;
  }
  return given.includes("pat_") ? null : given;
}
