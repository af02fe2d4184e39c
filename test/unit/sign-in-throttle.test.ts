// The admin-key form's throttle (src/ui/throttle.ts) on a hand-driven clock:
// bursts, refill, the bound on any wait, refunds, the global bucket, memory
// bound, and which address a request is counted against.
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { SignInThrottle, addressKey, clientAddress, trustedProxyList, type Admission } from "../../src/ui/throttle.ts";

const LIMIT = { perAddress: 5, global: 20, windowMs: 300_000 };

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** One failed attempt; the refusal if there was one. */
function fail(t: SignInThrottle, addr: string): Admission {
  const a = t.admit(addr);
  if (a.ok) a.settle("failure");
  return a;
}

describe("SignInThrottle", () => {
  it("lets a burst of failures through, then one per window ÷ limit, with the wait it reports", () => {
    const c = clock();
    const t = new SignInThrottle(LIMIT, c.now);
    for (let i = 0; i < 5; i++) expect(fail(t, "1.2.3.4").ok).toBe(true);
    const refused = fail(t, "1.2.3.4");
    expect(refused).toMatchObject({ ok: false, scope: "address", retryAfterMs: 60_000, first: true });
    // Still refused, and the audit-worthy "first" is said once per episode.
    c.advance(30_000);
    expect(fail(t, "1.2.3.4")).toMatchObject({ ok: false, retryAfterMs: 30_000, first: false });
    c.advance(30_000);
    expect(fail(t, "1.2.3.4").ok).toBe(true);
    expect(fail(t, "1.2.3.4")).toMatchObject({ ok: false, retryAfterMs: 60_000, first: true });
    // Another address is not affected.
    expect(fail(t, "5.6.7.8").ok).toBe(true);
  });

  it("never makes anyone wait longer than window ÷ limit once the failures stop, however many there were", () => {
    const c = clock();
    const t = new SignInThrottle(LIMIT, c.now);
    let longest = 0;
    // An hour of hammering, one try every 100 ms.
    for (let i = 0; i < 36_000; i++) {
      const a = fail(t, "9.9.9.9");
      if (!a.ok) longest = Math.max(longest, a.retryAfterMs);
      c.advance(100);
    }
    expect(longest).toBeLessThanOrEqual(60_000);
    c.advance(60_000);
    // The correct key then gets in, and the address starts clean.
    const right = t.admit("9.9.9.9");
    expect(right.ok).toBe(true);
    if (right.ok) right.settle("success");
    expect(t.size).toBe(0);
    for (let i = 0; i < 5; i++) expect(fail(t, "9.9.9.9").ok).toBe(true);
  });

  it("gives back the attempt of a success or an outage, never of a failure", () => {
    const c = clock();
    const t = new SignInThrottle(LIMIT, c.now);
    for (let i = 0; i < 4; i++) fail(t, "a");
    const outage = t.admit("a");
    expect(outage.ok).toBe(true);
    if (outage.ok) outage.settle("error");
    // The outage did not count: one more failure is still free.
    expect(fail(t, "a").ok).toBe(true);
    expect(fail(t, "a").ok).toBe(false);
    // Settling twice changes nothing.
    c.advance(60_000);
    const once = t.admit("a");
    if (once.ok) {
      once.settle("failure");
      once.settle("success");
    }
    expect(fail(t, "a").ok).toBe(false);
  });

  it("takes the attempt before the key is checked: concurrent guesses get no more than sequential ones", () => {
    const t = new SignInThrottle(LIMIT, clock().now);
    const pending = Array.from({ length: 50 }, () => t.admit("c"));
    expect(pending.filter((a) => a.ok)).toHaveLength(5);
  });

  it("limits all addresses together: many addresses cannot add up to more than the global bucket", () => {
    const c = clock();
    const t = new SignInThrottle(LIMIT, c.now);
    let allowed = 0;
    let refusal: Admission | null = null;
    for (let i = 0; i < 100; i++) {
      const a = fail(t, `10.0.${i}.1`);
      if (a.ok) allowed++;
      else refusal ??= a;
    }
    expect(allowed).toBe(20);
    expect(refusal).toMatchObject({ ok: false, scope: "global", retryAfterMs: 15_000, first: true });
    c.advance(15_000);
    expect(fail(t, "10.9.9.9").ok).toBe(true);
  });

  it("remembers a bounded number of addresses", () => {
    const c = clock();
    const t = new SignInThrottle({ perAddress: 2, global: 1_000_000, windowMs: 60_000 }, c.now, 100);
    for (let i = 0; i < 1000; i++) fail(t, `172.16.${i >> 8}.${i & 255}`);
    expect(t.size).toBeLessThanOrEqual(100);
  });
});

describe("clientAddress", () => {
  const req = (remote: string, xff?: string): IncomingMessage => ({ socket: { remoteAddress: remote }, headers: xff === undefined ? {} : { "x-forwarded-for": xff } }) as unknown as IncomingMessage;
  const proxies = trustedProxyList(["10.0.0.0/8", "fd00::/8", "192.168.1.7"]);

  it("is the peer without trusted proxies, whatever X-Forwarded-For says", () => {
    expect(clientAddress(req("203.0.113.9", "1.1.1.1"), null)).toBe("203.0.113.9");
    expect(clientAddress(req("203.0.113.9", "1.1.1.1"), proxies)).toBe("203.0.113.9");
    expect(clientAddress(req("::ffff:203.0.113.9"), null)).toBe("203.0.113.9");
  });

  it("behind trusted proxies, is the right-most entry that is not one (what the client sent on the left is ignored)", () => {
    expect(clientAddress(req("10.1.2.3", "203.0.113.9"), proxies)).toBe("203.0.113.9");
    expect(clientAddress(req("10.1.2.3", "6.6.6.6, 203.0.113.9, 10.9.9.9"), proxies)).toBe("203.0.113.9");
    expect(clientAddress(req("192.168.1.7", "198.51.100.1"), proxies)).toBe("198.51.100.1");
    // Every hop trusted: the left-most.
    expect(clientAddress(req("10.1.2.3", "10.4.4.4, 10.5.5.5"), proxies)).toBe("10.4.4.4");
    // Garbage stops the walk at the last good hop.
    expect(clientAddress(req("10.1.2.3", "nonsense, 10.5.5.5"), proxies)).toBe("10.5.5.5");
    expect(clientAddress(req("10.1.2.3"), proxies)).toBe("10.1.2.3");
  });

  it("counts IPv6 clients by their /64", () => {
    expect(addressKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:0db8:0001:0002::ffff")).toBe("2001:db8:1:2::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("2001:db8::1.2.3.4")).toBe("2001:db8:0:0::/64");
    expect(clientAddress(req("fd00::1", "2001:db8:5:6::7"), proxies)).toBe("2001:db8:5:6::/64");
  });
});
