import { TOKEN_PATTERN } from "../../src/tokens/format.ts";

const BEARER = /bearer\s+[A-Za-z0-9._~+/=-]{8,}/i;
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./;
const ADMIN_KEY = /pgadm_[A-Za-z0-9_]{16,}/;
const UPSTREAM_KEY = /sk-upstream-secret/;
// PEM text, or a Buffer serialised as JSON whose bytes start "-----BEGIN".
const PRIVATE_KEY = /PRIVATE KEY-----|45,45,45,45,45,66,69,71,73,78/;

/** What in one log line looks like a credential: a PAT, an Authorization value, a JWT, an admin or upstream key, a TLS private key. */
export function findLeaks(line: string): string[] {
  const found: string[] = [];
  const flag = (what: string, m: RegExpExecArray | null): void => {
    if (m !== null) found.push(`${what}: …${line.slice(Math.max(0, m.index - 40), m.index + 12)}…`);
  };
  flag("PAT", TOKEN_PATTERN.exec(line));
  flag("Authorization value", BEARER.exec(line));
  flag("JWT", JWT.exec(line));
  flag("admin key", ADMIN_KEY.exec(line));
  flag("upstream credential", UPSTREAM_KEY.exec(line));
  flag("private key", PRIVATE_KEY.exec(line));
  if (/"authorization"\s*:\s*"(?!\[redacted\])/i.test(line)) found.push("authorization field");
  return found;
}
