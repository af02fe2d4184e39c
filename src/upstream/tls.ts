/**
 * TLS towards one upstream: whom to trust (the default roots plus the
 * upstream's ca_file, never instead of them), which client certificate to
 * present (reloaded like the server's), which name to send as SNI and check
 * the certificate against, and a failure that says it was TLS.
 */
import { createSecureContext, getCACertificates, type ConnectionOptions, type SecureContext, type TLSSocket } from "node:tls";
import { buildConnector } from "undici";
import type { Logger } from "pino";
import { ConfigError, type UpstreamSettings } from "../config/config.ts";
import { readCaBundle, readKeyPair, type KeyPair } from "../config/tls.ts";
import { CertificateReloader } from "../http/certificates.ts";
import type { Metrics } from "../telemetry/metrics.ts";

/** Code of the error raised when an upstream closes a TLS connection (with a client certificate) before answering. */
const CLOSED_BEFORE_ANSWER = "PATGATE_UPSTREAM_TLS_CLOSED";

// OpenSSL's certificate verification results, as Node names them in `err.code`.
const VERIFY_ERRORS = new Set([
  "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_CRL", "UNABLE_TO_DECRYPT_CERT_SIGNATURE", "UNABLE_TO_DECRYPT_CRL_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY", "CERT_SIGNATURE_FAILURE", "CRL_SIGNATURE_FAILURE", "CERT_NOT_YET_VALID", "CERT_HAS_EXPIRED",
  "CRL_NOT_YET_VALID", "CRL_HAS_EXPIRED", "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD", "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "CERT_CHAIN_TOO_LONG", "CERT_REVOKED",
  "INVALID_CA", "PATH_LENGTH_EXCEEDED", "INVALID_PURPOSE", "CERT_UNTRUSTED", "CERT_REJECTED", "HOSTNAME_MISMATCH",
]);

/**
 * Why an upstream request failed at the TLS layer, in a line for the log, or
 * null when the failure was something else (refused, reset, timed out).
 */
export function tlsFailure(err: Error): string | null {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string") return null;
  if (code === CLOSED_BEFORE_ANSWER) return err.message;
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_") || VERIFY_ERRORS.has(code)) return `${code}: ${opensslReason(err.message)}`;
  // Node's words for a peer that hung up mid-handshake (e.g. a TLS 1.2 server refusing the client certificate).
  if (code === "ECONNRESET" && err.message.includes("before secure TLS connection")) return "the upstream closed the connection during the TLS handshake";
  return null;
}

/** "…:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:…:SSL alert number 116" → the readable part. */
function opensslReason(message: string): string {
  const m = /SSL routines:[^:]*:([^:]+):.*?(SSL alert number \d+)?\s*$/s.exec(message);
  if (m === null) return message.trim();
  return m[2] === undefined ? (m[1] ?? "").trim() : `${(m[1] ?? "").trim()} (${m[2]})`;
}

/** One upstream's TLS: a connector for its pools that always uses the current trust and client certificate. */
export class UpstreamTls {
  readonly #settings: UpstreamSettings;
  readonly #log: Logger;
  readonly #ca: string[] | null;
  /** The client certificate's reloader; null without mTLS. */
  readonly reloader: CertificateReloader | null;
  #connector: buildConnector.connector;
  #secureContext: SecureContext | undefined;

  constructor(settings: UpstreamSettings, deps: { readonly log: Logger; readonly metrics: Metrics }) {
    this.#settings = settings;
    this.#log = deps.log;
    const tls = settings.tls;
    let ca: string[] | null = null;
    if (tls.caFile !== null) {
      const bundle = readCaBundle(tls.caFile);
      if (typeof bundle === "string") throw new ConfigError(`upstreams.${settings.id}.tls.ca_file: ${bundle}`);
      // Extends the trust Node already has (its bundled roots, NODE_EXTRA_CA_CERTS, the system store with --use-system-ca).
      ca = [...getCACertificates("default"), bundle.toString("latin1")];
    }
    this.#ca = ca;
    let pair: KeyPair | null = null;
    if (tls.clientCert !== null) {
      const r = readKeyPair({ ...tls.clientCert, caFile: null });
      if (!r.ok) throw new ConfigError(`upstreams.${settings.id}.tls: ${r.error}`);
      pair = r.pair;
    }
    this.#connector = this.#build(pair);
    this.reloader =
      pair === null || tls.clientCert === null
        ? null
        : new CertificateReloader({
            name: `upstream:${settings.id}`,
            files: { ...tls.clientCert, caFile: null },
            initial: pair,
            // New connections present the new certificate; pooled ones keep theirs until they close.
            apply: (p) => (this.#connector = this.#build(p)),
            log: deps.log,
            metrics: deps.metrics,
          });
  }

  /** The pools' `connect`: the current connector, with TLS failures made recognisable and logged. */
  readonly connect: buildConnector.connector = (opts, callback) => {
    this.#connector(opts, (err, socket) => {
      if (err !== null) {
        this.#logFailure(opts, err);
        callback(err, null);
        return;
      }
      if ((socket as Partial<TLSSocket>).encrypted === true) this.#watch(opts, socket as TLSSocket);
      callback(null, socket);
    });
  };

  /** TLS options for a socket of this upstream's own (a WebSocket session): the same trust, certificate, SNI and verification as its pools. */
  socketOptions(): ConnectionOptions {
    const s = this.#settings;
    return {
      rejectUnauthorized: s.tlsVerify,
      ...(this.#secureContext === undefined ? {} : { secureContext: this.#secureContext }),
      ...(s.tls.servername === null ? {} : { servername: s.tls.servername }),
    };
  }

  #build(pair: KeyPair | null): buildConnector.connector {
    const s = this.#settings;
    // One context per certificate, not per connection: a context with a CA list of its own is costly to make.
    let secureContext: SecureContext | undefined;
    if (this.#ca !== null || pair !== null) {
      secureContext = createSecureContext({
        ...(this.#ca === null ? {} : { ca: this.#ca }),
        ...(pair === null ? {} : { cert: pair.cert, key: pair.key }),
      });
    }
    this.#secureContext = secureContext;
    return buildConnector({
      timeout: s.connectTimeoutMs,
      allowH2: false,
      // Verification stays on unless the operator turned it off explicitly (validated at load, logged at start).
      rejectUnauthorized: s.tlsVerify,
      ...(secureContext === undefined ? {} : { secureContext }),
      ...(s.tls.servername === null ? {} : { servername: s.tls.servername }),
    });
  }

  /**
   * Runs before the pool's own listeners. A TLS alert after the handshake (a
   * TLS 1.3 server refusing the client certificate) ends the socket at once,
   * so the request fails with the alert rather than a bare "other side
   * closed"; a connection that a server closes without a byte of answer,
   * when the gateway presented a client certificate, is reported as the
   * refusal it most likely is.
   */
  #watch(opts: buildConnector.Options, socket: TLSSocket): void {
    socket.on("error", (err: Error) => {
      // The one raised below is logged where it is raised.
      if ((err as { code?: unknown }).code === CLOSED_BEFORE_ANSWER || tlsFailure(err) === null) return;
      this.#logFailure(opts, err);
      socket.destroy();
    });
    if (this.#settings.tls.clientCert === null) return;
    socket.once("end", () => {
      if (socket.bytesRead > 0 || socket.destroyed) return;
      const err = Object.assign(new Error("the upstream closed the TLS connection before answering: it most likely refused the gateway's client certificate"), { code: CLOSED_BEFORE_ANSWER });
      this.#logFailure(opts, err);
      socket.destroy(err);
    });
  }

  #logFailure(opts: buildConnector.Options, err: Error): void {
    const reason = tlsFailure(err);
    if (reason === null) return;
    this.#log.warn({ upstream: this.#settings.id, target: `${opts.protocol}//${opts.hostname}:${opts.port}`, tls_error: reason }, "upstream TLS failed");
  }
}
