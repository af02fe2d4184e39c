import type { IncomingMessage, ServerResponse } from "node:http";
import type { Route } from "../routing/table.ts";
import type { Need } from "../scopes/scope.ts";
import type { VerifiedPat } from "../tokens/verifier.ts";
import type { Usage } from "../upstream/usage.ts";
import type { ErrorCode } from "../errors.ts";
import type { Admission } from "../limits/limiter.ts";

const NONE: readonly Need[] = Object.freeze([]);

/** Why a request ended the way it did: a catalogue code, or "ok" when it was forwarded. */
export type Outcome = string;

/** A response being relayed as a stream, which the gateway can end in-band (an error frame, then the end). */
export interface StreamRelay {
  /** Ends the stream with `code` (a catalogue code) as its last frame, or cuts the connection mid-frame. */
  cut(code: ErrorCode): void;
}

/**
 * The one object a data-plane request carries through the pipeline. Fixed
 * shape (every field set in the constructor) so V8 keeps it monomorphic.
 */
export class RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly startedAt: number;
  domainId: string;
  route: Route | null;
  pat: VerifiedPat | null;
  entityId: string;
  /** Needs beyond the route's own that the body added (fields the upstream also acts on); re-checked with it. */
  also: readonly Need[];
  /** The presented token, kept for the request's life so a running stream can be re-decided after a change. */
  token: string;
  outcome: Outcome;
  /** Set when the gateway cuts a running response: the grant behind it changed or ended, or the drain deadline passed. */
  cutReason: string | null;
  /** When the token's own validity ends (expiry, or a rotated-out secret's grace end), epoch ms; 0 until verified. */
  until: number;
  /** The running stream, once the response is one (set by the forwarder). */
  relay: StreamRelay | null;
  upstreamStartedAt: number;
  upstreamHeadersAt: number;
  upstreamFirstByteAt: number;
  upstreamId: string;
  streaming: boolean;
  /** A Realtime session relayed over WebSocket (src/realtime/): re-checked and cut like a stream, counted apart. */
  realtime: boolean;
  responseBytes: number;
  /** Token usage reported by the upstream, when it reports it. */
  usage: Usage | null;
  /** What the limit step admitted: reservations to settle, the edited body, the RateLimit headers. */
  admission: Admission | null;
  /** The limit policy that refused the request ("" when none did), for the audit stream. */
  limitPolicy: string;

  constructor(req: IncomingMessage, res: ServerResponse, requestId: string, startedAt: number) {
    this.req = req;
    this.res = res;
    this.requestId = requestId;
    this.startedAt = startedAt;
    this.domainId = "";
    this.route = null;
    this.pat = null;
    this.entityId = "";
    this.also = NONE;
    this.token = "";
    this.outcome = "pending";
    this.cutReason = null;
    this.until = 0;
    this.relay = null;
    this.upstreamStartedAt = 0;
    this.upstreamHeadersAt = 0;
    this.upstreamFirstByteAt = 0;
    this.upstreamId = "";
    this.streaming = false;
    this.realtime = false;
    this.responseBytes = 0;
    this.usage = null;
    this.admission = null;
    this.limitPolicy = "";
  }
}
