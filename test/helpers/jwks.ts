/**
 * A local OIDC issuer for tests: serves a JWKS over a real socket and signs
 * JWTs with the matching private key (or, to forge, with another one).
 */
import http from "node:http";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { noteSecret } from "./log-sink.ts";

export interface SignOptions {
  /** Seconds from now; negative for an already expired token. Default 300. */
  expiresIn?: number;
  issuer?: string;
  audience?: string;
  /** The `kid` in the header; default the published key's. */
  kid?: string;
  /** Sign with a key the issuer does not publish (a forgery), keeping the header's kid. */
  forge?: boolean;
  /** Leave out `exp` entirely. */
  noExp?: boolean;
}

export interface TestIdp {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksUrl: string;
  readonly kid: string;
  /** How many times the JWKS was fetched. */
  readonly fetches: number;
  /** When true the JWKS endpoint answers 500 (an IdP outage). */
  down: boolean;
  /** A signed JWT for `sub` (RS256). */
  token(sub: string, opts?: SignOptions, extra?: JWTPayload): Promise<string>;
  /** An unsecured JWT (`alg: none`): header and payload, empty signature. */
  unsigned(sub: string): string;
  close(): Promise<void>;
}

/** Starts the issuer on a free loopback port. */
export async function startIdp(): Promise<TestIdp> {
  const kid = "test-key-1";
  const real = await generateKeyPair("RS256", { extractable: true });
  const forged = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(real.publicKey)), kid, alg: "RS256", use: "sig" };
  let fetches = 0;
  const state = { down: false };

  const server = http.createServer((req, res) => {
    if (req.url !== "/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    fetches++;
    if (state.down) {
      res.writeHead(500).end("down");
      return;
    }
    const body = JSON.stringify({ keys: [jwk] });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}/`;
  const audience = "patgate-test";

  const sign = async (key: CryptoKey, sub: string, o: SignOptions, extra: JWTPayload): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    let jwt = new SignJWT({ ...extra })
      .setProtectedHeader({ alg: "RS256", kid: o.kid ?? kid, typ: "JWT" })
      .setSubject(sub)
      .setIssuer(o.issuer ?? issuer)
      .setAudience(o.audience ?? audience)
      .setIssuedAt(now - 10);
    if (o.noExp !== true) jwt = jwt.setExpirationTime(now + (o.expiresIn ?? 300));
    const token = await jwt.sign(key);
    // The signature is the secret part (header and claims are not): noted for the log-leak check.
    noteSecret(token.slice(token.lastIndexOf(".") + 1));
    return token;
  };

  return {
    issuer,
    audience,
    jwksUrl: `${origin}/jwks.json`,
    kid,
    get fetches() {
      return fetches;
    },
    get down() {
      return state.down;
    },
    set down(v: boolean) {
      state.down = v;
    },
    token: (sub, opts = {}, extra = {}) => sign(opts.forge === true ? forged.privateKey : real.privateKey, sub, opts, extra),
    unsigned(sub) {
      const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString("base64url");
      const now = Math.floor(Date.now() / 1000);
      return `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub, iss: issuer, aud: audience, iat: now, exp: now + 300 })}.`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
