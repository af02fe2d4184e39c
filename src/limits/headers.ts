/**
 * The headers a limited response carries, so clients can pace themselves:
 * the IETF draft's `RateLimit-Policy` / `RateLimit` (one item per policy and
 * dimension), OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
 * (the tightest policy of each kind), and on a 429 `Retry-After`,
 * `retry-after-ms` and, when the wait is longer than SDKs wait, `x-should-retry: false`.
 */
import { DIM_CONCURRENT, DIM_REQUESTS, DIM_TPD, DIM_TPM, type Taken } from "./counters.ts";
import type { Charge } from "./policies.ts";

/** The openai SDKs honour a Retry-After up to this long; past it they retry on their own schedule. */
export const SDK_MAX_WAIT_MS = 60_000;

interface Limited {
  readonly charge: Charge;
  readonly taken: Taken;
}

const SUFFIX = ["", "requests", "tokens-minute", "tokens-day", "concurrent"];
const WINDOW_S = ["", "60", "60", "86400", ""];

/** One header item: a dimension of one charge's policy, compiled once. */
interface Item {
  /** Index of the charge (and of its take) in the request's list. */
  readonly at: number;
  readonly dim: number;
  /** `"<policy>-<dimension>";r=`: the RateLimit item up to its remaining count. */
  readonly prefix: string;
  readonly limit: number;
  readonly limitText: string;
}

/** The headers of one list of charges, compiled once: the static RateLimit-Policy value and the items to fill in. */
interface Plan {
  readonly policy: string;
  readonly items: readonly Item[];
  /** Candidates for x-ratelimit-*-requests and -tokens (the tightest is named). */
  readonly requests: readonly Item[];
  readonly tokens: readonly Item[];
}

// ChargeCache hands out the same list for the same PAT, domain, model and operation: a plan per list.
const PLANS = new WeakMap<readonly Limited["charge"][], Plan>();

function planOf(charges: readonly Limited["charge"][]): Plan {
  let plan = PLANS.get(charges);
  if (plan !== undefined) return plan;
  const policies: string[] = [];
  const items: Item[] = [];
  charges.forEach((c, at) => {
    const p = c.policy;
    const limits = [0, p.requestsPerMinute, p.tokensPerMinute, p.tokensPerDay, p.concurrent];
    for (let dim = DIM_REQUESTS; dim <= DIM_CONCURRENT; dim++) {
      const limit = limits[dim] as number;
      if (limit === 0) continue;
      const name = `"${p.name}-${SUFFIX[dim] as string}"`;
      policies.push(dim === DIM_CONCURRENT ? `${name};q=${limit};qu="concurrent-requests"` : `${name};q=${limit};w=${WINDOW_S[dim] as string}${dim === DIM_REQUESTS ? "" : ';qu="tokens"'}`);
      items.push({ at, dim, prefix: `${name};r=`, limit, limitText: String(limit) });
    }
  });
  plan = {
    policy: policies.join(", "),
    items,
    requests: items.filter((i) => i.dim === DIM_REQUESTS),
    tokens: items.filter((i) => i.dim === DIM_TPM || i.dim === DIM_TPD),
  };
  PLANS.set(charges, plan);
  return plan;
}

/**
 * The rate-limit headers for an admitted (or refused) request, from what each
 * charge's counters said (`takes[i]` is `charges[i]`'s), as flat name, value
 * pairs.
 */
export function limitHeaders(charges: readonly Limited["charge"][], takes: readonly Limited[]): string[] {
  const plan = planOf(charges);
  if (plan.items.length === 0) return [];
  let states = "";
  for (const it of plan.items) {
    const taken = (takes[it.at] as Limited).taken;
    const item = it.dim === DIM_CONCURRENT
      ? it.prefix + count(Math.max(0, it.limit - taken.inUse))
      : it.prefix + count(taken.remaining[it.dim - 1] as number) + ";t=" + count(Math.ceil((taken.resetMs[it.dim - 1] as number) / 1000));
    states = states === "" ? item : states + ", " + item;
  }
  const h = ["ratelimit-policy", plan.policy, "ratelimit", states];
  openai(h, plan.requests, takes, REQUESTS);
  openai(h, plan.tokens, takes, TOKENS);
  return h;
}

// The header names as constants: a name built per response would be hashed and looked up again each time it is set.
const REQUESTS = ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"] as const;
const TOKENS = ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"] as const;

/** A count as text: a whole one within 31 bits through the small-integer path (counters hold doubles, whose general formatting is dearer). */
export function count(n: number): string {
  const i = n | 0;
  return i === n ? String(i) : String(n);
}

/** OpenAI's x-ratelimit-{limit,remaining,reset}-<kind>, for the candidate with the least remaining. */
function openai(h: string[], candidates: readonly Item[], takes: readonly Limited[], names: typeof REQUESTS | typeof TOKENS): void {
  let best: Item | null = null;
  let remaining = 0;
  for (const it of candidates) {
    const r = (takes[it.at] as Limited).taken.remaining[it.dim - 1] as number;
    if (best === null || r < remaining) {
      best = it;
      remaining = r;
    }
  }
  if (best === null) return;
  const reset = (takes[best.at] as Limited).taken.resetMs[best.dim - 1] as number;
  h.push(names[0], best.limitText, names[1], count(remaining), names[2], duration(reset));
}

/** The headers of a 429 (or 503) from a limit: the state where it is known, and when to retry. */
export function denialHeaders(charge: Charge, dim: number, retryMs: number, takes: readonly Limited[] | null): Record<string, string> {
  // Refused from the in-process cache: the counters were not asked, so only the refusing policy is described.
  const pairs = takes === null ? blockedHeaders(charge, dim, retryMs) : limitHeaders(takes.map((t) => t.charge), takes);
  const h: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) h[pairs[i] as string] = pairs[i + 1] as string;
  h["retry-after"] = String(Math.ceil(retryMs / 1000));
  h["retry-after-ms"] = String(Math.ceil(retryMs));
  if (retryMs > SDK_MAX_WAIT_MS) h["x-should-retry"] = "false";
  return h;
}

function blockedHeaders(charge: Charge, dim: number, retryMs: number): string[] {
  const p = charge.policy;
  const limit = [0, p.requestsPerMinute, p.tokensPerMinute, p.tokensPerDay, p.concurrent][dim] as number;
  const remaining = [0, 0, 0] as [number, number, number];
  const resetMs = [0, 0, 0] as [number, number, number];
  if (dim !== DIM_CONCURRENT) resetMs[dim - 1] = retryMs;
  const only: Charge = { key: charge.key, policy: { ...p, requestsPerMinute: dim === DIM_REQUESTS ? limit : 0, tokensPerMinute: dim === DIM_TPM ? limit : 0, tokensPerDay: dim === DIM_TPD ? limit : 0, concurrent: dim === DIM_CONCURRENT ? limit : 0 } };
  return limitHeaders([only], [{ charge: only, taken: { refused: dim, retryMs, at: 0, remaining, resetMs, inUse: limit, output: 0 } }]);
}

/** OpenAI's reset format: "1s", "6m0s", "250ms". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  return `${Math.floor(m / 60)}h${m % 60}m${s % 60}s`;
}
