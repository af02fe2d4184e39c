/**
 * A client for the management API in tests: every response is held to
 * docs/openapi.yaml (status documented, body matches) before the test sees it.
 */
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { startGateway, type GatewayOptions, type TestGateway } from "./gateway.ts";
import { startIdp, type TestIdp } from "./jwks.ts";
import { OpenApi } from "./openapi.ts";
import { noteSecret } from "./log-sink.ts";

// Global, so every token in a body is found; only used with matchAll.
const TOKENS = /pat_[0-9A-Za-z]{22}_[0-9A-Za-z]{49}/g;

export interface ScopeJson {
  domain_id: string;
  entity_type: string;
  entity_id: string;
  operation: string;
}

export interface PatJson {
  id: string;
  user_id: string;
  name: string;
  description: string;
  scopes: ScopeJson[];
  issued_at: string;
  expires_at: string;
  updated_at: string;
  last_used_at: string | null;
  revoked: boolean;
  revoked_at: string | null;
  status: "active" | "expired" | "revoked";
  previous_secret_expires_at: string | null;
  token?: string;
}

export interface PatListJson {
  total: number;
  offset: number;
  limit: number;
  pats: PatJson[];
}

export interface ErrorJson {
  message: string;
  type: string;
  code: string;
  param: string | null;
}

export interface Res<T> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
  /** The error envelope's inner object (all fields empty when the body is not an error). */
  error: ErrorJson;
}

export interface CallOptions {
  /** The Bearer credential; null sends no Authorization header. */
  auth?: string | null;
  /** Sent as JSON with Content-Type: application/json. */
  json?: unknown;
  /** Sent as is (with `contentType` when given). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

let shared: OpenApi | null = null;

/** The one parsed OpenAPI document per test file. */
export function openApi(): OpenApi {
  shared ??= new OpenApi();
  return shared;
}

export class AdminClient {
  readonly base: string;
  readonly auth: string | null;
  readonly #record: Recorded;

  constructor(base: string, auth: string | null, record: Recorded = { seen: new Set(), bodies: [], tokens: new Map() }) {
    this.base = base;
    this.auth = auth;
    this.#record = record;
  }

  /** The same client with another credential (sharing what was recorded). */
  as(auth: string | null): AdminClient {
    return new AdminClient(this.base, auth, this.#record);
  }

  /** "METHOD /template STATUS" of every response seen. */
  get seen(): ReadonlySet<string> {
    return this.#record.seen;
  }

  /** Every response body seen, for "never in any response" checks. */
  get bodies(): readonly string[] {
    return this.#record.bodies;
  }

  /** Each PAT token seen in a response body → in how many responses it appeared. */
  get tokens(): ReadonlyMap<string, number> {
    return this.#record.tokens;
  }

  async call<T = unknown>(method: string, path: string, opts: CallOptions = {}): Promise<Res<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    const auth = opts.auth === undefined ? this.auth : opts.auth;
    if (auth !== null) headers.authorization = `Bearer ${auth}`;
    let body: string | undefined;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["content-type"] = "application/json";
    } else if (opts.raw !== undefined) {
      body = opts.raw;
      if (opts.contentType !== undefined) headers["content-type"] = opts.contentType;
    }
    const res = await fetch(this.base + path, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    const pathname = path.split("?")[0] ?? path;
    const api = openApi();
    api.check(method, pathname, res.status, res.headers.get("content-type"), text);
    const op = api.find(method, pathname);
    this.#record.seen.add(`${method} ${op?.template ?? pathname} ${res.status}`);
    this.#record.bodies.push(text);
    for (const t of new Set([...text.matchAll(TOKENS)].map((m) => m[0]))) {
      noteSecret(t);
      this.#record.tokens.set(t, (this.#record.tokens.get(t) ?? 0) + 1);
    }
    for (const k of text.match(/pgadm_[A-Za-z0-9_]{16,}/g) ?? []) noteSecret(k);
    // No response, of any status, may carry a secret hash or its field.
    if (/secret_?hash/i.test(text)) throw new Error(`${method} ${path}: the response mentions a secret hash: ${text.slice(0, 500)}`);
    const parsed: unknown = text === "" ? undefined : JSON.parse(text);
    const err = (parsed as { error?: ErrorJson } | undefined)?.error ?? { message: "", type: "", code: "", param: null };
    return { status: res.status, headers: res.headers, text, body: parsed as T, error: err };
  }

  get<T = unknown>(path: string, opts?: CallOptions): Promise<Res<T>> {
    return this.call<T>("GET", path, opts);
  }
  post<T = unknown>(path: string, json: unknown, opts?: CallOptions): Promise<Res<T>> {
    return this.call<T>("POST", path, { ...opts, json });
  }
  put<T = unknown>(path: string, json: unknown, opts?: CallOptions): Promise<Res<T>> {
    return this.call<T>("PUT", path, { ...opts, json });
  }
  patch<T = unknown>(path: string, json?: unknown, opts?: CallOptions): Promise<Res<T>> {
    return this.call<T>("PATCH", path, json === undefined ? opts : { ...opts, json });
  }
  delete<T = unknown>(path: string, opts?: CallOptions): Promise<Res<T>> {
    return this.call<T>("DELETE", path, opts);
  }
}

interface Recorded {
  readonly seen: Set<string>;
  readonly bodies: string[];
  readonly tokens: Map<string, number>;
}

/** A scope in the API's JSON shape. */
export function scope(domain_id: string, entity_type: string, entity_id: string, operation: string): ScopeJson {
  return { domain_id, entity_type, entity_id, operation };
}

/** A gateway with an OIDC issuer, a fake upstream and clients for operators and users. */
export interface AdminFixture {
  readonly gw: TestGateway;
  readonly idp: TestIdp;
  readonly upstream: FakeUpstream;
  /** The operator (admin key). */
  readonly ops: AdminClient;
  /** A user signed in through the test issuer. */
  user(sub: string): Promise<AdminClient>;
  /** A chat completion on the data plane; resolves with the status. */
  chat(token: string, domain?: string, model?: string): Promise<number>;
  close(): Promise<void>;
}

export async function startAdminFixture(opts: Partial<GatewayOptions> = {}): Promise<AdminFixture> {
  const upstream = await startFakeUpstream();
  const idp = await startIdp();
  const gw = await startGateway({ upstreamUrl: upstream.url, oidc: { issuer: idp.issuer, audience: idp.audience, jwksUrl: idp.jwksUrl }, ...opts });
  const ops = new AdminClient(gw.url, gw.adminKey);
  return {
    gw,
    idp,
    upstream,
    ops,
    user: async (sub) => ops.as(await idp.token(sub, { expiresIn: 3600 })),
    chat: async (token, domain = "d1", model = "llama3") => {
      const r = await fetch(`${gw.url}/proxy/${domain}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
      });
      await r.arrayBuffer();
      return r.status;
    },
    async close() {
      await gw.close();
      await idp.close();
      await upstream.close();
    },
  };
}
