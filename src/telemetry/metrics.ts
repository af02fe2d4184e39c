import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { RequestContext } from "../http/context.ts";
import { HotSeries } from "./series.ts";

// Latency buckets in seconds: a gateway's own overhead is sub-millisecond, an LLM answer takes seconds.
const LATENCY = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576];
const LAG = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/** Numbers kept by other parts (as plain counters, off the prom-client path) and read at scrape time. */
export interface MetricSources {
  cacheStats(): { readonly hits: number; readonly misses: number; readonly bypass: number };
  cacheEntries(): number;
  inflightRequests(): number;
  /** Bytes of request bodies the gateway holds in memory now (http/bodies.ts). */
  bodyBytesHeld(): number;
  /** Realtime sessions being relayed now, and the bytes they hold (src/realtime/). */
  realtimeSessions?(): number;
  realtimeBytesHeld?(): number;
}

/**
 * Every metric patgate exports, defined in this one file. Labels are bounded:
 * route ids, upstream ids, outcome codes and status classes, never tokens,
 * users or raw paths. LLM token counts follow the OpenTelemetry GenAI names.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly requests = new HotSeries(this.registry, {
    name: "patgate_requests_total",
    help: "Data-plane requests by route id, outcome code and status class.",
    labelNames: ["route", "outcome", "status_class"],
  });
  readonly requestDuration = new HotSeries(this.registry, {
    name: "patgate_request_duration_seconds",
    help: "Time from request start to the end of the response, by route id and status class.",
    labelNames: ["route", "status_class"],
    buckets: LATENCY,
  });
  readonly upstreamDuration = new HotSeries(this.registry, {
    name: "patgate_upstream_response_headers_seconds",
    help: "Time from forwarding a request to receiving the upstream's response headers.",
    labelNames: ["upstream"],
    buckets: LATENCY,
  });
  readonly upstreamTtfb = new HotSeries(this.registry, {
    name: "patgate_upstream_time_to_first_byte_seconds",
    help: "Time from forwarding a request to the first response body byte from the upstream.",
    labelNames: ["upstream"],
    buckets: LATENCY,
  });
  readonly tokenCache: Counter<"result">;
  readonly tokenCacheEntries: Gauge;
  readonly storeErrors = new Counter({
    name: "patgate_store_errors_total",
    help: "Requests that could not be verified because the store was unreachable.",
    registers: [this.registry],
  });
  readonly propagationLag = new Histogram({
    name: "patgate_change_propagation_seconds",
    help: "Time from a change being committed to the store until this process applied it to its caches.",
    buckets: LAG,
    registers: [this.registry],
  });
  readonly inflightRequests: Gauge;
  readonly requestBodyBytesHeld: Gauge;
  readonly realtimeSessions: Gauge;
  readonly realtimeBytesHeld: Gauge;
  readonly inflightStreams = new Gauge({
    name: "patgate_inflight_streams",
    help: "Streamed (SSE / NDJSON) responses being relayed now.",
    registers: [this.registry],
  });
  readonly tokenUsage = new HotSeries(this.registry, {
    name: "gen_ai_client_token_usage",
    help: "LLM tokens per request as reported by the upstream (OpenTelemetry gen_ai.client.token.usage).",
    labelNames: ["gen_ai_token_type", "route"],
    buckets: TOKENS,
  });
  readonly limitDecisions = new HotSeries(this.registry, {
    name: "patgate_limit_decisions_total",
    help: "Limit policy decisions by policy name (from the config), refusing dimension and decision (admit, admit_local, refuse, refuse_cached, shadow_refuse, store_down_closed).",
    labelNames: ["policy", "dimension", "decision"],
  });
  readonly usageFlushErrors = new Counter({
    name: "patgate_usage_flush_errors_total",
    help: "Usage bucket writes that failed (the rows are kept for the next flush).",
    registers: [this.registry],
  });
  readonly routeReloads = new Counter({
    name: "patgate_route_table_reloads_total",
    help: "Route table reloads by result.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  // TLS: `certificate` is "server" (the HTTPS listener's) or "upstream:<id>" (a client certificate), bounded by the config.
  readonly tlsCertificateExpiry = new Gauge({
    name: "patgate_tls_certificate_expiry_timestamp_seconds",
    help: "When the certificate in use expires (Unix time), by certificate: server, or upstream:<id> for a client certificate.",
    labelNames: ["certificate"] as const,
    registers: [this.registry],
  });
  readonly tlsReloads = new Counter({
    name: "patgate_tls_certificate_reloads_total",
    help: "Certificate reloads by certificate and result: ok (the new pair is in use) or invalid (the last good pair kept).",
    labelNames: ["certificate", "result"] as const,
    registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    collectDefaultMetrics({ register: this.registry, prefix: "patgate_" });
    this.tokenCache = new Counter({
      name: "patgate_token_cache_lookups_total",
      help: "PAT lookups by result: hit, miss (loaded from the store) or bypass (change feed down: not trusted).",
      labelNames: ["result"] as const,
      registers: [this.registry],
      collect() {
        const s = sources.cacheStats();
        this.reset();
        this.labels("hit").inc(s.hits);
        this.labels("miss").inc(s.misses);
        this.labels("bypass").inc(s.bypass);
      },
    });
    this.tokenCacheEntries = new Gauge({
      name: "patgate_token_cache_entries",
      help: "PATs (and unknown ids) cached in this process.",
      registers: [this.registry],
      collect() {
        this.set(sources.cacheEntries());
      },
    });
    this.inflightRequests = new Gauge({
      name: "patgate_inflight_requests",
      help: "Requests being served now.",
      registers: [this.registry],
      collect() {
        this.set(sources.inflightRequests());
      },
    });
    this.realtimeSessions = new Gauge({
      name: "patgate_realtime_sessions",
      help: "Realtime sessions (WebSocket upgrades) being relayed now.",
      registers: [this.registry],
      collect() {
        this.set(sources.realtimeSessions?.() ?? 0);
      },
    });
    this.realtimeBytesHeld = new Gauge({
      name: "patgate_realtime_buffered_bytes",
      help: "Bytes the Realtime sessions hold now (frames queued for a connecting upstream, or not yet taken by a slow side's socket), bounded by realtime.max_buffered per side.",
      registers: [this.registry],
      collect() {
        this.set(sources.realtimeBytesHeld?.() ?? 0);
      },
    });
    this.requestBodyBytesHeld = new Gauge({
      name: "patgate_request_body_bytes_held",
      help: "Bytes of request bodies the gateway holds in memory (buffered to read the entity), against server.body_memory.",
      registers: [this.registry],
      collect() {
        this.set(sources.bodyBytesHeld());
      },
    });
  }
}

const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/** "2xx" for 204 and so on: a bounded label. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? (STATUS_CLASSES[Math.floor(status / 100) - 1] as string) : "other";
}

/** Records one finished data-plane request. Label values come from bounded sets only. */
export function observeRequest(m: Metrics, ctx: RequestContext, now: number): void {
  const route = ctx.route === null ? "none" : ctx.route.id;
  const cls = statusClass(ctx.res.statusCode);
  m.requests.observe(1, route, ctx.outcome, cls);
  m.requestDuration.observe((now - ctx.startedAt) / 1000, route, cls);
  if (ctx.upstreamHeadersAt > 0) m.upstreamDuration.observe((ctx.upstreamHeadersAt - ctx.upstreamStartedAt) / 1000, ctx.upstreamId);
  if (ctx.upstreamFirstByteAt > 0) m.upstreamTtfb.observe((ctx.upstreamFirstByteAt - ctx.upstreamStartedAt) / 1000, ctx.upstreamId);
  if (ctx.usage !== null) {
    m.tokenUsage.observe(ctx.usage.inputTokens, "input", route);
    m.tokenUsage.observe(ctx.usage.outputTokens, "output", route);
  }
}
