// @ts-check
/** Profile → Personal Access Tokens: the list, a token's page, and the revoke / delete / rotate dialogs. */
import { useEffect, useState } from "../vendor/hooks.js";
import { all, api } from "./api.js";
import { CreateDialog, DurationPicker, ScopeList, ScopePicker, defaultDuration, durationMs, mergeScopes } from "./create.js";
import { STATUS_LABEL, displayStatus, durationText, local, opLabel, scopeWords, typeLabel, utc, zone } from "./format.js";
import { LimitsFields, limitErrorField, limitRefusalText, limitTexts, limitsWords, readLimits } from "./limits.js";
import { TokenOnceDialog } from "./secret.js";
import { TokenUsage } from "./usage.js";
import { Badge, Dialog, Field, Notice, Spinner, Time, errorField, html } from "./ui.js";

const PAGE = 20;
const INACTIVE = new Set(["expired", "revoked"]);

/** A short line for a token's scopes: "Chat completions — model llama3 in demo" and "+2 more". @param {any[]} scopes */
function scopeSummary(scopes) {
  if (scopes.length === 0) return html`<span class="muted">no scopes</span>`;
  const first = scopes[0];
  return html`<span>${opLabel(first.operation)} · ${first.entity_type === "domains" ? `domain ${first.domain_id}` : `${typeLabel(first.entity_type).toLowerCase()} ${first.entity_id === "*" ? "(all)" : first.entity_id}`}${scopes.length > 1 ? html` <span class="muted">+${scopes.length - 1} more</span>` : null}</span>`;
}

/**
 * Revoke: names the token and its last use; operators give a reason (audited).
 * @param {{pat: any, operator?: boolean, onDone: (pat: any) => void, onClose: () => void}} props
 */
export function RevokeDialog({ pat, operator, onDone, onClose }) {
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      const q = operator ? `?user_id=${encodeURIComponent(pat.user_id)}` : "";
      onDone(await api("PATCH", `pats/${pat.id}/secret/revoke${q}`, reason.trim() === "" ? {} : { reason: reason.trim() }));
    } catch (/** @type {any} */ e) {
      setError(e.message);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${`Revoke “${pat.name}”?`} onClose=${onClose} role="alertdialog">
    <div class="dialog-body">
      <p>Anything using this token stops working at once, on every gateway replica. This cannot be undone.</p>
      <dl class="facts">
        ${operator ? html`<dt>Owner</dt><dd>${pat.user_id}</dd>` : null}
        <dt>Last used</dt><dd><${Time} t=${pat.last_used_at} never="never used" /></dd>
        <dt>Expires</dt><dd><${Time} t=${pat.expires_at} /></dd>
      </dl>
      ${operator
        ? html`<${Field} id="revoke-reason" label="Reason" optional hint="Kept in the audit trail.">
            <textarea id="revoke-reason" rows="2" maxlength="500" value=${reason} onInput=${(/** @type {any} */ e) => setReason(e.currentTarget.value)}></textarea>
          </${Field}>`
        : null}
      <${Notice} error=${error} />
      <footer class="dialog-foot">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="button" class="button danger" disabled=${busy} onClick=${go}>${busy ? "Revoking…" : "Revoke token"}</button>
      </footer>
    </div>
  </${Dialog}>`;
}

/** @param {{pat: any, onDone: () => void, onClose: () => void}} props */
function DeleteDialog({ pat, onDone, onClose }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const go = async () => {
    setBusy(true);
    try {
      await api("DELETE", `pats/${pat.id}`);
      onDone();
    } catch (/** @type {any} */ e) {
      setError(e.message);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${`Delete “${pat.name}”?`} onClose=${onClose} role="alertdialog">
    <div class="dialog-body">
      <p>The token stops working and disappears from your list. ${pat.status === "active" ? "It is still active." : ""} Last used: <${Time} t=${pat.last_used_at} never="never" />.</p>
      <${Notice} error=${error} />
      <footer class="dialog-foot">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="button" class="button danger" disabled=${busy} onClick=${go}>${busy ? "Deleting…" : "Delete token"}</button>
      </footer>
    </div>
  </${Dialog}>`;
}

const GRACES = [
  { key: "", label: "None: the old secret stops now" },
  { key: "1h", label: "1 hour" },
  { key: "24h", label: "24 hours" },
  { key: "7d", label: "7 days" },
];

/** The same limits, field by field (null: none of its own). @param {Record<string, number> | null} a @param {Record<string, number> | null | undefined} b */
function sameLimits(a, b) {
  return limitsWords(a) === limitsWords(b ?? null);
}

/** Rotate: a new secret and duration, optionally a grace period for the old one, and the PAT's own limits. @param {{pat: any, me: any, onDone: (p: any) => void, onClose: () => void}} props */
function RotateDialog({ pat, me, onDone, onClose }) {
  const maxMs = me.max_token_lifetime_seconds * 1000;
  const [duration, setDuration] = useState(defaultDuration(maxMs));
  const [grace, setGrace] = useState("");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [limits, setLimits] = useState(limitTexts(pat.limits));
  const [limitsOpen, setLimitsOpen] = useState(false);
  const [limitRefusal, setLimitRefusal] = useState(/** @type {Record<string, string>} */ ({}));
  const ms = durationMs(duration);
  const own = readLimits(limits);
  const limitsOk = Object.keys(own.errors).length === 0;
  const go = async () => {
    if (ms === null || ms > maxMs || !limitsOk) return;
    setBusy(true);
    /** @type {Record<string, unknown>} */
    const body = grace === "" ? { duration: durationText(ms) } : { duration: durationText(ms), grace_period: grace };
    // Unchanged limits are left out: the API keeps them. Emptied: null removes them.
    if (!sameLimits(own.value, pat.limits)) body.limits = own.value;
    try {
      onDone(await api("PATCH", `pats/${pat.id}/secret/reset`, body));
    } catch (/** @type {any} */ e) {
      const lf = limitErrorField(e);
      if (lf !== null) {
        setLimitRefusal({ [lf]: limitRefusalText(e, lf) });
        setLimitsOpen(true);
      } else setErrors({ [errorField(e) || "form"]: e.message });
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${`Rotate “${pat.name}”`} onClose=${onClose}>
    <div class="dialog-body">
      <p>A new secret is made and shown once. Scopes, name and id stay the same.</p>
      <${DurationPicker} id="rotate-duration" maxMs=${maxMs} value=${duration} onChange=${setDuration} error=${errors.duration} />
      <${Field} id="rotate-grace" label="Keep the old secret working for" error=${errors.grace_period} hint="Time to roll the new secret out before the old one stops.">
        <select id="rotate-grace" value=${grace} onChange=${(/** @type {any} */ e) => setGrace(e.currentTarget.value)}>
          ${GRACES.map((g) => html`<option value=${g.key}>${g.label}</option>`)}
        </select>
      </${Field}>
      <${LimitsFields} id="rotate-limits" texts=${limits} errors=${{ ...own.errors, ...limitRefusal }} open=${limitsOpen} onOpen=${setLimitsOpen}
        onChange=${(/** @type {Record<string, string>} */ t) => { setLimits(t); setLimitRefusal({}); }}
        lede="The new secret keeps these limits. Change them here, or empty every field to leave only the gateway's policies." />
      <${Notice} error=${errors.form ?? null} />
      <footer class="dialog-foot">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="button" class="button primary" disabled=${busy || ms === null || ms > maxMs || !limitsOk} onClick=${go}>${busy ? "Rotating…" : "Rotate secret"}</button>
      </footer>
    </div>
  </${Dialog}>`;
}

/** The list: filter by status and name, inactive ones behind a toggle, paged. @param {{me: any, navigate: (h: string) => void}} props */
export function TokensPage({ me, navigate }) {
  const [pats, setPats] = useState(/** @type {any[] | null} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [query, setQuery] = useState("");
  const [status, setStatus] = useState("");
  const [showInactive, setShowInactive] = useState(false);
  const [page, setPage] = useState(0);
  const [dialog, setDialog] = useState(/** @type {any} */ (null));

  const load = () =>
    all("pats", "pats").then(
      (list) => setPats(list.sort((/** @type {any} */ a, /** @type {any} */ b) => b.issued_at.localeCompare(a.issued_at))),
      (e) => setError(e.message),
    );
  useEffect(() => {
    void load();
  }, []);

  if (pats === null) return html`<${PageHead} />${error ? html`<${Notice} error=${error} />` : html`<div class="panel"><${Spinner} label="Loading your tokens…" /></div>`}`;
  const names = new Set(pats.map((p) => p.name));
  const needle = query.trim().toLowerCase();
  const inactive = pats.filter((p) => INACTIVE.has(p.status));
  const visible = pats.filter((p) => {
    const st = displayStatus(p);
    if (status !== "" && st !== status) return false;
    if (status === "" && !showInactive && INACTIVE.has(p.status)) return false;
    return needle === "" || p.name.toLowerCase().includes(needle) || p.description.toLowerCase().includes(needle);
  });
  const pages = Math.max(1, Math.ceil(visible.length / PAGE));
  const at = Math.min(page, pages - 1);
  const shown = visible.slice(at * PAGE, at * PAGE + PAGE);
  const canCreate = me.domains.length > 0;

  return html`<${PageHead} action=${html`<button type="button" class="button primary" disabled=${!canCreate} onClick=${() => setDialog({ kind: "create" })}>Create token</button>`} />
    ${!canCreate ? html`<p class="notice">You are not a member of any domain yet, so a token could not do anything. Ask an operator to add you to a domain.</p>` : null}
    ${pats.length === 0
      ? html`<div class="panel empty">
          <h2>No tokens yet</h2>
          <p>A personal access token lets scripts, CI jobs and tools call the gateway as you, limited to the scopes you choose and for as long as you choose.</p>
          ${canCreate ? html`<button type="button" class="button primary" onClick=${() => setDialog({ kind: "create" })}>Create your first token</button>` : null}
        </div>`
      : html`<div class="panel">
          <div class="toolbar" role="search">
            <div class="field compact">
              <label for="filter-name">Filter by name</label>
              <input id="filter-name" type="search" value=${query} placeholder="Name or description" onInput=${(/** @type {any} */ e) => { setQuery(e.currentTarget.value); setPage(0); }} />
            </div>
            <div class="field compact">
              <label for="filter-status">Status</label>
              <select id="filter-status" value=${status} onChange=${(/** @type {any} */ e) => { setStatus(e.currentTarget.value); setPage(0); }}>
                <option value="">Active and expiring</option>
                ${Object.entries(STATUS_LABEL).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
              </select>
            </div>
            ${status === "" && inactive.length > 0
              ? html`<label class="toggle"><input type="checkbox" checked=${showInactive} onChange=${(/** @type {any} */ e) => { setShowInactive(e.currentTarget.checked); setPage(0); }} /> Show inactive (${inactive.length})</label>`
              : null}
          </div>
          <${TokenTable} pats=${shown} navigate=${navigate} onRevoke=${(/** @type {any} */ p) => setDialog({ kind: "revoke", pat: p })} />
          ${visible.length === 0 ? html`<p class="empty-row">No token matches these filters.</p>` : null}
          <${Pager} at=${at} pages=${pages} total=${visible.length} size=${PAGE} onPage=${setPage} />
          <p class="hint">Times are in your time zone (${zone()}); hover for UTC.</p>
        </div>`}
    ${dialog?.kind === "create" ? html`<${CreateDialog} me=${me} names=${names} initial=${dialog.initial} onClose=${() => setDialog(null)} onCreated=${(/** @type {any} */ p) => { setDialog({ kind: "token", pat: p }); void load(); }} />` : null}
    ${dialog?.kind === "token" ? html`<${TokenOnceDialog} pat=${dialog.pat} token=${dialog.pat.token} onClose=${() => setDialog(null)} />` : null}
    ${dialog?.kind === "revoke" ? html`<${RevokeDialog} pat=${dialog.pat} onClose=${() => setDialog(null)} onDone=${() => { setDialog(null); void load(); }} />` : null}`;
}

/** @param {{action?: any}} props */
function PageHead({ action }) {
  return html`<div class="page-head">
    <div>
      <nav aria-label="Breadcrumb" class="crumbs"><span>Profile</span> <span aria-hidden="true">›</span> <span aria-current="page">Personal Access Tokens</span></nav>
      <h1>Personal Access Tokens</h1>
      <p class="lede">Tokens for scripts and tools: each one is limited to the scopes you give it and expires when you say.</p>
    </div>
    ${action ?? null}
  </div>`;
}

/** @param {{at: number, pages: number, total: number, size: number, onPage: (n: number) => void}} props */
export function Pager({ at, pages, total, size, onPage }) {
  if (total <= size) return null;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" class="button small" disabled=${at === 0} onClick=${() => onPage(at - 1)}>Previous</button>
    <span>${at * size + 1}–${Math.min(total, at * size + size)} of ${total}</span>
    <button type="button" class="button small" disabled=${at >= pages - 1} onClick=${() => onPage(at + 1)}>Next</button>
  </nav>`;
}

/** @param {{pats: any[], navigate: (h: string) => void, onRevoke: (p: any) => void}} props */
function TokenTable({ pats, navigate, onRevoke }) {
  if (pats.length === 0) return null;
  return html`<table class="table tokens">
    <caption class="sr-only">Your tokens</caption>
    <thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>
      ${pats.map((p) => html`<tr>
        <td data-label="Name"><div class="name-cell"><a href=${`#/tokens/${p.id}`} onClick=${(/** @type {Event} */ e) => { e.preventDefault(); navigate(`#/tokens/${p.id}`); }}>${p.name}</a>${p.description ? html`<div class="muted small clamp">${p.description}</div>` : null}${p.limits ? html`<div class="small limits-line" title="This token's own limits">Limits: ${limitsWords(p.limits)}</div>` : null}</div></td>
        <td data-label="Status"><${Badge} status=${displayStatus(p)} /></td>
        <td data-label="Scopes">${scopeSummary(p.scopes)}</td>
        <td data-label="Created"><${Time} t=${p.issued_at} /></td>
        <td data-label="Expires"><${Time} t=${p.expires_at} /></td>
        <td data-label="Last used"><${Time} t=${p.last_used_at} /></td>
        <td class="actions">${p.status === "active" ? html`<button type="button" class="button small danger-quiet" aria-label=${`Revoke ${p.name}`} onClick=${() => onRevoke(p)}>Revoke</button>` : null}</td>
      </tr>`)}
    </tbody>
  </table>`;
}

/** Inline edit of one text value (name, description). @param {{id: string, label: string, value: string, multiline?: boolean, onSave: (v: string) => Promise<void>}} props */
function EditableText({ id, label, value, multiline, onSave }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(value);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [busy, setBusy] = useState(false);
  if (!editing) {
    return html`<div class="editable">
      <span class=${value === "" ? "muted" : ""}>${value === "" ? "No description" : value}</span>
      <button type="button" class="button small" aria-label=${`Edit ${label.toLowerCase()}`} onClick=${() => { setText(value); setEditing(true); }}>Edit</button>
    </div>`;
  }
  /** @param {Event} e */
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await onSave(text);
      setEditing(false);
      setError(null);
    } catch (/** @type {any} */ err) {
      setError(err.message);
    }
    setBusy(false);
  };
  return html`<form class="editable-form" onSubmit=${save}>
    <${Field} id=${id} label=${label} error=${error}>
      ${multiline
        ? html`<textarea id=${id} rows="2" value=${text} onInput=${(/** @type {any} */ e) => setText(e.currentTarget.value)}></textarea>`
        : html`<input id=${id} value=${text} onInput=${(/** @type {any} */ e) => setText(e.currentTarget.value)} />`}
    </${Field}>
    <div class="row-actions">
      <button type="button" class="button small" onClick=${() => setEditing(false)}>Cancel</button>
      <button type="submit" class="button small primary" disabled=${busy}>Save</button>
    </div>
  </form>`;
}

/** A token's page: facts, edits, scopes, rotate, revoke, delete, duplicate. @param {{me: any, id: string, navigate: (h: string) => void}} props */
export function TokenPage({ me, id, navigate }) {
  const [pat, setPat] = useState(/** @type {any} */ (null));
  const [names, setNames] = useState(/** @type {Set<string>} */ (new Set()));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [dialog, setDialog] = useState(/** @type {any} */ (null));
  const [picking, setPicking] = useState(false);
  const [scopeError, setScopeError] = useState(/** @type {string | null} */ (null));
  useEffect(() => {
    api("GET", `pats/${id}`).then(setPat, (e) => setError(e.message));
    all("pats", "pats").then((l) => setNames(new Set(l.map((/** @type {any} */ p) => p.name))), () => {});
  }, [id]);
  const back = html`<p><a href="#/tokens" onClick=${(/** @type {Event} */ e) => { e.preventDefault(); navigate("#/tokens"); }}>← All tokens</a></p>`;
  if (error) return html`${back}<${Notice} error=${error} />`;
  if (pat === null) return html`${back}<div class="panel"><${Spinner} /></div>`;
  const st = displayStatus(pat);
  const live = pat.status === "active";
  /** @param {string} path @param {any} body */
  const edit = async (path, body) => setPat(await api("PATCH", `pats/${pat.id}/${path}`, body));
  /** @param {any[]} scopes */
  const addScopes = async (scopes) => {
    setScopeError(null);
    try {
      await edit("scope/add", { scopes });
      setPicking(false);
    } catch (/** @type {any} */ e) {
      setScopeError(e.message);
    }
  };
  /** @param {any} s */
  const removeScope = async (s) => {
    setScopeError(null);
    try {
      await edit("scope/remove", { scopes: [s] });
    } catch (/** @type {any} */ e) {
      setScopeError(e.message);
    }
  };

  return html`${back}
    <div class="page-head">
      <div>
        <h1 class="token-title">${pat.name} <${Badge} status=${st} /></h1>
      </div>
      <div class="head-actions">
        <button type="button" class="button" onClick=${() => setDialog({ kind: "duplicate" })}>Duplicate</button>
        ${live ? html`<button type="button" class="button" onClick=${() => setDialog({ kind: "rotate" })}>Rotate</button>` : null}
        ${live ? html`<button type="button" class="button danger" onClick=${() => setDialog({ kind: "revoke" })}>Revoke</button>` : null}
        <button type="button" class="button danger-quiet" onClick=${() => setDialog({ kind: "delete" })}>Delete</button>
      </div>
    </div>
    <div class="panel">
      <h2 class="sr-only">Details</h2>
      <dl class="facts wide">
        <dt>Name</dt><dd><${EditableText} id="edit-name" label="Name" value=${pat.name} onSave=${(/** @type {string} */ v) => edit("name", { name: v })} /></dd>
        <dt>Description</dt><dd><${EditableText} id="edit-desc" label="Description" multiline value=${pat.description} onSave=${(/** @type {string} */ v) => edit("description", { description: v })} /></dd>
        <dt>Created</dt><dd><${Time} t=${pat.issued_at} /> <span class="muted small">${local(pat.issued_at)}</span></dd>
        <dt>Expires</dt><dd><${Time} t=${pat.expires_at} /> <span class="muted small" title=${utc(pat.expires_at)}>${local(pat.expires_at)}</span></dd>
        <dt>Last used</dt><dd><${Time} t=${pat.last_used_at} /></dd>
        <dt>Limits</dt><dd>${limitsWords(pat.limits) ?? html`<span class="muted">none of its own (the gateway's policies apply)</span>`}${live ? html` <button type="button" class="button small" onClick=${() => setDialog({ kind: "rotate" })}>Change with a rotation</button>` : null}</dd>
        ${pat.revoked_at ? html`<dt>Revoked</dt><dd><${Time} t=${pat.revoked_at} /></dd>` : null}
        ${pat.previous_secret_expires_at ? html`<dt>Previous secret</dt><dd>works until <${Time} t=${pat.previous_secret_expires_at} /></dd>` : null}
        <dt>ID</dt><dd><code class="small">${pat.id}</code></dd>
      </dl>
    </div>
    <section class="panel" aria-labelledby="scopes-h">
      <div class="section-head">
        <h2 id="scopes-h">Scopes</h2>
        ${live && !picking ? html`<button type="button" class="button" onClick=${() => setPicking(true)}>Add scope</button>` : null}
      </div>
      <${ScopeList} scopes=${pat.scopes} onRemove=${removeScope} />
      ${picking ? html`<${ScopePicker} me=${me} onAdd=${(/** @type {any[]} */ s) => addScopes(mergeScopes([], s))} onCancel=${() => setPicking(false)} />` : null}
      <p class="error" role=${scopeError ? "alert" : undefined}>${scopeError ?? ""}</p>
    </section>
    <${TokenUsage} pat=${pat} />
    ${dialog?.kind === "revoke" ? html`<${RevokeDialog} pat=${pat} onClose=${() => setDialog(null)} onDone=${(/** @type {any} */ p) => { setPat(p); setDialog(null); }} />` : null}
    ${dialog?.kind === "delete" ? html`<${DeleteDialog} pat=${pat} onClose=${() => setDialog(null)} onDone=${() => navigate("#/tokens")} />` : null}
    ${dialog?.kind === "rotate" ? html`<${RotateDialog} pat=${pat} me=${me} onClose=${() => setDialog(null)} onDone=${(/** @type {any} */ p) => { setPat(p); setDialog({ kind: "token", pat: p }); }} />` : null}
    ${dialog?.kind === "token" ? html`<${TokenOnceDialog} pat=${dialog.pat} token=${dialog.pat.token} title="Copy the new secret" onClose=${() => setDialog(null)} />` : null}
    ${dialog?.kind === "duplicate" ? html`<${CreateDialog} me=${me} names=${names} initial=${pat} onClose=${() => setDialog(null)} onCreated=${(/** @type {any} */ p) => setDialog({ kind: "token", pat: p })} />` : null}`;
}

export { scopeWords };
