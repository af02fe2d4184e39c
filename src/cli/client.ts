/**
 * The management API client: one request, one answer. A refusal becomes a
 * CliError whose message is the API's own message and code, so the user reads
 * what the server said, on one line.
 */
import { getCACertificates } from "node:tls";
import { Agent, fetch as undiciFetch, type Dispatcher } from "undici";
import { readCaBundle } from "../config/tls.ts";
import { CliError, UsageError } from "./command.ts";

export const DEFAULT_URL = "http://127.0.0.1:8080";
const TIMEOUT_MS = 30_000;

// API field names (the error envelope's `param`) → the option that sets them.
const FLAG_OF: Readonly<Record<string, string>> = {
  user_id: "--user",
  name: "--name",
  description: "--description",
  duration: "--duration",
  grace_period: "--grace",
  scopes: "--scope",
  roles: "--role",
  operations: "--op",
  upstream: "--upstream",
  status: "--status",
  limit: "--limit",
  offset: "--offset",
};

export type Query = Readonly<Record<string, string | undefined>>;

/** How the CLI trusts an https:// gateway: --ca-file / PATGATE_CA_FILE, or (test setups) no check at all. */
export interface TlsOptions {
  readonly caFile?: string | undefined;
  readonly insecure?: boolean;
  /** Where the warning for an insecure connection goes (stderr). */
  readonly warn?: (line: string) => void;
}

export class Client {
  readonly base: string;
  readonly #token: string;
  /** Null: Node's own fetch and trust store. */
  readonly #dispatcher: Dispatcher | null;

  constructor(base: string, token: string, dispatcher: Dispatcher | null = null) {
    this.base = base;
    this.#token = token;
    this.#dispatcher = dispatcher;
  }

  /** From --url/--token or PATGATE_URL/PATGATE_TOKEN, and --ca-file/PATGATE_CA_FILE or --insecure-skip-tls-verify. */
  static from(url: string | undefined, token: string | undefined, env: Readonly<Record<string, string | undefined>>, tls: TlsOptions = {}): Client {
    const base = (url ?? nonEmpty(env.PATGATE_URL) ?? DEFAULT_URL).replace(/\/+$/, "");
    let parsed: URL;
    try {
      parsed = new URL(base);
    } catch {
      throw new UsageError(`--url "${base}" is not a URL (e.g. ${DEFAULT_URL})`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`--url must be http:// or https://, not "${parsed.protocol}"`);
    const tok = token ?? nonEmpty(env.PATGATE_TOKEN);
    if (tok === undefined) throw new CliError("no credential: set PATGATE_TOKEN or pass --token (an admin key, or a user's OIDC token)");
    return new Client(base, tok, tlsDispatcher(tls, env));
  }

  /** Sends one request; the parsed JSON body (undefined for 204), or throws CliError. */
  async call<T>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) q.set(k, v);
    const url = this.base + path + (q.size > 0 ? `?${q.toString()}` : "");
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: "application/json" };
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    let res: { readonly ok: boolean; readonly status: number; text(): Promise<string> };
    const init = { method, headers, signal: AbortSignal.timeout(TIMEOUT_MS), ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) };
    try {
      res = this.#dispatcher === null ? await fetch(url, init) : await undiciFetch(url, { ...init, dispatcher: this.#dispatcher });
    } catch (err) {
      const reason = networkReason(err);
      const hint = UNTRUSTED.test(reason) ? "the gateway's certificate is not trusted: pass its CA with --ca-file or PATGATE_CA_FILE" : "is the gateway running? set PATGATE_URL or --url";
      throw new CliError(`cannot reach ${this.base}: ${reason} (${hint})`);
    }
    const text = await res.text();
    if (res.ok) return (text === "" ? undefined : parseJson(text, res.status, this.base)) as T;
    throw new CliError(refusal(res.status, text, this.base));
  }
}

// Node's codes for a server certificate that does not verify.
const UNTRUSTED = /CERT|SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)/;

/** Null for Node's defaults; an agent trusting the default roots plus the CA file; or, asked for by name, one that checks nothing. */
function tlsDispatcher(opts: TlsOptions, env: Readonly<Record<string, string | undefined>>): Dispatcher | null {
  const caFile = opts.caFile ?? nonEmpty(env.PATGATE_CA_FILE);
  if (opts.insecure === true) {
    if (caFile !== undefined) throw new UsageError("--insecure-skip-tls-verify and --ca-file (or PATGATE_CA_FILE) contradict each other: trust the CA, or check nothing");
    opts.warn?.("patgate: warning: --insecure-skip-tls-verify: the gateway's certificate is not checked, so anyone in between can read the token; for self-signed test setups only (use --ca-file otherwise)\n");
    return new Agent({ connect: { rejectUnauthorized: false } });
  }
  if (caFile === undefined) return null;
  const ca = readCaBundle(caFile);
  if (typeof ca === "string") throw new CliError(`--ca-file: ${ca}`);
  // In addition to the roots Node trusts, never instead of them.
  return new Agent({ connect: { ca: [...getCACertificates("default"), ca.toString("latin1")] } });
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function parseJson(text: string, status: number, base: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${base} answered ${status} with a body that is not JSON (is it a patgate gateway?)`);
  }
}

/** `message (code)` from the OpenAI error envelope; the option to fix when the API names a field. */
function refusal(status: number, text: string, base: string): string {
  let e: { message?: unknown; code?: unknown; param?: unknown } | undefined;
  try {
    e = (JSON.parse(text) as { error?: typeof e }).error;
  } catch {
    e = undefined;
  }
  if (e === undefined || typeof e.message !== "string") return `${base} answered HTTP ${status} (is it a patgate gateway?)`;
  const code = typeof e.code === "string" ? e.code : `HTTP ${status}`;
  const param = typeof e.param === "string" ? e.param.replace(/[[.].*$/, "") : undefined;
  const flag = param === undefined ? undefined : FLAG_OF[param];
  return `${oneLine(e.message)} (${code}${flag === undefined ? "" : `; see ${flag}`})`;
}

function networkReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return `no answer within ${TIMEOUT_MS / 1000}s`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** Collapses whitespace so an error is always one line. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
