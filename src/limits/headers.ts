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

/** Per policy, compiled once: each dimension's item name and its RateLimit-Policy item ("" where not limited). */
interface PolicyItems {
  readonly names: readonly string[];
  readonly policies: readonly string[];
}
const ITEMS = new WeakMap<Charge["policy"], PolicyItems>();

function itemsOf(p: Charge["policy"]): PolicyItems {
  let it = ITEMS.get(p);
  if (it === undefined) {
    const limits = [0, p.requestsPerMinute, p.tokensPerMinute, p.tokensPerDay, p.concurrent];
    const names = SUFFIX.map((suffix) => `"${p.name}-${suffix}"`);
    const policies = limits.map((limit, dim) =>
      limit === 0 || dim === 0 ? "" : dim === DIM_CONCURRENT ? `${names[dim]};q=${limit};qu="concurrent-requests"` : `${names[dim]};q=${limit};w=${WINDOW_S[dim]}${dim === DIM_REQUESTS ? "" : ';qu="tokens"'}`);
    it = { names, policies };
    ITEMS.set(p, it);
  }
  return it;
}

/** The rate-limit headers for an admitted (or refused) request, from what each charge's counters said. */
export function limitHeaders(takes: readonly Limited[]): Record<string, string> {
  let policies = "";
  let states = "";
  let req: { limit: number; remaining: number; reset: number } | null = null;
  let tok: { limit: number; remaining: number; reset: number } | null = null;
  for (const { charge, taken } of takes) {
    const p = charge.policy;
    const items = itemsOf(p);
    for (let dim = DIM_REQUESTS; dim <= DIM_TPD; dim++) {
      const limit = dim === DIM_REQUESTS ? p.requestsPerMinute : dim === DIM_TPM ? p.tokensPerMinute : p.tokensPerDay;
      if (limit === 0) continue;
      const remaining = taken.remaining[dim - 1] as number;
      const reset = taken.resetMs[dim - 1] as number;
      policies = policies === "" ? (items.policies[dim] as string) : `${policies}, ${items.policies[dim] as string}`;
      states = `${states === "" ? "" : `${states}, `}${items.names[dim] as string};r=${remaining};t=${Math.ceil(reset / 1000)}`;
      if (dim === DIM_REQUESTS) {
        if (req === null || remaining < req.remaining) req = { limit, remaining, reset };
      } else if (tok === null || remaining < tok.remaining) tok = { limit, remaining, reset };
    }
    if (p.concurrent > 0) {
      policies = policies === "" ? (items.policies[DIM_CONCURRENT] as string) : `${policies}, ${items.policies[DIM_CONCURRENT] as string}`;
      states = `${states === "" ? "" : `${states}, `}${items.names[DIM_CONCURRENT] as string};r=${Math.max(0, p.concurrent - taken.inUse)}`;
    }
  }
  const h: Record<string, string> = {};
  if (policies !== "") {
    h["ratelimit-policy"] = policies;
    h["ratelimit"] = states;
  }
  if (req !== null) {
    h["x-ratelimit-limit-requests"] = String(req.limit);
    h["x-ratelimit-remaining-requests"] = String(req.remaining);
    h["x-ratelimit-reset-requests"] = duration(req.reset);
  }
  if (tok !== null) {
    h["x-ratelimit-limit-tokens"] = String(tok.limit);
    h["x-ratelimit-remaining-tokens"] = String(tok.remaining);
    h["x-ratelimit-reset-tokens"] = duration(tok.reset);
  }
  return h;
}

/** The headers of a 429 (or 503) from a limit: the state where it is known, and when to retry. */
export function denialHeaders(charge: Charge, dim: number, retryMs: number, takes: readonly Limited[] | null): Record<string, string> {
  // Refused from the in-process cache: the counters were not asked, so only the refusing policy is described.
  const h = takes === null ? blockedHeaders(charge, dim, retryMs) : limitHeaders(takes);
  h["retry-after"] = String(Math.ceil(retryMs / 1000));
  h["retry-after-ms"] = String(Math.ceil(retryMs));
  if (retryMs > SDK_MAX_WAIT_MS) h["x-should-retry"] = "false";
  return h;
}

function blockedHeaders(charge: Charge, dim: number, retryMs: number): Record<string, string> {
  const p = charge.policy;
  const limit = [0, p.requestsPerMinute, p.tokensPerMinute, p.tokensPerDay, p.concurrent][dim] as number;
  const remaining = [0, 0, 0] as [number, number, number];
  const resetMs = [0, 0, 0] as [number, number, number];
  if (dim !== DIM_CONCURRENT) resetMs[dim - 1] = retryMs;
  const only: Charge = { key: charge.key, policy: { ...p, requestsPerMinute: dim === DIM_REQUESTS ? limit : 0, tokensPerMinute: dim === DIM_TPM ? limit : 0, tokensPerDay: dim === DIM_TPD ? limit : 0, concurrent: dim === DIM_CONCURRENT ? limit : 0 } };
  return limitHeaders([{ charge: only, taken: { refused: dim, retryMs, at: 0, remaining, resetMs, inUse: limit, output: 0 } }]);
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
