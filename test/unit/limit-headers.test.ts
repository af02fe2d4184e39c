// The rate-limit headers of a limited response, exactly: the IETF draft's
// RateLimit-Policy / RateLimit items in policy and dimension order, and
// OpenAI's x-ratelimit-* for the tightest policy of each kind.
import { describe, expect, it } from "vitest";
import { count, denialHeaders, duration, limitHeaders } from "../../src/limits/headers.ts";
import type { Taken } from "../../src/limits/counters.ts";
import type { Charge } from "../../src/limits/policies.ts";

const policy = (name: string, v: Partial<Charge["policy"]>): Charge["policy"] =>
  ({ name, subject: "pat", requestsPerMinute: 0, tokensPerMinute: 0, tokensPerDay: 0, concurrent: 0, mode: "enforce", onStoreDown: "local", clampMaxTokens: false, ...v }) as Charge["policy"];
const taken = (remaining: [number, number, number], resetMs: [number, number, number], inUse = 0): Taken => ({ refused: 0, retryMs: 0, at: 0, remaining, resetMs, inUse, output: 0 });

const perPat: Charge = { key: "per-pat|p:1", policy: policy("per-pat", { requestsPerMinute: 100, tokensPerDay: 50_000, concurrent: 4 }) };
const perModel: Charge = { key: "per-model|dm:d1/m", policy: policy("per-model", { tokensPerMinute: 9_000 }) };

describe("limitHeaders", () => {
  const charges = [perPat, perModel];
  const takes = [
    { charge: perPat, taken: taken([97, 0, 48_000], [59_001, 0, 3_600_000], 1) },
    { charge: perModel, taken: taken([0, 8_000, 0], [0, 30_500, 0]) },
  ];

  it("names every dimension of every policy, and the tightest of each kind for OpenAI's headers", () => {
    expect(Object.fromEntries(pairs(limitHeaders(charges, takes)))).toEqual({
      "ratelimit-policy": '"per-pat-requests";q=100;w=60, "per-pat-tokens-day";q=50000;w=86400;qu="tokens", "per-pat-concurrent";q=4;qu="concurrent-requests", "per-model-tokens-minute";q=9000;w=60;qu="tokens"',
      ratelimit: '"per-pat-requests";r=97;t=60, "per-pat-tokens-day";r=48000;t=3600, "per-pat-concurrent";r=3, "per-model-tokens-minute";r=8000;t=31',
      "x-ratelimit-limit-requests": "100",
      "x-ratelimit-remaining-requests": "97",
      "x-ratelimit-reset-requests": "1m0s",
      "x-ratelimit-limit-tokens": "9000",
      "x-ratelimit-remaining-tokens": "8000",
      "x-ratelimit-reset-tokens": "31s",
    });
  });

  it("gives the same answer for the same list on later requests (the compiled plan is reused, the counts are not)", () => {
    limitHeaders(charges, takes);
    const later = [{ charge: perPat, taken: taken([5, 0, 100], [1_000, 0, 1_000], 4) }, { charge: perModel, taken: taken([0, 200, 0], [0, 999, 0]) }];
    const h = Object.fromEntries(pairs(limitHeaders(charges, later)));
    expect(h["ratelimit"]).toBe('"per-pat-requests";r=5;t=1, "per-pat-tokens-day";r=100;t=1, "per-pat-concurrent";r=0, "per-model-tokens-minute";r=200;t=1');
    expect(h["x-ratelimit-remaining-tokens"]).toBe("100");
    expect(h["x-ratelimit-limit-tokens"]).toBe("50000");
    expect(h["x-ratelimit-reset-tokens"]).toBe("1s");
  });

  it("a refusal adds Retry-After, retry-after-ms, and x-should-retry: false past the SDKs' 60 s", () => {
    const soon = denialHeaders(perModel, 2, 1_500, null);
    expect(soon).toMatchObject({ "retry-after": "2", "retry-after-ms": "1500", "x-ratelimit-limit-tokens": "9000", "x-ratelimit-remaining-tokens": "0" });
    expect(soon["x-should-retry"]).toBeUndefined();
    expect(denialHeaders(perPat, 3, 7_200_000, null)["x-should-retry"]).toBe("false");
  });

  it("formats resets as OpenAI does", () => {
    expect([duration(250.2), duration(1_000), duration(61_000), duration(3_723_000)]).toEqual(["251ms", "1s", "1m1s", "1h2m3s"]);
  });
});

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe("count", () => {
  it("writes every count as String() does, also past 31 bits and for what is not whole", () => {
    const values = [0, 1, 9, 10, 999_999_999, 1_000_000_000, 2 ** 31 - 1, 2 ** 31, 999_999_999_999, 1e12, 1e12 + 1, 5e9 + 7, 123_000_000_456, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e21, 1.5, -3, -(2 ** 40)];
    for (const n of values) expect(count(n), String(n)).toBe(String(n));
  });
});
