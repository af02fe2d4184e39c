/**
 * The last step before forwarding: the upstream call an authorized request
 * becomes. The domain's upstream picks a target; the path below
 * `/proxy/<domain>` is forwarded as received; the client's headers pass the
 * header policy, and the request id and the upstream's own credential go last.
 */
import { Denial } from "../errors.ts";
import type { RequestContext } from "../http/context.ts";
import { forwardedPath, type Target } from "../routing/normalize.ts";
import type { Domain } from "../store/types.ts";
import type { HeaderPolicy } from "./headers.ts";
import type { PooledTarget, Upstreams } from "./upstreams.ts";

/** Where and what to send upstream. */
export interface UpstreamCall {
  readonly target: PooledTarget;
  /** Path and query below the target's base path. */
  readonly path: string;
  /** Filtered request headers, undici's flat [name, value, …] form. */
  readonly headers: string[];
}

const NO_UPSTREAM = new Denial("upstream_unavailable");

/** The call for `domain`'s upstream, or 503 when the domain names an upstream the config does not have. */
export function upstreamCall(upstreams: Upstreams, policy: HeaderPolicy, ctx: RequestContext, domain: Domain, target: Target): UpstreamCall | Denial {
  const picked = upstreams.pick(domain.upstream);
  if (picked === null) return NO_UPSTREAM;
  // The request id and the forwarding headers only the gateway sets, then the upstream's credential.
  const extra = policy.trusted(ctx.req, ctx.requestId);
  const credential = picked.upstream.credential;
  if (credential !== null) extra.push(credential.header, credential.value);
  // Everything after `/proxy/<domain>`, as the client sent it (an encoded '/' inside a {name+} parameter decoded: see forwardedPath).
  const path = forwardedPath(target).slice(target.rawSegments[0]!.length + target.rawSegments[1]!.length + 2) + target.query;
  return { target: picked, path, headers: policy.requestHeaders(ctx.req.rawHeaders, extra, credential === null ? null : credential.header) };
}
