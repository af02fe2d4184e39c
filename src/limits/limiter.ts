/**
 * The limit step of the data plane: after the decision, before forwarding.
 * It answers an Admission (with the body to forward, edited or not) or a
 * Denial (429 naming the policy, or 503 for a policy that refuses while its
 * counters are unreachable). Synchronous when a process-local answer decides
 * (a subject known to be blocked, the embedded store's local counters, Redis
 * known to be down); a promise only when Redis must be asked.
 *
 * At the end of the response `settle` (one call per response, from the
 * forward hooks) reconciles each reservation with the real usage and releases
 * the concurrency leases.
 */
import type { Logger } from "pino";
import type { LimitSettings } from "../config/limits.ts";
import { Denial } from "../errors.ts";
import type { RequestContext } from "../http/context.ts";
import type { Route } from "../routing/table.ts";
import { DIM_CONCURRENT, DIM_REQUESTS, DIM_TPD, DIM_TPM, LocalCounters, type Counters, type Take, type Taken } from "./counters.ts";
import { bodyTokens, estimateInput, streams, tokenApi, withMaxTokens, withUsageAsked, type BodyTokens, type TokenApi } from "./body.ts";
import { denialHeaders, limitHeaders } from "./headers.ts";
import { chargeCache, limitsTokens, type Charge } from "./policies.ts";
import type { PatRecord } from "../store/types.ts";
import type { RequestFactsCache } from "../util/request-facts-cache.ts";

/** How long Redis, once it failed, is left alone before it is asked again. */
const DOWN_RETRY_MS = 1000;
/** A subject refused for concurrency is refused locally this long (other replicas' releases are not seen sooner). */
const CONCURRENCY_BLOCK_MS = 250;

/** Counts of limit decisions, by policy, dimension and decision (bounded: policies come from the config). */
export interface DecisionSink {
  decided(policy: string, dimension: string, decision: string): void;
}

/** One charge as it was taken: where (shared or local counters) and what it reserved. */
export interface TakenCharge {
  readonly charge: Charge;
  /** What was asked: the subject's limits, the reservation, the lease id. */
  readonly ask: Take;
  readonly counters: Counters;
  readonly taken: Taken;
}

/** What an admitted request carries to its end. Fixed shape. */
export class Admission {
  readonly takes: TakenCharge[];
  /** Estimated input tokens and reserved output tokens (the charge when no usage is reported). */
  readonly input: number;
  output: number;
  /** The body to forward when the gateway edited it; null: as received. */
  body: Buffer | null;
  /** The gateway asked for the usage chunk: drop it from what the client receives. */
  dropUsage: boolean;
  /** RateLimit and x-ratelimit-* headers for the response (name, value pairs); null when no policy applied. */
  headers: string[] | null;

  constructor(takes: TakenCharge[], input: number, output: number) {
    this.takes = takes;
    this.input = input;
    this.output = output;
    this.body = null;
    this.dropUsage = false;
    this.headers = null;
  }
}

/** What admit read off the request, for the Admission once the counters answered. */
interface Asked {
  readonly charges: readonly Charge[];
  readonly input: number;
  readonly output: number;
  readonly buf: Buffer | null;
  readonly api: TokenApi;
  readonly bt: BodyTokens | null;
  readonly clamp: boolean;
  readonly headers: string[];
}

const NO_TAKES: TakenCharge[] = [];

interface Blocked {
  until: number;
  /** Tokens left when refused (a smaller request may still fit); 0 for requests and concurrency. */
  remaining: number;
}

const DIM_NAMES = ["", "requests_per_minute", "tokens_per_minute", "tokens_per_day", "concurrent"];
const UNAVAILABLE = new Denial("limits_unavailable");

/** Builds the step once: the policies, the shared counters (null: embedded store) and local ones. */
export class Limiter {
  readonly settings: LimitSettings;
  readonly #usageOn: boolean;
  readonly #shared: Counters | null;
  readonly local: LocalCounters;
  readonly #log: Logger;
  readonly #sink: DecisionSink | null;
  readonly #blocked = new Map<string, Blocked>();
  readonly #charges: RequestFactsCache<PatRecord, Charge[]>;
  #downUntil = 0;
  #leaseSeq = 0;
  readonly #leasePrefix = `${process.pid.toString(36)}.${Math.random().toString(36).slice(2, 8)}.`;

  constructor(settings: LimitSettings, opts: { usageOn: boolean; shared: Counters | null; log: Logger; sink?: DecisionSink }) {
    this.settings = settings;
    this.#usageOn = opts.usageOn;
    this.#shared = opts.shared;
    this.local = new LocalCounters();
    this.#log = opts.log;
    this.#sink = opts.sink ?? null;
    this.#charges = chargeCache(settings);
  }

  /** Whether the step has anything to do at all (no policy, no metering, no PAT limits: the pipeline skips it). */
  get idle(): boolean {
    return this.settings.policies.length === 0 && !this.#usageOn;
  }

  /**
   * Admits the request or refuses it. `body` is the read body (a Buffer) or
   * null / a stream; `headers` are the forwarded request headers, whose
   * Content-Length is set when the body is edited.
   */
  admit(ctx: RequestContext, route: Route, body: unknown, headers: string[]): Admission | Denial | Promise<Admission | Denial> {
    const pat = ctx.pat;
    if (pat === null) return new Admission(NO_TAKES, 0, 0);
    if (this.idle && pat.record.limits === undefined) return new Admission(NO_TAKES, 0, 0);
    const charges = this.#charges.get(pat.record, ctx.domainId, route.entityType === "models" ? ctx.entityId : "", route.operation);
    const api = tokenApi(route);
    const buf = Buffer.isBuffer(body) ? body : null;
    let clamp = false;
    for (const c of charges) if (c.policy.clampMaxTokens && c.policy.mode === "enforce") clamp = true;
    let input = 0;
    let output = 0;
    let bt: BodyTokens | null = null;
    if (buf !== null) {
      input = estimateInput(buf.length);
      if (api.generates) {
        bt = bodyTokens(api, buf, clamp);
        if (bt.maxTokens === -1 && clamp) return new Denial("bad_request", { message: "The output token limit (max_tokens or its kin) must be given once, as a whole number.", param: api.maxFields[0] ?? "options" });
        output = bt.maxTokens !== null && bt.maxTokens >= 0 ? bt.maxTokens : this.settings.defaultMaxTokens;
      }
    }
    const now = Date.now();
    const blocked = this.#blockedDenial(charges, input + output, now);
    if (blocked !== null) return named(ctx, blocked);
    const ask: Asked = { charges, input, output, buf, api, bt, clamp, headers };

    if (charges.length === 0) return this.#admitted(ctx, ask, NO_TAKES);
    const shared = this.#shared;
    if (shared === null || now < this.#downUntil) return this.#admitted(ctx, ask, this.#takeAll(charges, input, output, shared === null ? 1 : this.settings.replicas, shared !== null));
    const asks = charges.map((c) => this.#take(c, input, output, 1));
    return Promise.all(asks.map((t) => Promise.resolve(shared.take(t)))).then(
      (results) => this.#admitted(ctx, ask, this.#decide(this.#zip(charges, asks, results, shared), false)),
      (err: unknown) => {
        // Takes that counted before the failure stay counted until their window moves on (over-counting, never under).
        if (Date.now() >= this.#downUntil) this.#log.warn({ problem: (err as Error).message }, "limits: the shared counters are unreachable; each policy does as its on_store_down says");
        this.#downUntil = Date.now() + DOWN_RETRY_MS;
        return this.#admitted(ctx, ask, this.#takeAll(charges, input, output, this.settings.replicas, true));
      },
    );
  }

  /** The Admission for takes that admitted the request: the body's edits (the clamp, the usage chunk asked for) and the response's limit headers. */
  #admitted(ctx: RequestContext, ask: Asked, takes: TakenCharge[] | Denial): Admission | Denial {
    if (takes instanceof Denial) return named(ctx, takes);
    const { buf, api, bt, output } = ask;
    const a = new Admission(takes, ask.input, output);
    if (buf !== null) {
      let next = buf;
      if (ask.clamp && bt !== null) {
        let grant = output;
        for (const t of takes) if (t.charge.policy.clampMaxTokens && t.charge.policy.mode === "enforce") grant = Math.min(grant, t.taken.output);
        if (grant < output || bt.maxTokens === null) {
          const edited = withMaxTokens(api, next, bt, grant);
          if (edited === null) {
            this.#rollback(takes);
            return new Denial("bad_request", { message: "The output token limit could not be set on this body; send max_tokens once as a whole number." });
          }
          next = edited;
          a.output = grant;
        }
      }
      if (api.askUsage && streams(next)) {
        const asked = withUsageAsked(next);
        if (asked !== null) {
          next = asked;
          a.dropUsage = true;
        }
      }
      if (next !== buf) {
        a.body = next;
        setContentLength(ask.headers, next.length);
      }
    }
    if (takes.length > 0) a.headers = limitHeaders(ask.charges, takes);
    return a;
  }

  /** Reconciles the reservations of a finished request with its usage (estimated: the reservation stands) and frees its leases. */
  settle(ctx: RequestContext, a: Admission): void {
    const u = ctx.usage;
    const used = u === null ? a.input + a.output : u.inputTokens + u.outputTokens;
    for (const t of a.takes) {
      const delta = t.ask.input + t.ask.output > 0 ? used - (t.ask.input + t.taken.output) : 0;
      if (delta === 0 && t.ask.lease === "") continue;
      if (t.ask.lease !== "" && this.#blocked.size > 0) this.#blocked.delete(`${t.charge.key}#${DIM_CONCURRENT}`);
      this.#settleOne(t, 0, delta);
    }
  }

  #settleOne(t: TakenCharge, requests: number, tokens: number): void {
    const p = t.charge.policy;
    const s = { key: t.charge.key, at: t.taken.at, requests, tokens, tokensPerMinute: p.tokensPerMinute > 0, tokensPerDay: p.tokensPerDay > 0, lease: t.ask.lease };
    const r = t.counters.settle(s);
    // A settle Redis cannot take is lost: the reservation stands until its window moves on, a lease until it expires.
    if (r instanceof Promise) r.catch(() => undefined);
  }

  /** Gives back what admitted takes counted, for a request another policy refused. */
  #rollback(takes: readonly TakenCharge[]): void {
    for (const t of takes) if (t.taken.refused === 0 || t.ask.force) this.#settleOne(t, -1, -(t.ask.input + t.taken.output));
  }

  #take(c: Charge, input: number, output: number, divide: number): Take {
    const p = c.policy;
    const tokens = limitsTokens(p);
    return {
      key: c.key,
      requestsPerMinute: share(p.requestsPerMinute, divide),
      tokensPerMinute: share(p.tokensPerMinute, divide),
      tokensPerDay: share(p.tokensPerDay, divide),
      concurrent: share(p.concurrent, divide),
      input: tokens ? input : 0,
      output: tokens ? output : 0,
      clamp: p.clampMaxTokens && p.mode === "enforce",
      force: p.mode === "shadow",
      lease: p.concurrent > 0 ? this.#leasePrefix + (++this.#leaseSeq).toString(36) : "",
    };
  }

  /** Every charge in this process (embedded store, or Redis down: limit ÷ replicas; closed policies refuse). */
  #takeAll(charges: readonly Charge[], input: number, output: number, divide: number, fallback: boolean): TakenCharge[] | Denial {
    const counters = this.local;
    const takes: TakenCharge[] = [];
    for (const charge of charges) {
      if (fallback && charge.policy.onStoreDown === "closed") {
        this.#sink?.decided(charge.policy.name, "", "store_down_closed");
        if (charge.policy.mode === "enforce") {
          this.#rollback(takes);
          return UNAVAILABLE;
        }
      }
      const ask = this.#take(charge, input, output, divide);
      takes.push({ charge, ask, counters, taken: counters.take(ask) });
    }
    return this.#decide(takes, fallback);
  }

  #zip(charges: readonly Charge[], asks: readonly Take[], results: readonly Taken[], counters: Counters): TakenCharge[] {
    const out: TakenCharge[] = [];
    for (let i = 0; i < results.length; i++) out.push({ charge: charges[i] as Charge, ask: asks[i] as Take, counters, taken: results[i] as Taken });
    return out;
  }

  /** The first enforced refusal refuses the request (the others' counts are given back); shadow refusals are only counted and logged. */
  #decide(takes: TakenCharge[], fallback: boolean): TakenCharge[] | Denial {
    let refusal: TakenCharge | null = null;
    for (const t of takes) {
      const p = t.charge.policy;
      const dim = DIM_NAMES[t.taken.refused] ?? "";
      if (t.taken.refused === 0) {
        this.#sink?.decided(p.name, "", fallback ? "admit_local" : "admit");
        continue;
      }
      if (p.mode === "shadow") {
        this.#sink?.decided(p.name, dim, "shadow_refuse");
        this.#log.info({ policy: p.name, subject: t.charge.key, dimension: dim }, "limits: shadow policy would refuse");
        continue;
      }
      this.#sink?.decided(p.name, dim, "refuse");
      refusal ??= t;
    }
    if (refusal === null) return takes;
    this.#rollback(takes.filter((t) => t !== refusal));
    const { taken, charge } = refusal;
    const retryMs = Math.max(1, taken.retryMs);
    const dim = taken.refused;
    this.#blocked.set(`${charge.key}#${dim}`, {
      until: Date.now() + (dim === DIM_CONCURRENT ? Math.min(retryMs, CONCURRENCY_BLOCK_MS) : retryMs),
      remaining: dim === DIM_TPM || dim === DIM_TPD ? taken.remaining[dim - 1] ?? 0 : 0,
    });
    return limitDenial(charge, dim, retryMs, takes);
  }

  /** A refusal decided in process: a subject refused a moment ago is refused again without asking the counters. */
  #blockedDenial(charges: readonly Charge[], cost: number, now: number): Denial | null {
    if (this.#blocked.size === 0) return null;
    for (const c of charges) {
      if (c.policy.mode !== "enforce") continue;
      for (let dim = DIM_REQUESTS; dim <= DIM_CONCURRENT; dim++) {
        const k = `${c.key}#${dim}`;
        const b = this.#blocked.get(k);
        if (b === undefined) continue;
        if (b.until <= now) {
          this.#blocked.delete(k);
          continue;
        }
        if ((dim === DIM_TPM || dim === DIM_TPD) && cost <= b.remaining) continue;
        this.#sink?.decided(c.policy.name, DIM_NAMES[dim] ?? "", "refuse_cached");
        return limitDenial(c, dim, b.until - now, null);
      }
    }
    return null;
  }

  /** What each policy's windows hold now for a subject (GET /me/limits). */
  async peek(c: Charge): Promise<Taken> {
    const shared = this.#shared;
    const t = { ...this.#take(c, 0, 0, 1), lease: "" };
    if (shared === null) return this.local.peek(t);
    return shared.peek(t);
  }

  /** Subjects blocked in process (for tests). */
  get blockedSize(): number {
    return this.#blocked.size;
  }

  async close(): Promise<void> {
    await this.local.close();
    await this.#shared?.close();
  }
}

/** Records on the request which policy refused it (the audit stream names it). */
function named(ctx: RequestContext, d: Denial): Denial {
  if (d.error === "rate_limit_exceeded" || d.error === "quota_exceeded") ctx.limitPolicy = d.param ?? "";
  return d;
}

function share(limit: number, divide: number): number {
  return limit === 0 ? 0 : Math.max(1, Math.floor(limit / divide));
}

/** The 429 for a refusal by `charge` in dimension `dim`. */
function limitDenial(charge: Charge, dim: number, retryMs: number, takes: readonly TakenCharge[] | null): Denial {
  const p = charge.policy;
  const what = dim === DIM_REQUESTS ? `${p.requestsPerMinute} requests per minute`
    : dim === DIM_TPM ? `${p.tokensPerMinute} tokens per minute`
    : dim === DIM_TPD ? `${p.tokensPerDay} tokens per day`
    : `${p.concurrent} concurrent requests`;
  const secs = Math.ceil(retryMs / 1000);
  const message = `Limit "${p.name}" reached: ${what} per ${p.subject.replace("_", "+")}. Try again in ${secs}s.`;
  return new Denial(dim === DIM_TPD ? "quota_exceeded" : "rate_limit_exceeded", { message, param: p.name, headers: denialHeaders(charge, dim, retryMs, takes) });
}

function setContentLength(headers: string[], length: number): void {
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() === "content-length") {
      headers[i + 1] = String(length);
      return;
    }
  }
  headers.push("content-length", String(length));
}
