import type { Logger } from "pino";
import type { RequestContext } from "../http/context.ts";

/** Writes the one access line of a data-plane request. Never the token: only the PAT id. */
export function logAccess(log: Logger, ctx: RequestContext, now: number): void {
  const route = ctx.route;
  const pat = ctx.pat;
  log.info(
    {
      req_id: ctx.requestId,
      method: ctx.req.method,
      route: route === null ? null : route.id,
      domain: ctx.domainId === "" ? null : ctx.domainId,
      pat_id: pat === null ? null : pat.record.id,
      user: pat === null ? null : pat.record.userId,
      operation: route === null ? null : route.operation,
      entity: route === null || ctx.entityId === "" ? null : `${route.entityType}:${ctx.entityId}`,
      decision: ctx.outcome === "ok" || ctx.upstreamStartedAt > 0 ? "allow" : "deny",
      reason: ctx.outcome,
      status: ctx.res.statusCode,
      bytes_out: ctx.responseBytes,
      upstream: ctx.upstreamId === "" ? null : ctx.upstreamId,
      upstream_ms: ctx.upstreamStartedAt > 0 && ctx.upstreamHeadersAt > 0 ? round(ctx.upstreamHeadersAt - ctx.upstreamStartedAt) : null,
      ttfb_ms: ctx.upstreamFirstByteAt > 0 ? round(ctx.upstreamFirstByteAt - ctx.upstreamStartedAt) : null,
      stream: ctx.streaming,
      usage: ctx.usage === null ? null : { input_tokens: ctx.usage.inputTokens, output_tokens: ctx.usage.outputTokens },
      total_ms: round(now - ctx.startedAt),
    },
    "access",
  );
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
