// One decision, three callers: for a table of cases, the data plane's answer
// (over a real socket), the re-check of a running request (decideAgain, what
// the stream re-check runs) and `routes explain` (which scopes the request
// needs, offline) must agree. They call the same step functions; this holds
// them to it, case by case.
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeUpstream, type FakeUpstream } from "../../src/devtools/fake-upstream.ts";
import { explain } from "../../src/cli/explain.ts";
import { RequestContext } from "../../src/http/context.ts";
import { decideAgain, type Deciders } from "../../src/policy/authorize.ts";
import { Rights } from "../../src/policy/rights.ts";
import { resolveRoute } from "../../src/routing/request.ts";
import { splitTarget } from "../../src/routing/normalize.ts";
import { CompiledScopes, type Scope } from "../../src/scopes/scope.ts";
import { loadSettings } from "../../src/config/config.ts";
import { ensureMember, startGateway, type TestGateway } from "../helpers/gateway.ts";

interface Case {
  readonly name: string;
  /** Scopes on the PAT, `domain:type:id:op`. */
  readonly scopes: readonly string[];
  /** The user's role in domain d1 (null: not a member). */
  readonly role: string | null;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  /** The data plane's answer: "ok" or the refusal's code. */
  readonly expect: string;
}

const chat = (model: string): unknown => ({ model, messages: [{ role: "user", content: "hi" }] });

const CASES: readonly Case[] = [
  { name: "exact model scope", scopes: ["d1:models:m1:llm_chat_completions"], role: "developer", method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m1"), expect: "ok" },
  { name: "another model", scopes: ["d1:models:m1:llm_chat_completions"], role: "developer", method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m2"), expect: "insufficient_scope" },
  { name: "wildcard model", scopes: ["d1:models:*:llm_chat_completions"], role: "developer", method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m2"), expect: "ok" },
  { name: "domain-level grant", scopes: ["d1:domains:d1:llm_chat_completions"], role: "developer", method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m9"), expect: "ok" },
  { name: "a scope in another domain", scopes: ["d2:models:m1:llm_chat_completions"], role: "developer", method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m1"), expect: "insufficient_scope" },
  { name: "another operation", scopes: ["d1:models:m1:llm_embeddings"], role: "developer", method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m1"), expect: "insufficient_scope" },
  { name: "role lacks the operation", scopes: ["d1:models:m1:llm_chat_completions"], role: "viewer", method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m1"), expect: "role_denied" },
  { name: "not a member", scopes: ["d1:models:m1:llm_chat_completions"], role: null, method: "POST", path: "/proxy/d1/v1/chat/completions", body: chat("m1"), expect: "not_a_member" },
  { name: "model from the path", scopes: ["d1:models:m1:llm_read"], role: "viewer", method: "GET", path: "/proxy/d1/v1/models/m1", expect: "ok" },
  { name: "another model from the path", scopes: ["d1:models:m1:llm_read"], role: "viewer", method: "GET", path: "/proxy/d1/v1/models/m2", expect: "insufficient_scope" },
  { name: "the domain as entity", scopes: ["d1:domains:d1:llm_read"], role: "viewer", method: "GET", path: "/proxy/d1/v1/models", expect: "ok" },
  { name: "a model scope does not list the domain", scopes: ["d1:models:*:llm_read"], role: "viewer", method: "GET", path: "/proxy/d1/v1/models", expect: "insufficient_scope" },
  { name: "create from a base it may read and pull", scopes: ["d1:models:new:llm_create", "d1:models:base:llm_read", "d1:models:base:llm_create"], role: "admin", method: "POST", path: "/proxy/d1/api/create", body: { model: "new", from: "base" }, expect: "ok" },
  { name: "create from a base it may only read (Ollama pulls a base it lacks)", scopes: ["d1:models:new:llm_create", "d1:models:base:llm_read"], role: "admin", method: "POST", path: "/proxy/d1/api/create", body: { model: "new", from: "base" }, expect: "insufficient_scope" },
  { name: "create from an unreadable base", scopes: ["d1:models:new:llm_create"], role: "admin", method: "POST", path: "/proxy/d1/api/create", body: { model: "new", from: "base" }, expect: "insufficient_scope" },
  { name: "create from a base the role cannot read", scopes: ["d1:models:new:llm_create", "d1:models:base:llm_read"], role: "creator", method: "POST", path: "/proxy/d1/api/create", body: { model: "new", from: "base" }, expect: "role_denied" },
  { name: "copy", scopes: ["d1:models:dst:llm_create", "d1:models:src:llm_read"], role: "admin", method: "POST", path: "/proxy/d1/api/copy", body: { source: "src", destination: "dst" }, expect: "ok" },
];

function parseScope(s: string): Scope {
  const [domainId, entityType, entityId, operation] = s.split(":") as [string, string, string, string];
  return { domainId, entityType, entityId, operation };
}

describe("one decision for the data plane, the re-check and routes explain", () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let deciders: Deciders;
  const tokens = new Map<string, string>();

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      // A role that may create but not read: the second field of create needs llm_read.
      patch: (cfg) => {
        cfg.roles = { ...(cfg.roles as Record<string, unknown>), creator: ["llm_create"] };
      },
    });
    await ensureMember(gw.store, "d2", "nobody", "admin");
    for (const [i, c] of CASES.entries()) {
      const userId = `u${i}`;
      if (c.role !== null) await ensureMember(gw.store, "d1", userId, c.role);
      else await ensureMember(gw.store, "d2", userId, "admin");
      const { token } = await gw.issue({ userId, domainId: c.role === null ? "d2" : "d1", role: c.role ?? "admin", scopes: c.scopes.map(parseScope) });
      tokens.set(c.name, token);
    }
    const settings = loadSettings(gw.configFile);
    deciders = {
      verifier: gw.app.verifier,
      rights: new Rights(gw.store, { maxEntries: 100, maxAgeMs: 60_000, negativeTtlMs: 1000, configRoles: settings.roles, operations: settings.catalog.operations }),
    };
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const token = tokens.get(c.name) as string;
    // 1. The data plane, over a real socket.
    const res = await fetch(`${gw.url}${c.path}`, {
      method: c.method,
      headers: { authorization: `Bearer ${token}`, ...(c.body === undefined ? {} : { "content-type": "application/json" }) },
      ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
    });
    expect(await gw.refusalCode(res)).toBe(c.expect);

    // 2. routes explain: the scopes it says the request needs are granted exactly when the data plane let it
    // through on scopes (a role or membership refusal comes before the scopes are looked at).
    const settings = loadSettings(gw.configFile);
    const body = c.body === undefined ? undefined : Buffer.from(JSON.stringify(c.body));
    const ex = await explain(gw.app.routes.current, settings.roles, { method: c.method, target: c.path, ...(body === undefined ? {} : { body }) });
    expect(ex.refused).toBeNull();
    const granted = new CompiledScopes(c.scopes.map(parseScope));
    const needs = [ex.scope as string, ...(ex.also_needs ?? [])].map(parseScope);
    const scopesAllow = needs.every((n) => granted.grants(n));
    if (c.expect === "ok") expect(scopesAllow).toBe(true);
    if (c.expect === "insufficient_scope") expect(scopesAllow).toBe(false);

    // 3. The re-check of a request in flight, as a running stream is re-decided after a change.
    const target = splitTarget(c.path);
    if (target === null) throw new Error("bad path in the table");
    const m = resolveRoute(gw.app.routes.current, c.method, target, 2);
    if (!("route" in m)) throw new Error("no route in the table");
    const ctx = new RequestContext({} as IncomingMessage, {} as ServerResponse, "t", 0);
    ctx.domainId = "d1";
    ctx.route = m.route;
    ctx.token = token;
    ctx.entityId = ex.entity_id ?? "";
    ctx.also = (ex.also_needs ?? []).map(parseScope);
    const again = await decideAgain(deciders, ctx);
    expect(again === null ? "ok" : again.error).toBe(c.expect);
  });
});
