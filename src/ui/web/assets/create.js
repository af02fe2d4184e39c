// @ts-check
/** Create (and duplicate): name, description, duration, scopes picked as entity type → entity → operation, optional limits. */
import { useEffect, useMemo, useState } from "../vendor/hooks.js";
import { api } from "./api.js";
import { durationText, durationWords, local, opLabel, scopeCode, scopeWords, typeLabel, utc } from "./format.js";
import { LimitsFields, limitErrorField, limitRefusalText, limitTexts, limitsWords, readLimits } from "./limits.js";
import { Dialog, Field, Notice, errorField, html } from "./ui.js";

const DAY = 86_400_000;
export const PRESETS = [
  { key: "7d", ms: 7 * DAY, label: "7 days" },
  { key: "30d", ms: 30 * DAY, label: "30 days" },
  { key: "90d", ms: 90 * DAY, label: "90 days" },
  { key: "1y", ms: 365 * DAY, label: "1 year" },
];

/**
 * Presets up to the operator's maximum, or a custom number of days or hours.
 * @param {{id: string, maxMs: number, value: {key: string, n: string, unit: string}, onChange: (v: any) => void, error?: string | null}} props
 */
export function DurationPicker({ id, maxMs, value, onChange, error }) {
  const ms = durationMs(value);
  const over = ms !== null && ms > maxMs;
  const problem = error ?? (value.key === "custom" && ms === null ? "Enter a whole number greater than 0." : over ? `That is longer than the maximum of ${durationWords(maxMs)} set by the operator.` : null);
  return html`<fieldset class=${problem ? "field has-error" : "field"} aria-describedby=${`${id}-expiry ${id}-error`}>
    <legend>Expiration</legend>
    <div class="chips" role="radiogroup" aria-label="Duration">
      ${PRESETS.map((p) => html`<label class=${p.ms > maxMs ? "chip disabled" : "chip"}>
        <input type="radio" name=${id} value=${p.key} checked=${value.key === p.key} disabled=${p.ms > maxMs} onChange=${() => onChange({ ...value, key: p.key })} />
        <span>${p.label}</span>
      </label>`)}
      <label class="chip">
        <input type="radio" name=${id} value="custom" checked=${value.key === "custom"} onChange=${() => onChange({ ...value, key: "custom" })} />
        <span>Custom</span>
      </label>
    </div>
    ${value.key === "custom"
      ? html`<div class="inline-inputs">
          <label class="sr-only" for=${`${id}-n`}>Number</label>
          <input id=${`${id}-n`} type="number" min="1" step="1" inputmode="numeric" value=${value.n} onInput=${(/** @type {any} */ e) => onChange({ ...value, n: e.currentTarget.value })} />
          <label class="sr-only" for=${`${id}-unit`}>Unit</label>
          <select id=${`${id}-unit`} value=${value.unit} onChange=${(/** @type {any} */ e) => onChange({ ...value, unit: e.currentTarget.value })}>
            <option value="d">days</option>
            <option value="h">hours</option>
          </select>
        </div>`
      : null}
    <p class="hint" id=${`${id}-expiry`}>${ms !== null && !over ? html`Expires <strong title=${utc(Date.now() + ms)}>${local(Date.now() + ms)}</strong> (your time). Maximum: ${durationWords(maxMs)}.` : html`Maximum: ${durationWords(maxMs)}.`}</p>
    <p class="error" id=${`${id}-error`} role=${problem ? "alert" : undefined}>${problem ?? ""}</p>
  </fieldset>`;
}

/** @param {{key: string, n: string, unit: string}} v @returns {number | null} */
export function durationMs(v) {
  const p = PRESETS.find((x) => x.key === v.key);
  if (p !== undefined) return p.ms;
  const n = Number(v.n);
  if (!Number.isInteger(n) || n <= 0) return null;
  return n * (v.unit === "h" ? 3_600_000 : DAY);
}

/** @param {number} maxMs */
export function defaultDuration(maxMs) {
  const fit = [...PRESETS].reverse().find((p) => p.ms <= maxMs && p.ms <= 30 * DAY);
  return fit ? { key: fit.key, n: "30", unit: "d" } : { key: "custom", n: String(Math.max(1, Math.floor(maxMs / 3_600_000))), unit: "h" };
}

/**
 * "Add scope": domain → entity type → entity (searchable, with all) → operations.
 * Offers only what the user holds now (GET me/grantable).
 * @param {{me: any, onAdd: (scopes: any[]) => void, onCancel: () => void}} props
 */
export function ScopePicker({ me, onAdd, onCancel }) {
  const domains = me.domains;
  const [domain, setDomain] = useState(domains.length === 1 ? domains[0].id : "");
  const held = useMemo(() => new Set(domains.find((/** @type {any} */ d) => d.id === domain)?.operations ?? []), [domain]);
  // Only types on which the user holds at least one operation in this domain.
  const types = me.entity_types.filter((/** @type {any} */ t) => t.operations.some((/** @type {string} */ op) => held.has(op)));
  const [type, setType] = useState("");
  const [data, setData] = useState(/** @type {any} */ (null));
  const [loadError, setLoadError] = useState(/** @type {string | null} */ (null));
  const [search, setSearch] = useState("");
  const [entity, setEntity] = useState("");
  const [ops, setOps] = useState(/** @type {Set<string>} */ (new Set()));

  useEffect(() => {
    setData(null);
    setLoadError(null);
    setEntity("");
    setOps(new Set());
    setSearch("");
    if (domain === "" || type === "") return;
    let live = true;
    api("GET", `me/grantable?domain=${encodeURIComponent(domain)}&entity_type=${encodeURIComponent(type)}`).then(
      (d) => live && setData(d),
      (e) => live && setLoadError(e.message),
    );
    return () => {
      live = false;
    };
  }, [domain, type]);

  const needle = search.trim().toLowerCase();
  const entities = data === null ? [] : data.entities.filter((/** @type {any} */ e) => needle === "" || e.id.toLowerCase().includes(needle) || (e.id === "*" && "all".includes(needle)));
  const custom = needle !== "" && data !== null && !data.entities.some((/** @type {any} */ e) => e.id === search.trim()) && type !== "domains";
  const ready = entity !== "" && ops.size > 0;
  /** @param {string} op */
  const toggle = (op) => {
    const next = new Set(ops);
    if (next.has(op)) next.delete(op);
    else next.add(op);
    setOps(next);
  };
  const add = () => onAdd([...ops].map((operation) => ({ domain_id: domain, entity_type: type, entity_id: entity, operation })));

  return html`<fieldset class="picker" aria-label="Add a scope">
    <legend>Add a scope</legend>
    <div class="picker-grid">
      <div class="field">
        <label for="pick-domain">Domain</label>
        <select id="pick-domain" value=${domain} onChange=${(/** @type {any} */ e) => { setDomain(e.currentTarget.value); setType(""); }}>
          ${domains.length !== 1 ? html`<option value="">Choose a domain…</option>` : null}
          ${domains.map((/** @type {any} */ d) => html`<option value=${d.id}>${d.name === d.id ? d.id : `${d.name} (${d.id})`}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="pick-type">Entity type</label>
        <select id="pick-type" value=${type} disabled=${domain === ""} onChange=${(/** @type {any} */ e) => setType(e.currentTarget.value)}>
          <option value="">Choose a type…</option>
          ${types.map((/** @type {any} */ t) => html`<option value=${t.name}>${typeLabel(t.name)} (${t.name})</option>`)}
        </select>
      </div>
    </div>
    ${domain !== "" && types.length === 0 ? html`<p class="notice">You hold no operation in ${domain} that a token could be given.</p>` : null}
    ${loadError ? html`<p class="notice notice-error" role="alert">${loadError}</p>` : null}
    ${type !== "" && data === null && loadError === null ? html`<p class="muted" role="status">Loading what you can grant…</p>` : null}
    ${data !== null
      ? html`<div class="picker-grid">
          <fieldset class="field">
            <legend>Entity</legend>
            ${data.upstream.status === "unavailable" ? html`<p class="notice notice-warn" role="status">${data.upstream.message}</p>` : null}
            <label class="sr-only" for="pick-search">Search entities</label>
            <input id="pick-search" type="search" placeholder=${`Search ${typeLabel(type).toLowerCase()}s`} value=${search} onInput=${(/** @type {any} */ e) => setSearch(e.currentTarget.value)} autocomplete="off" />
            <div class="options" role="radiogroup" aria-label="Entity">
              ${entities.map((/** @type {any} */ e) => html`<label class="option">
                <input type="radio" name="pick-entity" value=${e.id} checked=${entity === e.id} onChange=${() => setEntity(e.id)} />
                <span>${e.id === "*" ? html`<strong>All ${typeLabel(type).toLowerCase()}s</strong> <code>*</code>` : html`<code>${e.id}</code>`}</span>
                ${e.source === "config" ? html`<span class="muted small">configured</span>` : null}
              </label>`)}
              ${custom ? html`<label class="option">
                <input type="radio" name="pick-entity" value=${search.trim()} checked=${entity === search.trim()} onChange=${() => setEntity(search.trim())} />
                <span>Use <code>${search.trim()}</code></span>
              </label>` : null}
              ${entities.length === 0 && !custom ? html`<p class="muted small">Nothing matches.</p>` : null}
            </div>
          </fieldset>
          <fieldset class="field">
            <legend>Operations</legend>
            ${data.operations.length === 0 ? html`<p class="muted">You hold no operation on ${type} here.</p>` : null}
            <div class="options">
              ${data.operations.map((/** @type {string} */ op) => html`<label class="option">
                <input type="checkbox" value=${op} checked=${ops.has(op)} onChange=${() => toggle(op)} />
                <span class="option-text"><span>${opLabel(op)}</span><code class="small muted">${op}</code></span>
              </label>`)}
            </div>
          </fieldset>
        </div>`
      : null}
    <div class="row-actions">
      <button type="button" class="button" onClick=${onCancel}>Cancel</button>
      <button type="button" class="button primary" disabled=${!ready} onClick=${add}>Add${ops.size > 1 ? ` ${ops.size} scopes` : ""}</button>
    </div>
  </fieldset>`;
}

/** @param {any} a @param {any} b */
const same = (a, b) => a.domain_id === b.domain_id && a.entity_type === b.entity_type && a.entity_id === b.entity_id && a.operation === b.operation;

/** The scopes on a form, each removable. @param {{scopes: any[], onRemove: (s: any) => void}} props */
export function ScopeList({ scopes, onRemove }) {
  if (scopes.length === 0) return html`<p class="muted">No scopes yet. A token needs at least one.</p>`;
  return html`<ul class="scope-list">
    ${scopes.map((s) => html`<li>
      <span><span class="scope-words">${scopeWords(s)}</span> <code class="small muted">${s.domain_id} · ${scopeCode(s)}</code></span>
      <button type="button" class="button small" aria-label=${`Remove scope ${scopeWords(s)}`} onClick=${() => onRemove(s)}>Remove</button>
    </li>`)}
  </ul>`;
}

/** @param {any[]} list @param {any[]} more */
export function mergeScopes(list, more) {
  return [...list, ...more.filter((s) => !list.some((t) => same(s, t)))];
}

/**
 * The Create dialog. `initial` pre-fills it (Duplicate).
 * @param {{me: any, names: Set<string>, initial?: any, onCreated: (pat: any) => void, onClose: () => void}} props
 */
export function CreateDialog({ me, names, initial, onCreated, onClose }) {
  const maxMs = me.max_token_lifetime_seconds * 1000;
  const [name, setName] = useState(initial ? `${initial.name} (copy)` : "");
  const [description, setDescription] = useState(initial?.description ?? "");
  const [duration, setDuration] = useState(defaultDuration(maxMs));
  const [scopes, setScopes] = useState(/** @type {any[]} */ (initial?.scopes ?? []));
  const [picking, setPicking] = useState(!initial);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [formError, setFormError] = useState(/** @type {string | null} */ (null));
  const [limits, setLimits] = useState(limitTexts(initial?.limits));
  const [limitsOpen, setLimitsOpen] = useState(Boolean(initial?.limits));
  // The API's refusals per limit field (e.g. looser than policy), until that field is edited.
  const [limitRefusals, setLimitRefusals] = useState(/** @type {Record<string, string>} */ ({}));

  const trimmed = name.trim();
  const taken = trimmed !== "" && names.has(trimmed);
  const nameError = errors.name ?? (taken ? `You already have a token named “${trimmed}”.` : null);
  const ms = durationMs(duration);
  const ownLimits = readLimits(limits);
  const limitErrors = { ...ownLimits.errors, ...limitRefusals };
  const limitsOk = Object.keys(ownLimits.errors).length === 0;
  const valid = trimmed !== "" && !taken && ms !== null && ms <= maxMs && scopes.length > 0 && limitsOk;
  const limitsText = limitsWords(ownLimits.value);
  /** @param {Record<string, string>} next */
  const editLimits = (next) => {
    const kept = { ...limitRefusals };
    for (const k of Object.keys(kept)) if (next[k] !== limits[k] || k === "limits") delete kept[k];
    setLimitRefusals(kept);
    setLimits(next);
  };

  /** @param {Event} e */
  const submit = async (e) => {
    e.preventDefault();
    if (!valid || busy) return;
    setBusy(true);
    setErrors({});
    setFormError(null);
    try {
      const body = { name: trimmed, description, duration: durationText(/** @type {number} */ (ms)), scopes };
      const pat = await api("POST", "pats", ownLimits.value === null ? body : { ...body, limits: ownLimits.value });
      onCreated(pat);
    } catch (/** @type {any} */ err) {
      const f = errorField(err);
      const lf = limitErrorField(err);
      if (lf !== null) {
        setLimitRefusals({ [lf]: limitRefusalText(err, lf) });
        setLimitsOpen(true);
      } else if (["name", "description", "duration", "scopes"].includes(f)) setErrors({ [f]: err.message });
      else setFormError(err.message);
      setBusy(false);
    }
  };

  return html`<${Dialog} title=${initial ? "Duplicate token" : "Create a personal access token"} onClose=${onClose} wide>
    <form class="dialog-body" onSubmit=${submit} novalidate>
      <${Field} id="pat-name" label="Name" error=${nameError} hint=${!nameError && trimmed !== "" ? "Available." : "Something that says where it is used, e.g. “laptop” or “ci-nightly”."}>
        <input id="pat-name" value=${name} maxlength="100" required autocomplete="off" aria-invalid=${nameError ? "true" : "false"} aria-describedby="pat-name-hint pat-name-error" onInput=${(/** @type {any} */ e) => { setName(e.currentTarget.value); setErrors({ ...errors, name: undefined }); }} />
      </${Field}>
      <${Field} id="pat-desc" label="Description" optional error=${errors.description}>
        <textarea id="pat-desc" rows="2" maxlength="1000" value=${description} aria-describedby="pat-desc-error" onInput=${(/** @type {any} */ e) => setDescription(e.currentTarget.value)}></textarea>
      </${Field}>
      <${DurationPicker} id="pat-duration" maxMs=${maxMs} value=${duration} onChange=${setDuration} error=${errors.duration} />
      <section class="field" aria-labelledby="scopes-title">
        <div class="section-head">
          <h3 id="scopes-title">Scopes</h3>
          ${!picking ? html`<button type="button" class="button" onClick=${() => setPicking(true)}>Add scope</button>` : null}
        </div>
        <p class="hint">What the token may do. It never gets more than you hold: if your roles change, so does what it can do.</p>
        <${ScopeList} scopes=${scopes} onRemove=${(/** @type {any} */ s) => setScopes(scopes.filter((t) => !same(s, t)))} />
        ${picking ? html`<${ScopePicker} me=${me} onAdd=${(/** @type {any[]} */ more) => { setScopes(mergeScopes(scopes, more)); setPicking(false); }} onCancel=${() => setPicking(false)} />` : null}
        <p class="error" role=${errors.scopes ? "alert" : undefined}>${errors.scopes ?? ""}</p>
      </section>
      <${LimitsFields} id="pat-limits" texts=${limits} errors=${limitErrors} open=${limitsOpen} onOpen=${setLimitsOpen} onChange=${editLimits} />
      ${valid ? html`<section class="summary" aria-label="Summary">
        <h3>Summary</h3>
        <p>“${trimmed}” will be able to:</p>
        <ul>${scopes.map((s) => html`<li>${scopeWords(s)}</li>`)}</ul>
        <p>It stops working <strong title=${utc(Date.now() + /** @type {number} */ (ms))}>${local(Date.now() + /** @type {number} */ (ms))}</strong>, or sooner if you revoke it.</p>
        ${limitsText ? html`<p>Its own limits: ${limitsText}.</p>` : null}
      </section>` : null}
      <${Notice} error=${formError} />
      <footer class="dialog-foot">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="button primary" disabled=${!valid || busy} aria-busy=${busy ? "true" : "false"}>${busy ? "Creating…" : "Create token"}</button>
      </footer>
    </form>
  </${Dialog}>`;
}
