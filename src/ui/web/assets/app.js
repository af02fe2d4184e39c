// @ts-check
/** The page: who is signed in, the header with the profile menu, and the views by URL fragment. */
import { render } from "../vendor/preact.js";
import { useEffect, useRef, useState } from "../vendor/hooks.js";
import { ApiError, api, session, signInWithKey, signOut, whenSignedOut } from "./api.js";
import { AllTokensPage, DomainsPage, RolesPage } from "./operator.js";
import { TokenPage, TokensPage } from "./tokens.js";
import { UsagePage } from "./usage.js";
import { Field, Notice, Spinner, html } from "./ui.js";

const LOGIN_ERRORS = {
  login_failed: "Signing in did not complete. Please try again.",
  idp_unavailable: "The sign-in service did not answer. Try again in a moment.",
};

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  /** @param {string} h */
  const navigate = (h) => {
    if (location.hash === h) return;
    location.hash = h;
  };
  return [hash, navigate];
}

/** @param {{state: any, onSignedIn: () => void}} props */
function SignIn({ state, onSignedIn }) {
  const params = new URLSearchParams(location.search);
  const loginError = /** @type {Record<string,string>} */ (LOGIN_ERRORS)[params.get("login_error") ?? ""] ?? null;
  const [key, setKey] = useState("");
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [showKey, setShowKey] = useState(!state.oidc);
  /** @param {Event} e */
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signInWithKey(key);
      setKey("");
      history.replaceState(null, "", location.pathname);
      onSignedIn();
    } catch (/** @type {any} */ err) {
      setError(err.message);
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <div class="signin-card">
      <div class="brand big"><img src="assets/icon.svg" alt="" width="40" height="40" /> <span>patgate</span></div>
      <h1>Sign in</h1>
      <p class="lede">Manage the personal access tokens that let your scripts and tools reach the models you may use.</p>
      ${loginError ? html`<p class="notice notice-error" role="alert">${loginError}</p>` : null}
      ${state.oidc
        ? html`<a class="button primary block" href="auth/login">Sign in with your identity provider</a>`
        : html`<p class="notice">No identity provider is configured on this gateway, so only operators can sign in (with an admin key).</p>`}
      ${state.oidc && !showKey ? html`<button type="button" class="linklike" onClick=${() => setShowKey(true)}>Operator? Sign in with an admin key</button>` : null}
      ${showKey
        ? html`<form class="keyform" onSubmit=${submit}>
            <${Field} id="admin-key" label="Admin key" error=${error} hint="Exchanged once for a session; the key is not kept in this browser.">
              <input id="admin-key" type="password" autocomplete="off" spellcheck="false" value=${key} aria-describedby="admin-key-hint admin-key-error" onInput=${(/** @type {any} */ e) => setKey(e.currentTarget.value)} />
            </${Field}>
            <button type="submit" class="button block" disabled=${busy || key.trim() === ""}>${busy ? "Signing in…" : "Sign in as operator"}</button>
          </form>`
        : null}
    </div>
  </main>`;
}

/** @param {{who: any, onSignOut: () => void, navigate: (h: string) => void}} props */
function ProfileMenu({ who, onSignOut, navigate }) {
  const [open, setOpen] = useState(false);
  /** @type {{current: HTMLDivElement | null}} */
  const box = useRef(null);
  useEffect(() => {
    if (!open) return;
    /** @param {Event} e */
    const away = (e) => {
      if (box.current && !box.current.contains(/** @type {Node} */ (e.target))) setOpen(false);
    };
    /** @param {KeyboardEvent} e */
    const esc = (e) => e.key === "Escape" && setOpen(false);
    addEventListener("pointerdown", away);
    addEventListener("keydown", esc);
    /** @type {HTMLElement | null | undefined} */ (box.current?.querySelector("button[role=menuitem]"))?.focus();
    return () => {
      removeEventListener("pointerdown", away);
      removeEventListener("keydown", esc);
    };
  }, [open]);
  const name = who.display ?? who.user_id ?? "operator";
  /** @param {string} h */
  const go = (h) => {
    setOpen(false);
    navigate(h);
  };
  return html`<div class="profile" ref=${box}>
    <button type="button" class="profile-button" aria-haspopup="menu" aria-expanded=${open ? "true" : "false"} onClick=${() => setOpen(!open)}>
      <span class="avatar" aria-hidden="true">${name.slice(0, 1).toUpperCase()}</span>
      <span class="profile-name">${name}</span>
      <span aria-hidden="true">▾</span>
    </button>
    ${open
      ? html`<div class="menu" role="menu" aria-label="Profile">
          <p class="menu-head">${who.kind !== "operator" ? `Signed in as ${who.user_id}` : who.via === "oidc" ? "Operator, by your identity provider" : "Operator, by admin key"}</p>
          ${who.kind === "user" ? html`<button type="button" role="menuitem" onClick=${() => go("#/tokens")}>Personal Access Tokens</button>` : null}
          ${who.kind === "user" ? html`<button type="button" role="menuitem" onClick=${() => go("#/usage")}>Usage and limits</button>` : null}
          ${who.kind === "operator" ? html`<button type="button" role="menuitem" onClick=${() => go("#/admin/tokens")}>All tokens</button>` : null}
          ${who.kind === "operator" ? html`<button type="button" role="menuitem" onClick=${() => go("#/admin/usage")}>Usage</button>` : null}
          <button type="button" role="menuitem" onClick=${onSignOut}>Sign out</button>
        </div>`
      : null}
  </div>`;
}

function App() {
  const [state, setState] = useState(/** @type {any} */ (null));
  const [me, setMe] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {string | null} */ (null));
  const [hash, navigate] = useHash();

  const refresh = async () => {
    setError(null);
    try {
      const s = await session();
      setState(s);
      setMe(s.signed_in ? await api("GET", "me") : null);
    } catch (/** @type {any} */ e) {
      if (e instanceof ApiError && e.status === 401) setMe(null);
      else setError(e.message);
    }
  };
  useEffect(() => {
    whenSignedOut(() => {
      setMe(null);
      setState((/** @type {any} */ s) => (s === null ? s : { ...s, signed_in: false }));
    });
    void refresh();
  }, []);
  // One title per view, so the browser's history and screen readers say where you are.
  useEffect(() => {
    document.title = `${viewTitle(String(hash), me)} · patgate`;
    document.getElementById("main")?.focus({ preventScroll: true });
  }, [hash, me === null]);

  if (error) return html`<main id="main" class="signin"><${Notice} error=${error} /><button type="button" class="button" onClick=${refresh}>Try again</button></main>`;
  if (state === null) return html`<main id="main" class="boot"><${Spinner} /></main>`;
  if (!state.signed_in || me === null) return html`<${SignIn} state=${state} onSignedIn=${refresh} />`;

  const who = { ...state, kind: me.kind, user_id: me.user_id };
  const operator = me.kind === "operator";
  const h = String(hash);
  const nav = /** @type {(h: string) => void} */ (navigate);
  let view;
  const m = /^#\/tokens\/([0-9a-f-]{36})$/.exec(h);
  if (operator) {
    if (h === "#/admin/domains") view = html`<${DomainsPage} />`;
    else if (h === "#/admin/roles") view = html`<${RolesPage} me=${me} />`;
    else if (h === "#/admin/usage") view = html`<${UsagePage} me=${me} operator navigate=${nav} />`;
    else view = html`<${AllTokensPage} />`;
  } else if (m) view = html`<${TokenPage} me=${me} id=${m[1]} navigate=${nav} />`;
  else if (h === "#/usage") view = html`<${UsagePage} me=${me} navigate=${nav} />`;
  else view = html`<${TokensPage} me=${me} navigate=${nav} />`;

  const link = (/** @type {string} */ to, /** @type {string} */ label, /** @type {boolean} */ current) =>
    html`<a href=${to} aria-current=${current ? "page" : undefined} onClick=${(/** @type {Event} */ e) => { e.preventDefault(); nav(to); }}>${label}</a>`;
  return html`<a class="skip" href="#main" onClick=${(/** @type {Event} */ e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>Skip to content</a>
    <header class="top">
      <div class="top-inner">
        <a class="brand" href="#/" onClick=${(/** @type {Event} */ e) => { e.preventDefault(); nav(operator ? "#/admin/tokens" : "#/tokens"); }}><img src="assets/icon.svg" alt="" width="24" height="24" /> <span>patgate</span></a>
        <nav class="nav" aria-label="Main">
          ${operator
            ? html`${link("#/admin/tokens", "All tokens", h === "#/admin/tokens" || h === "" || h === "#/")}${link("#/admin/domains", "Domains", h === "#/admin/domains")}${link("#/admin/roles", "Roles", h === "#/admin/roles")}${link("#/admin/usage", "Usage", h === "#/admin/usage")}`
            : html`${link("#/tokens", "Tokens", h !== "#/usage")}${link("#/usage", "Usage", h === "#/usage")}`}
        </nav>
        <${ProfileMenu} who=${who} navigate=${nav} onSignOut=${async () => { await signOut(); setMe(null); setState({ ...state, signed_in: false }); nav("#/"); }} />
      </div>
    </header>
    <main id="main" tabindex="-1" class="content">${view}</main>`;
}

/** @param {string} h @param {any} me */
function viewTitle(h, me) {
  if (me === null) return "Sign in";
  if (h === "#/admin/domains") return "Domains";
  if (h === "#/admin/roles") return "Roles";
  if (h === "#/admin/usage" || h === "#/usage") return "Usage";
  if (me.kind === "operator") return "All tokens";
  if (h.startsWith("#/tokens/")) return "Token";
  return "Personal Access Tokens";
}

const root = document.getElementById("app");
if (root !== null) {
  root.textContent = "";
  render(html`<${App} />`, root);
}
