/**
 * The model ids a domain's upstream serves, for the web page's scope picker:
 * OpenAI-compatible `GET /v1/models` (`data[].id`), else Ollama's
 * `GET /api/tags` (`models[].name`). Cached briefly per upstream; a failure is
 * an answer too ("the upstream is down"), cached for less.
 */
import { Agent, request, type Dispatcher } from "undici";
import type { UpstreamSettings } from "../config/config.ts";

export type ModelList = { readonly ok: true; readonly ids: readonly string[] } | { readonly ok: false; readonly message: string };

const TIMEOUT_MS = 3000;
const FAILURE_TTL_MS = 5000;
const MAX_BODY = 4 * 1024 * 1024;
const MAX_IDS = 2000;

/** Model ids per upstream, fetched on demand and cached for `ttlMs`. */
export class ModelCatalog {
  readonly #upstreams: ReadonlyMap<string, UpstreamSettings>;
  readonly #defaultId: string;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, { at: number; ttl: number; list: Promise<ModelList> }>();
  // Short-lived connections of its own: the data plane's pools are not shared with a page's look-ups.
  readonly #verified = new Agent({ keepAliveTimeout: 1000, connections: 4 });
  // Only for upstreams the operator configured with tls_verify: false (which needed an explicit flag).
  readonly #unverified = new Agent({ keepAliveTimeout: 1000, connections: 4, connect: { rejectUnauthorized: false } });

  constructor(upstreams: ReadonlyMap<string, UpstreamSettings>, defaultId: string, ttlMs: number) {
    this.#upstreams = upstreams;
    this.#defaultId = defaultId;
    this.#ttlMs = ttlMs;
  }

  /** The ids served by `upstreamId` (null: the default upstream). Never rejects. */
  list(upstreamId: string | null): Promise<ModelList> {
    const id = upstreamId ?? this.#defaultId;
    const now = Date.now();
    const hit = this.#cache.get(id);
    if (hit !== undefined && now - hit.at < hit.ttl) return hit.list;
    const u = this.#upstreams.get(id);
    const list = u === undefined ? Promise.resolve<ModelList>({ ok: false, message: `the upstream "${id}" is not configured` }) : fetchModels(u, u.tlsVerify ? this.#verified : this.#unverified);
    const entry = { at: now, ttl: this.#ttlMs, list };
    this.#cache.set(id, entry);
    void list.then((r) => {
      if (!r.ok) entry.ttl = Math.min(this.#ttlMs, FAILURE_TTL_MS);
    });
    return list;
  }

  async close(): Promise<void> {
    await Promise.all([this.#verified.close(), this.#unverified.close()]);
  }
}

async function fetchModels(u: UpstreamSettings, dispatcher: Dispatcher): Promise<ModelList> {
  const target = u.targets[0];
  if (target === undefined) return { ok: false, message: "the upstream has no target" };
  let lastProblem = "";
  for (const [path, read] of [["/v1/models", openAiIds], ["/api/tags", ollamaIds]] as const) {
    try {
      const headers: Record<string, string> = { accept: "application/json" };
      if (u.credential !== null) headers[u.credential.header] = u.credential.value;
      const res = await request(target.origin + target.basePath + path, {
        method: "GET",
        headers,
        headersTimeout: TIMEOUT_MS,
        bodyTimeout: TIMEOUT_MS,
        signal: AbortSignal.timeout(TIMEOUT_MS),
        dispatcher,
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        lastProblem = `${path} answered ${res.statusCode}`;
        continue;
      }
      const text = await res.body.text();
      if (text.length > MAX_BODY) return { ok: false, message: `${path} sent a list too large to read` };
      const ids = read(JSON.parse(text) as unknown);
      if (ids === null) {
        lastProblem = `${path} did not send a model list`;
        continue;
      }
      return { ok: true, ids: [...new Set(ids)].slice(0, MAX_IDS).sort() };
    } catch (err) {
      return { ok: false, message: `the upstream did not answer (${(err as Error).message})` };
    }
  }
  return { ok: false, message: lastProblem };
}

function openAiIds(body: unknown): string[] | null {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return null;
  return data.map((m) => (m as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === "string" && id !== "");
}

function ollamaIds(body: unknown): string[] | null {
  const models = (body as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) return null;
  return models.map((m) => (m as { name?: unknown; model?: unknown } | null)?.name ?? (m as { model?: unknown } | null)?.model).filter((id): id is string => typeof id === "string" && id !== "");
}
