/**
 * The admin-key sign-in form is a password form on the network: failed
 * attempts are limited per client address and for the whole gateway process.
 *
 * Each is a token bucket that holds `perAddress` (or `global`) attempts and
 * refills completely over `windowMs`: a burst of typos is free, then one try
 * every window ÷ limit. A refused attempt is never checked against the keys
 * (no oracle while throttled) and waits at most window ÷ limit once the
 * failures stop, so the correct key is never locked out for longer than that.
 * A success refunds its attempt and forgets the address; an outage (the store
 * down while checking) refunds it too: it is nobody's failed guess. An attempt takes its
 * token before the key is checked, so a thousand concurrent guesses get no
 * more tries than a thousand sequential ones.
 */
import { BlockList, isIPv4, isIPv6 } from "node:net";
import type { IncomingMessage } from "node:http";
import type { SignInLimit } from "../config/ui.ts";

// Distinct addresses remembered at once; beyond it the oldest is forgotten (the global bucket still holds).
const MAX_ADDRESSES = 10_000;

interface Bucket {
  tokens: number;
  at: number;
  /** A refusal of this bucket was already audited since its last admitted attempt. */
  told: boolean;
}

/** An attempt let through (settle it with its outcome), or refused for `retryAfterMs`. */
export type Admission =
  | { readonly ok: true; settle(outcome: "success" | "failure" | "error"): void }
  | { readonly ok: false; readonly scope: "address" | "global"; readonly retryAfterMs: number; /** the first refusal of this episode: worth one audit line */ readonly first: boolean };

/** Failed-attempt limits for one gateway process. */
export class SignInThrottle {
  readonly #limit: SignInLimit;
  readonly #now: () => number;
  readonly #maxAddresses: number;
  readonly #addresses = new Map<string, Bucket>();
  readonly #global: Bucket;

  constructor(limit: SignInLimit, now: () => number = Date.now, maxAddresses = MAX_ADDRESSES) {
    this.#limit = limit;
    this.#now = now;
    this.#maxAddresses = maxAddresses;
    this.#global = { tokens: limit.global, at: now(), told: false };
  }

  /** Addresses with failures on record (for tests and bounds). */
  get size(): number {
    return this.#addresses.size;
  }

  /** Takes an attempt for `address` (see clientAddress), or says how long to wait. */
  admit(address: string): Admission {
    const now = this.#now();
    const mine = this.#addresses.get(address) ?? { tokens: this.#limit.perAddress, at: now, told: false };
    this.#refill(mine, this.#limit.perAddress, now);
    this.#refill(this.#global, this.#limit.global, now);
    if (mine.tokens < 1) return this.#refuse(mine, "address", this.#limit.perAddress);
    if (this.#global.tokens < 1) return this.#refuse(this.#global, "global", this.#limit.global);
    mine.tokens -= 1;
    mine.told = false;
    this.#global.tokens -= 1;
    this.#global.told = false;
    this.#remember(address, mine);
    let settled = false;
    return {
      ok: true,
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        if (outcome === "failure") return;
        // The right key, or an outage (nobody's failed guess): the attempt is given back.
        this.#global.tokens = Math.min(this.#limit.global, this.#global.tokens + 1);
        if (outcome === "success") this.#addresses.delete(address);
        else mine.tokens = Math.min(this.#limit.perAddress, mine.tokens + 1);
      },
    };
  }

  #refuse(b: Bucket, scope: "address" | "global", capacity: number): Admission {
    const first = !b.told;
    b.told = true;
    const retryAfterMs = Math.max(1, Math.ceil(((1 - b.tokens) * this.#limit.windowMs) / capacity));
    return { ok: false, scope, retryAfterMs, first };
  }

  #refill(b: Bucket, capacity: number, now: number): void {
    if (now > b.at) b.tokens = Math.min(capacity, b.tokens + ((now - b.at) * capacity) / this.#limit.windowMs);
    b.at = now;
  }

  #remember(address: string, b: Bucket): void {
    if (this.#addresses.has(address)) return;
    if (this.#addresses.size >= this.#maxAddresses) {
      // Full buckets are no different from unknown addresses: drop them first, then the oldest.
      const now = this.#now();
      for (const [a, x] of this.#addresses) {
        this.#refill(x, this.#limit.perAddress, now);
        if (x.tokens >= this.#limit.perAddress) this.#addresses.delete(a);
      }
      if (this.#addresses.size >= this.#maxAddresses) {
        const oldest = this.#addresses.keys().next();
        if (oldest.done !== true) this.#addresses.delete(oldest.value);
      }
    }
    this.#addresses.set(address, b);
  }
}

/** The trusted proxies as a BlockList (built once at start); null when there are none. */
export function trustedProxyList(entries: readonly string[]): BlockList | null {
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const e of entries) {
    const [addr = "", bits] = e.split("/");
    const family = isIPv6(addr) ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}

/**
 * Who is signing in, as a throttle key: the peer address, or, when the peer is
 * a trusted proxy, the right-most X-Forwarded-For entry that is not one (the
 * entries left of it are whatever the client sent). IPv6 is keyed by its /64,
 * the block one subscriber usually holds.
 */
export function clientAddress(req: IncomingMessage, trusted: BlockList | null): string {
  const peer = plainIp(req.socket.remoteAddress ?? "");
  let client = peer;
  if (trusted !== null && isTrusted(trusted, peer)) {
    const header = req.headers["x-forwarded-for"];
    const hops = (typeof header === "string" ? header : "").split(",").map((h) => plainIp(h.trim()));
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i] ?? "";
      if (!isIPv4(hop) && !isIPv6(hop)) break;
      client = hop;
      if (!isTrusted(trusted, hop)) break;
    }
  }
  return addressKey(client);
}

function isTrusted(list: BlockList, ip: string): boolean {
  if (isIPv4(ip)) return list.check(ip, "ipv4");
  if (isIPv6(ip)) return list.check(ip, "ipv6");
  return false;
}

/** `::ffff:1.2.3.4` as `1.2.3.4`; a zone index dropped. */
function plainIp(ip: string): string {
  const bare = ip.replace(/%.*$/, "");
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  return mapped?.[1] ?? bare;
}

/** IPv4 as is; IPv6 as its first four groups (its /64). */
export function addressKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  let text = ip.toLowerCase();
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
