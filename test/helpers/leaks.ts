import { TOKEN_PATTERN, looksLikePat } from "../../src/tokens/format.ts";

const BEARER = /bearer\s+[A-Za-z0-9._~+/=-]{8,}/i;
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./;
const ADMIN_KEY = /pgadm_[A-Za-z0-9_]{16,}/;
const UPSTREAM_KEY = /sk-upstream-secret/;
// PEM text, or a Buffer serialised as JSON whose bytes start "-----BEGIN".
const PRIVATE_KEY = /PRIVATE KEY-----|45,45,45,45,45,66,69,71,73,78/;

/** What in one log line looks like a credential: a PAT (whole, cut short or with escaped separators), an Authorization value, a JWT, an admin or upstream key, a TLS private key. */
export function findLeaks(line: string): string[] {
  const found: string[] = [];
  const flag = (what: string, m: RegExpExecArray | null): void => {
    if (m !== null) found.push(`${what}: …${line.slice(Math.max(0, m.index - 40), m.index + 12)}…`);
  };
  flag("PAT", TOKEN_PATTERN.exec(line));
  if (!TOKEN_PATTERN.test(line) && looksLikePat(line)) found.push("PAT-shaped text (cut short or escaped)");
  flag("Authorization value", BEARER.exec(line));
  flag("JWT", JWT.exec(line));
  flag("admin key", ADMIN_KEY.exec(line));
  flag("upstream credential", UPSTREAM_KEY.exec(line));
  flag("private key", PRIVATE_KEY.exec(line));
  if (/"authorization"\s*:\s*"(?!\[redacted\])/i.test(line)) found.push("authorization field");
  return found;
}

/** Length of the pieces secrets are matched by: 20 base62 characters are about 119 bits, so no chance hit. */
const WINDOW = 20;
const RUN = /[0-9A-Za-z]{20,}/g;

/**
 * Every secret the suite minted, indexed by all its 20-character pieces, so a
 * log line holding any part of one (the bare PAT secret, a token without its
 * checksum, an admin key's random part, a pepper, a JWT signature), also with
 * `%5F` or `\u005f` for `_`, is found in one pass over the line.
 */
export class SecretIndex {
  readonly #pieces = new Map<string, string>();

  /** Adds a secret; `label` says which in a report, never the secret itself. */
  add(secret: string, label: string): void {
    // A PAT's ident is its id in base62, which is not secret: index the secret and checksum only.
    const material = secret.startsWith("pat_") && secret.length === 76 ? secret.slice(27) : secret;
    for (const run of material.match(RUN) ?? []) {
      for (let i = 0; i + WINDOW <= run.length; i++) this.#pieces.set(run.slice(i, i + WINDOW), label);
    }
  }

  get size(): number {
    return this.#pieces.size;
  }

  /** The label of a secret that `line` holds a piece of, or null. */
  find(line: string): string | null {
    const text = line.includes("%5") || line.includes("\\u005") ? line.replace(/%5[fF]|\\u005[fF]/g, "_") : line;
    for (const run of text.match(RUN) ?? []) {
      for (let i = 0; i + WINDOW <= run.length; i++) {
        const hit = this.#pieces.get(run.slice(i, i + WINDOW));
        if (hit !== undefined) return hit;
      }
    }
    return null;
  }
}
