// @ts-check
/** Small shared pieces: the html tag, dialogs, times, badges, fields. */
import { h } from "../vendor/preact.js";
import { useEffect, useRef } from "../vendor/hooks.js";
import htm from "../vendor/htm.js";
import { STATUS_LABEL, local, relative, utc } from "./format.js";

export const html = htm.bind(h);

/**
 * A modal <dialog>: focus moves into it, Escape and the backdrop call onClose
 * (which may refuse, e.g. to ask "you will not see this token again").
 * @param {{title: string, onClose: () => void, children?: any, wide?: boolean, labelId?: string, role?: string}} props
 */
export function Dialog({ title, onClose, children, wide, role }) {
  /** @type {{current: HTMLDialogElement | null}} */
  const ref = useRef(null);
  const id = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  useEffect(() => {
    const d = ref.current;
    if (d !== null && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  /** @param {Event} e */
  const cancel = (e) => {
    e.preventDefault();
    onClose();
  };
  return html`<dialog ref=${ref} class=${wide ? "dialog wide" : "dialog"} aria-labelledby=${id} role=${role ?? "dialog"} onCancel=${cancel}>
    <header class="dialog-head">
      <h2 id=${id}>${title}</h2>
      <button type="button" class="icon-button" aria-label="Close" onClick=${onClose}>×</button>
    </header>
    ${children}
  </dialog>`;
}

/** A time: relative words, the local time on screen for screen readers, exact UTC on hover. @param {{t: string | null, never?: string}} props */
export function Time({ t, never }) {
  if (t === null) return html`<span class="muted">${never ?? "never"}</span>`;
  return html`<time datetime=${t} title=${`${local(t)} — ${utc(t)}`}>${relative(t)}</time>`;
}

/** @param {{status: string}} props */
export function Badge({ status }) {
  return html`<span class=${`badge badge-${status}`}>${/** @type {Record<string,string>} */ (STATUS_LABEL)[status] ?? status}</span>`;
}

/**
 * A labelled control with its hint and its error beside it (the API's message).
 * @param {{id: string, label: string, hint?: any, error?: string | null, children: any, optional?: boolean}} props
 */
export function Field({ id, label, hint, error, children, optional }) {
  return html`<div class=${error ? "field has-error" : "field"}>
    <label for=${id}>${label}${optional ? html` <span class="muted">(optional)</span>` : null}</label>
    ${children}
    ${hint ? html`<p class="hint" id=${`${id}-hint`}>${hint}</p>` : null}
    <p class="error" id=${`${id}-error`} role=${error ? "alert" : undefined}>${error ?? ""}</p>
  </div>`;
}

/** @param {{label?: string}} props */
export function Spinner({ label }) {
  return html`<span class="spinner" role="status"><span class="spinner-dot" aria-hidden="true"></span>${label ?? "Loading…"}</span>`;
}

/** A notice for the whole page or dialog (errors without a field). @param {{error: string | null}} props */
export function Notice({ error }) {
  return html`<p class=${error ? "notice notice-error" : "notice notice-empty"} role=${error ? "alert" : undefined}>${error ?? ""}</p>`;
}

/** Which field an API error belongs to: the param, or its first segment (`scopes[0].operation` → `scopes`). @param {any} err */
export function errorField(err) {
  const p = typeof err?.param === "string" ? err.param : "";
  return p.replace(/[[.].*$/, "");
}

/** Copies text; true when the clipboard took it. @param {string} text */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
