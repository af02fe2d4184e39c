// @ts-check
/** Operator pages: every user's tokens (filters, revoke with a reason), domains and members, roles. */
import { useEffect, useState } from "../vendor/hooks.js";
import { api } from "./api.js";
import { STATUS_LABEL, displayStatus, opLabel } from "./format.js";
import { limitsWords } from "./limits.js";
import { Pager, RevokeDialog } from "./tokens.js";
import { Badge, Dialog, Field, Notice, Spinner, Time, errorField, html } from "./ui.js";

const PAGE = 25;

/** @param {{title: string, lede: string, action?: any}} props */
function Head({ title, lede, action }) {
  return html`<div class="page-head"><div><p class="crumbs">Operator</p><h1>${title}</h1><p class="lede">${lede}</p></div>${action ?? null}</div>`;
}

/** @param {{title: string, body: any, confirm: string, onConfirm: () => Promise<void>, onClose: () => void}} props */
function ConfirmDialog({ title, body, confirm, onConfirm, onClose }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const go = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } catch (/** @type {any} */ e) {
      setError(e.message);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${title} onClose=${onClose} role="alertdialog">
    <div class="dialog-body">
      ${body}
      <${Notice} error=${error} />
      <footer class="dialog-foot">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="button" class="button danger" disabled=${busy} onClick=${go}>${busy ? "Working…" : confirm}</button>
      </footer>
    </div>
  </${Dialog}>`;
}

/** Every user's tokens. @param {{}} _props */
export function AllTokensPage(_props) {
  const [filters, setFilters] = useState({ user_id: "", domain: "", status: "", unused: false, expiring: false });
  const [data, setData] = useState(/** @type {any} */ (null));
  const [domains, setDomains] = useState(/** @type {any[]} */ ([]));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [page, setPage] = useState(0);
  const [revoking, setRevoking] = useState(/** @type {any} */ (null));
  const load = () => {
    const q = new URLSearchParams();
    if (filters.user_id.trim() !== "") q.set("user_id", filters.user_id.trim());
    if (filters.domain !== "") q.set("domain", filters.domain);
    if (filters.status !== "" && filters.status !== "expiring") q.set("status", filters.status);
    if (filters.unused) q.set("unused", "true");
    if (filters.expiring || filters.status === "expiring") q.set("expiring_within", "7d");
    q.set("offset", String(page * PAGE));
    q.set("limit", String(PAGE));
    setError(null);
    api("GET", `admin/pats?${q}`).then(setData, (e) => setError(e.message));
  };
  useEffect(load, [filters, page]);
  useEffect(() => {
    api("GET", "domains").then((r) => setDomains(r.domains), () => {});
  }, []);
  /** @param {string} k @param {any} v */
  const set = (k, v) => {
    setFilters({ ...filters, [k]: v });
    setPage(0);
  };
  return html`<${Head} title="All tokens" lede="Every user's personal access tokens. Revoking one stops it at once; the reason goes to the audit trail." />
    <div class="panel">
      <div class="toolbar" role="search">
        <div class="field compact"><label for="f-user">User</label><input id="f-user" type="search" placeholder="User id" value=${filters.user_id} onChange=${(/** @type {any} */ e) => set("user_id", e.currentTarget.value)} /></div>
        <div class="field compact"><label for="f-domain">Domain</label>
          <select id="f-domain" value=${filters.domain} onChange=${(/** @type {any} */ e) => set("domain", e.currentTarget.value)}>
            <option value="">All domains</option>
            ${domains.map((d) => html`<option value=${d.id}>${d.id}</option>`)}
          </select></div>
        <div class="field compact"><label for="f-status">Status</label>
          <select id="f-status" value=${filters.status} onChange=${(/** @type {any} */ e) => set("status", e.currentTarget.value)}>
            <option value="">Any status</option>
            ${Object.entries(STATUS_LABEL).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
          </select></div>
        <label class="toggle"><input type="checkbox" checked=${filters.unused} onChange=${(/** @type {any} */ e) => set("unused", e.currentTarget.checked)} /> Never used</label>
        <label class="toggle"><input type="checkbox" checked=${filters.expiring} onChange=${(/** @type {any} */ e) => set("expiring", e.currentTarget.checked)} /> Expiring within 7 days</label>
      </div>
      <${Notice} error=${error} />
      ${data === null && error === null ? html`<${Spinner} />` : null}
      ${data !== null && data.pats.length === 0 ? html`<p class="empty-row">No token matches these filters.</p>` : null}
      ${data !== null && data.pats.length > 0
        ? html`<table class="table tokens">
            <caption class="sr-only">All users' tokens</caption>
            <thead><tr><th scope="col">User</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Domains</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>${data.pats.map((/** @type {any} */ p) => html`<tr>
              <td data-label="User">${p.user_id}</td>
              <td data-label="Name"><div class="name-cell">${p.name}${p.limits ? html`<div class="small limits-line" title="This token's own limits">Limits: ${limitsWords(p.limits)}</div>` : null}</div></td>
              <td data-label="Status"><${Badge} status=${displayStatus(p)} /></td>
              <td data-label="Domains">${[...new Set(p.scopes.map((/** @type {any} */ s) => s.domain_id))].join(", ") || html`<span class="muted">none</span>`}</td>
              <td data-label="Expires"><${Time} t=${p.expires_at} /></td>
              <td data-label="Last used"><${Time} t=${p.last_used_at} /></td>
              <td class="actions">${p.status === "active" ? html`<button type="button" class="button small danger-quiet" aria-label=${`Revoke ${p.name} of ${p.user_id}`} onClick=${() => setRevoking(p)}>Revoke</button>` : null}</td>
            </tr>`)}</tbody>
          </table>
          <${Pager} at=${page} pages=${Math.ceil(data.total / PAGE)} total=${data.total} size=${PAGE} onPage=${setPage} />`
        : null}
    </div>
    ${revoking ? html`<${RevokeDialog} pat=${revoking} operator onClose=${() => setRevoking(null)} onDone=${() => { setRevoking(null); load(); }} />` : null}`;
}

/** Domains with their members. @param {{}} _props */
export function DomainsPage(_props) {
  const [domains, setDomains] = useState(/** @type {any[] | null} */ (null));
  const [roles, setRoles] = useState(/** @type {string[]} */ ([]));
  const [open, setOpen] = useState(/** @type {string | null} */ (null));
  const [dialog, setDialog] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const load = () => api("GET", "domains").then((r) => setDomains(r.domains), (e) => setError(e.message));
  useEffect(() => {
    void load();
    api("GET", "roles").then((r) => setRoles([...new Set(r.roles.filter((/** @type {any} */ x) => x.effective).map((/** @type {any} */ x) => x.name))]), () => {});
  }, []);
  return html`<${Head} title="Domains and members" lede="A domain is a tenant with its upstream; members hold roles there, and their tokens never exceed those roles."
      action=${html`<button type="button" class="button primary" onClick=${() => setDialog({ kind: "domain" })}>New domain</button>`} />
    <${Notice} error=${error} />
    ${domains === null && error === null ? html`<div class="panel"><${Spinner} /></div>` : null}
    ${domains !== null && domains.length === 0 ? html`<div class="panel empty"><h2>No domains yet</h2><p>Create one, then add members with roles.</p></div>` : null}
    ${(domains ?? []).map((d) => html`<section class="panel domain" aria-labelledby=${`dom-${d.id}`}>
      <div class="section-head">
        <h2 id=${`dom-${d.id}`}>${d.name} ${d.name !== d.id ? html`<code class="small muted">${d.id}</code>` : null}</h2>
        <div class="head-actions">
          <button type="button" class="button small" aria-expanded=${open === d.id ? "true" : "false"} onClick=${() => setOpen(open === d.id ? null : d.id)}>${open === d.id ? "Hide members" : "Members"}</button>
          <button type="button" class="button small" onClick=${() => setDialog({ kind: "domain", domain: d })}>Edit</button>
          <button type="button" class="button small danger-quiet" onClick=${() => setDialog({ kind: "delete-domain", domain: d })}>Delete</button>
        </div>
      </div>
      <p class="muted small">Upstream: ${d.upstream ?? "default"} · created <${Time} t=${d.created_at} /></p>
      ${open === d.id ? html`<${Members} domain=${d} roles=${roles} />` : null}
    </section>`)}
    ${dialog?.kind === "domain" ? html`<${DomainDialog} domain=${dialog.domain} onClose=${() => setDialog(null)} onDone=${() => { setDialog(null); void load(); }} />` : null}
    ${dialog?.kind === "delete-domain"
      ? html`<${ConfirmDialog} title=${`Delete domain “${dialog.domain.id}”?`} confirm="Delete domain"
          body=${html`<p>Its memberships go too, so every token scoped to it stops working at once. Tokens themselves are kept (and show as unusable there).</p>`}
          onClose=${() => setDialog(null)} onConfirm=${async () => { await api("DELETE", `domains/${encodeURIComponent(dialog.domain.id)}`); setDialog(null); void load(); }} />`
      : null}`;
}

/** @param {{domain?: any, onDone: () => void, onClose: () => void}} props */
function DomainDialog({ domain, onDone, onClose }) {
  const [id, setId] = useState(domain?.id ?? "");
  const [name, setName] = useState(domain?.name ?? "");
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  /** @param {Event} e */
  const save = async (e) => {
    e.preventDefault();
    try {
      if (domain) await api("PATCH", `domains/${encodeURIComponent(domain.id)}`, { name: name.trim() || domain.id });
      else await api("POST", "domains", name.trim() === "" ? { id: id.trim() } : { id: id.trim(), name: name.trim() });
      onDone();
    } catch (/** @type {any} */ err) {
      setErrors({ [errorField(err) || "form"]: err.message });
    }
  };
  return html`<${Dialog} title=${domain ? `Edit “${domain.id}”` : "New domain"} onClose=${onClose}>
    <form class="dialog-body" onSubmit=${save}>
      <${Field} id="dom-id" label="Id" error=${errors.id} hint="Used in URLs: /proxy/<id>/…. Letters, digits, . _ -">
        <input id="dom-id" value=${id} disabled=${!!domain} required onInput=${(/** @type {any} */ e) => setId(e.currentTarget.value)} />
      </${Field}>
      <${Field} id="dom-name" label="Display name" optional error=${errors.name}>
        <input id="dom-name" value=${name} onInput=${(/** @type {any} */ e) => setName(e.currentTarget.value)} />
      </${Field}>
      <${Notice} error=${errors.form ?? null} />
      <footer class="dialog-foot"><button type="button" class="button" onClick=${onClose}>Cancel</button><button type="submit" class="button primary">${domain ? "Save" : "Create domain"}</button></footer>
    </form>
  </${Dialog}>`;
}

/** @param {{domain: any, roles: string[]}} props */
function Members({ domain, roles }) {
  const [members, setMembers] = useState(/** @type {any[] | null} */ (null));
  const [dialog, setDialog] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const base = `domains/${encodeURIComponent(domain.id)}/members`;
  const load = () => api("GET", base).then((r) => setMembers(r.members), (e) => setError(e.message));
  useEffect(() => {
    void load();
  }, [domain.id]);
  if (members === null) return error ? html`<${Notice} error=${error} />` : html`<${Spinner} />`;
  return html`<div class="members">
    <div class="section-head"><h3>Members</h3><button type="button" class="button small primary" onClick=${() => setDialog({ kind: "member" })}>Add member</button></div>
    ${members.length === 0 ? html`<p class="muted">No members yet.</p>` : html`<table class="table">
      <caption class="sr-only">Members of ${domain.id}</caption>
      <thead><tr><th scope="col">User</th><th scope="col">Roles</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${members.map((m) => html`<tr>
        <td data-label="User">${m.user_id}</td>
        <td data-label="Roles">${m.roles.join(", ")}</td>
        <td class="actions">
          <button type="button" class="button small" aria-label=${`Edit roles of ${m.user_id}`} onClick=${() => setDialog({ kind: "member", member: m })}>Edit</button>
          <button type="button" class="button small danger-quiet" aria-label=${`Remove ${m.user_id}`} onClick=${() => setDialog({ kind: "remove", member: m })}>Remove</button>
        </td>
      </tr>`)}</tbody></table>`}
    ${dialog?.kind === "member" ? html`<${MemberDialog} base=${base} member=${dialog.member} roles=${roles} onClose=${() => setDialog(null)} onDone=${() => { setDialog(null); void load(); }} />` : null}
    ${dialog?.kind === "remove"
      ? html`<${ConfirmDialog} title=${`Remove ${dialog.member.user_id} from ${domain.id}?`} confirm="Remove member"
          body=${html`<p>All of ${dialog.member.user_id}'s tokens stop working in ${domain.id} at once.</p>`}
          onClose=${() => setDialog(null)} onConfirm=${async () => { await api("DELETE", `${base}/${encodeURIComponent(dialog.member.user_id)}`); setDialog(null); void load(); }} />`
      : null}
  </div>`;
}

/** @param {{base: string, member?: any, roles: string[], onDone: () => void, onClose: () => void}} props */
function MemberDialog({ base, member, roles, onDone, onClose }) {
  const [user, setUser] = useState(member?.user_id ?? "");
  const [chosen, setChosen] = useState(/** @type {Set<string>} */ (new Set(member?.roles ?? [])));
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  /** @param {Event} e */
  const save = async (e) => {
    e.preventDefault();
    try {
      await api("PUT", `${base}/${encodeURIComponent(user.trim())}`, { roles: [...chosen] });
      onDone();
    } catch (/** @type {any} */ err) {
      setErrors({ [errorField(err) || "form"]: err.message });
    }
  };
  return html`<${Dialog} title=${member ? `Roles of ${member.user_id}` : "Add member"} onClose=${onClose}>
    <form class="dialog-body" onSubmit=${save}>
      <${Field} id="mem-user" label="User id" error=${errors.user_id} hint="As the identity provider names them (the ID token's subject).">
        <input id="mem-user" value=${user} disabled=${!!member} required onInput=${(/** @type {any} */ e) => setUser(e.currentTarget.value)} />
      </${Field}>
      <fieldset class=${errors.roles ? "field has-error" : "field"}>
        <legend>Roles</legend>
        <div class="options">${roles.map((r) => html`<label class="option"><input type="checkbox" checked=${chosen.has(r)} onChange=${() => { const n = new Set(chosen); if (n.has(r)) n.delete(r); else n.add(r); setChosen(n); }} /> ${r}</label>`)}</div>
        <p class="error" role=${errors.roles ? "alert" : undefined}>${errors.roles ?? ""}</p>
      </fieldset>
      <${Notice} error=${errors.form ?? null} />
      <footer class="dialog-foot"><button type="button" class="button" onClick=${onClose}>Cancel</button><button type="submit" class="button primary" disabled=${chosen.size === 0 || user.trim() === ""}>Save</button></footer>
    </form>
  </${Dialog}>`;
}

/** Roles: config ones (read-only here) and stored ones. @param {{me: any}} props */
export function RolesPage({ me }) {
  const [roles, setRoles] = useState(/** @type {any[] | null} */ (null));
  const [dialog, setDialog] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const load = () => api("GET", "roles").then((r) => setRoles(r.roles), (e) => setError(e.message));
  useEffect(() => {
    void load();
  }, []);
  const allOps = [...new Set(me.entity_types.flatMap((/** @type {any} */ t) => t.operations))].sort();
  return html`<${Head} title="Roles" lede="A role is a named set of operations. Roles from the config file can be overridden here by name."
      action=${html`<button type="button" class="button primary" onClick=${() => setDialog({ kind: "role" })}>New role</button>`} />
    <${Notice} error=${error} />
    ${roles === null && error === null ? html`<div class="panel"><${Spinner} /></div>` : null}
    ${roles !== null ? html`<div class="panel"><table class="table">
      <caption class="sr-only">Roles</caption>
      <thead><tr><th scope="col">Role</th><th scope="col">Operations</th><th scope="col">Source</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${roles.map((r) => html`<tr class=${r.effective ? "" : "superseded"}>
        <td data-label="Role"><strong>${r.name}</strong></td>
        <td data-label="Operations" class="small">${r.operations.includes("*") ? "every operation" : r.operations.map(opLabel).join(", ") || html`<span class="muted">none</span>`}</td>
        <td data-label="Source">${r.source}${r.effective ? "" : " (overridden)"}</td>
        <td class="actions">${r.effective ? html`<button type="button" class="button small" aria-label=${`Edit role ${r.name}`} onClick=${() => setDialog({ kind: "role", role: r })}>Edit</button>` : null}
          ${r.source === "stored" ? html`<button type="button" class="button small danger-quiet" aria-label=${`Delete role ${r.name}`} onClick=${() => setDialog({ kind: "delete", role: r })}>Delete</button>` : null}</td>
      </tr>`)}</tbody></table></div>` : null}
    ${dialog?.kind === "role" ? html`<${RoleDialog} role=${dialog.role} ops=${allOps} onClose=${() => setDialog(null)} onDone=${() => { setDialog(null); void load(); }} />` : null}
    ${dialog?.kind === "delete"
      ? html`<${ConfirmDialog} title=${`Delete role “${dialog.role.name}”?`} confirm="Delete role"
          body=${html`<p>Members with this role lose its operations at once, and their tokens with them.</p>`}
          onClose=${() => setDialog(null)} onConfirm=${async () => { await api("DELETE", `roles/${encodeURIComponent(dialog.role.name)}`); setDialog(null); void load(); }} />`
      : null}`;
}

/** @param {{role?: any, ops: string[], onDone: () => void, onClose: () => void}} props */
function RoleDialog({ role, ops, onDone, onClose }) {
  const [name, setName] = useState(role?.name ?? "");
  const [chosen, setChosen] = useState(/** @type {Set<string>} */ (new Set(role?.operations ?? [])));
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  /** @param {Event} e */
  const save = async (e) => {
    e.preventDefault();
    try {
      await api("PUT", `roles/${encodeURIComponent(name.trim())}`, { operations: [...chosen] });
      onDone();
    } catch (/** @type {any} */ err) {
      setErrors({ [errorField(err) || "form"]: err.message });
    }
  };
  return html`<${Dialog} title=${role ? `Edit role “${role.name}”` : "New role"} onClose=${onClose} wide>
    <form class="dialog-body" onSubmit=${save}>
      <${Field} id="role-name" label="Name" error=${errors.name} hint="snake_case, e.g. ml_engineer">
        <input id="role-name" value=${name} disabled=${!!role} required onInput=${(/** @type {any} */ e) => setName(e.currentTarget.value)} />
      </${Field}>
      <fieldset class=${errors.operations ? "field has-error" : "field"}>
        <legend>Operations</legend>
        <div class="options columns">${ops.map((o) => html`<label class="option"><input type="checkbox" checked=${chosen.has(o) || chosen.has("*")} onChange=${() => { const n = new Set(chosen); n.delete("*"); if (n.has(o)) n.delete(o); else n.add(o); setChosen(n); }} /> ${opLabel(o)}</label>`)}</div>
        <p class="error" role=${errors.operations ? "alert" : undefined}>${errors.operations ?? ""}</p>
      </fieldset>
      <${Notice} error=${errors.form ?? null} />
      <footer class="dialog-foot"><button type="button" class="button" onClick=${onClose}>Cancel</button><button type="submit" class="button primary">Save role</button></footer>
    </form>
  </${Dialog}>`;
}
