import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

// Latency buckets in seconds: a gateway's own overhead is sub-millisecond, an LLM answer takes seconds.
const LATENCY = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576];
const LAG = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/**
 * Every metric patgate exports, defined in this one file. Labels are bounded:
 * route ids, upstream ids, outcome codes and status classes, never tokens,
 * users or raw paths. LLM token counts follow the OpenTelemetry GenAI names.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: "patgate_requests_total",
    help: "Data-plane requests by route id, outcome code and status class.",
    labelNames: ["route", "outcome", "status_class"] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: "patgate_request_duration_seconds",
    help: "Time from request start to the end of the response, by route id and status class.",
    labelNames: ["route", "status_class"] as const,
    buckets: LATENCY,
    registers: [this.registry],
  });
  readonly upstreamDuration = new Histogram({
    name: "patgate_upstream_response_headers_seconds",
    help: "Time from forwarding a request to receiving the upstream's response headers.",
    labelNames: ["upstream"] as const,
    buckets: LATENCY,
    registers: [this.registry],
  });
  readonly upstreamTtfb = new Histogram({
    name: "patgate_upstream_time_to_first_byte_seconds",
    help: "Time from forwarding a request to the first response body byte from the upstream.",
    labelNames: ["upstream"] as const,
    buckets: LATENCY,
    registers: [this.registry],
  });
  readonly tokenCache = new Counter({
    name: "patgate_token_cache_lookups_total",
    help: "PAT lookups by result: hit, miss (loaded from the store) or bypass (change feed down).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
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
  readonly inflightRequests = new Gauge({
    name: "patgate_inflight_requests",
    help: "Requests being served now.",
    registers: [this.registry],
  });
  readonly inflightStreams = new Gauge({
    name: "patgate_inflight_streams",
    help: "Streamed (SSE / NDJSON) responses being relayed now.",
    registers: [this.registry],
  });
  readonly tokenUsage = new Histogram({
    name: "gen_ai_client_token_usage",
    help: "LLM tokens per request as reported by the upstream (OpenTelemetry gen_ai.client.token.usage).",
    labelNames: ["gen_ai_token_type", "route"] as const,
    buckets: TOKENS,
    registers: [this.registry],
  });
  readonly routeReloads = new Counter({
    name: "patgate_route_table_reloads_total",
    help: "Route table reloads by result.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "patgate_" });
  }
}

/** "2xx" for 204 and so on: a bounded label. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}
