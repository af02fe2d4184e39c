/**
 * `GET /me/limits`: how much of each limit the caller's PATs use now. For each
 * of the user's live PATs, every policy whose subject is that PAT or its user
 * (policies keyed by domain or model are listed with the subject they would
 * count under only once a request names it, so they are left out), and the
 * PAT's own limits. Operators name the user with `?user_id=`.
 */
import { DIM_TPD, DIM_TPM, DIM_REQUESTS } from "../limits/counters.ts";
import { OWN_POLICY, ownPolicy, subjectKey, type Charge } from "../limits/policies.ts";
import type { AdminDeps, Call, Endpoint } from "./call.ts";
import { queryParam } from "./http.ts";
import { deny, ok, type Reply } from "./reply.ts";
import { userId as validUserId } from "./validate.ts";
import { iso } from "./views.ts";

export const ME_LIMITS_ENDPOINTS: readonly Endpoint[] = [
  { method: "GET", path: "/me/limits", handler: { access: "any", run: meLimits }, query: ["user_id"] },
];

const NO_FACTS = { domainId: "", model: "", operation: "" };

async function meLimits(d: AdminDeps, c: Call): Promise<Reply> {
  const q = queryParam(c.query, "user_id");
  if (!q.ok) return q;
  let user: string;
  if (c.caller.kind === "user") {
    if (q.value !== undefined && q.value !== c.caller.userId) return deny("operator_only", "Only operators may read another user's limits (user_id).", "user_id");
    user = c.caller.userId;
  } else {
    if (q.value === undefined) return deny("invalid_field", "Operators name the user: add ?user_id=<user>.", "user_id");
    const v = validUserId(q.value, "user_id");
    if (!v.ok) return v;
    user = v.value;
  }
  const view = d.limits;
  if (view === null) return ok({ user_id: user, limits: [] });
  const now = d.now();
  const pats = (await d.store.listPatsByUser(user)).filter((p) => !p.revoked && p.expiresAt > now);
  const charges: { charge: Charge; patId: string | null }[] = [];
  const seen = new Set<string>();
  for (const p of view.settings.policies) {
    if (p.subject === "user") {
      const key = subjectKey(p, NO_FACTS, "", user);
      if (!seen.has(key)) charges.push({ charge: { policy: p, key }, patId: null });
      seen.add(key);
    } else if (p.subject === "pat") {
      for (const pat of pats) charges.push({ charge: { policy: p, key: subjectKey(p, NO_FACTS, pat.id, user) }, patId: pat.id });
    }
  }
  for (const pat of pats) if (pat.limits !== undefined) charges.push({ charge: { policy: ownPolicy(pat.limits), key: `${OWN_POLICY}|p:${pat.id}` }, patId: pat.id });
  const limits = [];
  for (const { charge, patId } of charges) {
    const t = await view.peek(charge);
    const p = charge.policy;
    const dims = [];
    const values = [0, p.requestsPerMinute, p.tokensPerMinute, p.tokensPerDay];
    const names = ["", "requests_per_minute", "tokens_per_minute", "tokens_per_day"];
    for (const dim of [DIM_REQUESTS, DIM_TPM, DIM_TPD]) {
      const limit = values[dim] as number;
      if (limit === 0) continue;
      const remaining = t.remaining[dim - 1] as number;
      const reset = t.resetMs[dim - 1] as number;
      dims.push({ dimension: names[dim], limit, used: limit - remaining, remaining, resets_at: reset === 0 ? null : iso(now + reset) });
    }
    if (p.concurrent > 0) dims.push({ dimension: "concurrent", limit: p.concurrent, used: t.inUse, remaining: Math.max(0, p.concurrent - t.inUse), resets_at: null });
    limits.push({ policy: p.name, subject: p.subject, pat_id: patId, mode: p.mode, dimensions: dims });
  }
  return ok({ user_id: user, limits });
}
