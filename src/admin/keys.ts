/**
 * Admin keys: the operators' credential for the management API.
 *
 * Only SHA-256 hashes are kept (in settings and in the store). A plain hash is
 * enough here: keys are high-entropy (256 random bits when we mint them, at
 * least 32 characters when an operator supplies one), so there is nothing for
 * a slow KDF to protect, and a pepper would tie the key to one store.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { AdminKeyRecord, Store } from "../store/types.ts";

/** Minted keys start with this, so they are recognisable (and never look like a PAT). */
export const ADMIN_KEY_PREFIX = "pgadm_";
/** Shortest plaintext admin key accepted from config. */
export const MIN_ADMIN_KEY_LENGTH = 32;

const HASH_ENTRY = /^sha256:([0-9a-fA-F]{64})$/;
// Header-safe printable ASCII without spaces: what can follow "Bearer ".
const KEY_CHARS = /^[\x21-\x7e]+$/;

/** The stored form of an admin key: SHA-256, lowercase hex. */
export function hashAdminKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** A fresh admin key: the prefix and 256 random bits in base64url. */
export function generateAdminKey(): string {
  return ADMIN_KEY_PREFIX + randomBytes(32).toString("base64url");
}

/**
 * One configured entry, `sha256:<hex>` or a plaintext key, as its hash; or why
 * it is unusable. The message never repeats the entry: it may be a secret.
 */
export function adminKeyEntryHash(entry: string): { ok: true; hash: string } | { ok: false; error: string } {
  const m = HASH_ENTRY.exec(entry);
  if (m !== null) return { ok: true, hash: (m[1] ?? "").toLowerCase() };
  if (entry.startsWith("sha256:")) return { ok: false, error: "a `sha256:` entry must be followed by exactly 64 hex digits" };
  if (!KEY_CHARS.test(entry)) return { ok: false, error: "an admin key may only contain printable ASCII without spaces" };
  if (entry.length < MIN_ADMIN_KEY_LENGTH) {
    return { ok: false, error: `an admin key must be at least ${MIN_ADMIN_KEY_LENGTH} characters (e.g. \`openssl rand -base64 32\`), or write its hash as sha256:<hex>` };
  }
  return { ok: true, hash: hashAdminKey(entry) };
}

/** A key's fingerprint: the first 48 bits of its hash, in hex; names it in audit lines and sessions, unusable as the key. */
function fingerprint(hash: Buffer): string {
  return hash.toString("hex").slice(0, 12);
}

/**
 * Checks presented keys against the configured hashes or, when none are
 * configured, against the store's (the first-start key).
 */
export class AdminKeys {
  readonly #configured: readonly Buffer[];
  readonly #store: Store;

  constructor(configuredHashes: readonly string[], store: Store) {
    this.#configured = configuredHashes.map((h) => Buffer.from(h, "hex"));
    this.#store = store;
  }

  /** True when configured keys are in force (the stored first-start key is then ignored). */
  get configured(): boolean {
    return this.#configured.length > 0;
  }

  /** The hashes in force: the configured ones, else the store's. */
  async #known(): Promise<readonly Buffer[]> {
    return this.configured ? this.#configured : (await this.#store.listAdminKeys()).map((k) => Buffer.from(k.hash, "hex"));
  }

  /** A short, non-secret fingerprint of the matching key (for audit lines), or null when none matches. */
  async match(key: string): Promise<string | null> {
    if (key.length < MIN_ADMIN_KEY_LENGTH || !KEY_CHARS.test(key)) return null;
    const known = await this.#known();
    const presented = createHash("sha256").update(key, "utf8").digest();
    let found: Buffer | null = null;
    for (const h of known) {
      // Every hash is compared, so the time taken does not say which one matched.
      if (h.length === presented.length && timingSafeEqual(h, presented) && found === null) found = h;
    }
    return found === null ? null : fingerprint(found);
  }

  /** True while the key with this fingerprint is in force (a web session made with a removed key ends). */
  async holds(keyId: string): Promise<boolean> {
    return (await this.#known()).some((h) => fingerprint(h) === keyId);
  }

  /**
   * With no configured keys and none stored, mints one, stores its hash and
   * hands the plaintext to `print` (once: of several replicas only one wins).
   */
  async bootstrap(print: (key: string) => void, now = Date.now()): Promise<boolean> {
    if (this.configured) return false;
    if ((await this.#store.listAdminKeys()).length > 0) return false;
    const key = generateAdminKey();
    const rec: AdminKeyRecord = { id: randomUUID(), hash: hashAdminKey(key), createdAt: now };
    if (!(await this.#store.addFirstAdminKey(rec))) return false;
    print(key);
    return true;
  }
}
