// @ts-check
/**
 * Usage: requests and LLM tokens per token, domain and model over a chosen
 * range (GET usage, one call grouped by every dimension and summed here), and
 * how much of each limit is used now (GET me/limits). Users see their own
 * tokens (the API allows nothing else); operators everyone's, or one user's.
 */
import { useEffect, useState } from "../vendor/hooks.js";
import { api } from "./api.js";
import { local, localDate, zone } from "./format.js";
import { Meter, count, dimensionWords } from "./limits.js";
import { Notice, Spinner, Time, html } from "./ui.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The ranges offered; the bucket width follows (hours for a day, days beyond). */
export const RANGES = [
  { key: "24h", label: "Last 24 hours", ms: DAY, width: "1h", per: "per hour" },
  { key: "7d", label: "Last 7 days", ms: 7 * DAY, width: "1d", per: "per day" },
  { key: "30d", label: "Last 30 days", ms: 30 * DAY, width: "1d", per: "per day" },
];

// Why a request made a moment ago may not be counted yet (usage.flush_interval).
const FLUSH_HINT = "The gateway writes usage every few seconds, so the newest requests can take a moment to appear; Refresh reads it again.";

const GROUP_LABEL = { api_key_id: "Token", user_id: "User", domain_id: "Domain", model: "Model" };

/** @typedef {{requests: number, input: number, output: number, estRequests: number, estTokens: number}} Totals */
/** @typedef {{key: string | null, totals: Totals, series: number[]}} Row */

/** @returns {Totals} */
function zero() {
  return { requests: 0, input: 0, output: 0, estRequests: 0, estTokens: 0 };
}

/** @param {Totals} t @param {any} r */
function add(t, r) {
  t.requests += r.num_model_requests;
  t.input += r.input_tokens;
  t.output += r.output_tokens;
  t.estRequests += r.estimated_requests;
  t.estTokens += r.estimated_input_tokens + r.estimated_output_tokens;
}

/**
 * A usage page summed per value of `group`, with each row's tokens per bucket
 * (for its sparkline); rows by tokens, then requests, most first.
 * @param {any} page @param {string} group
 * @returns {{rows: Row[], total: Totals, starts: number[]}}
 */
export function summarise(page, group) {
  const starts = page.data.map((/** @type {any} */ b) => b.start_time * 1000);
  /** @type {Map<string | null, Row>} */
  const byKey = new Map();
  const total = zero();
  page.data.forEach((/** @type {any} */ bucket, /** @type {number} */ i) => {
    for (const r of bucket.results) {
      const key = r[group] ?? null;
      let row = byKey.get(key);
      if (row === undefined) byKey.set(key, (row = { key, totals: zero(), series: starts.map(() => 0) }));
      add(row.totals, r);
      add(total, r);
      row.series[i] = /** @type {number} */ (row.series[i]) + r.input_tokens + r.output_tokens;
    }
  });
  const rows = [...byKey.values()].sort((a, b) => tokens(b.totals) - tokens(a.totals) || b.totals.requests - a.totals.requests);
  return { rows, total, starts };
}

/** @param {Totals} t */
const tokens = (t) => t.input + t.output;

/** "42 %", "< 1 %", "—" for nothing to share. @param {number} part @param {number} whole */
function percent(part, whole) {
  if (whole === 0) return "—";
  const p = (100 * part) / whole;
  if (part > 0 && p < 1) return "< 1 %";
  return `${Math.round(p)} %`;
}

/**
 * Bars for one row's tokens per bucket, scaled to its own largest bucket.
 * @param {{series: number[], starts: number[], width: string, label: string}} props
 */
function Sparkline({ series, starts, width, label }) {
  const max = Math.max(0, ...series);
  const n = series.length;
  const when = (/** @type {number} */ i) => (width === "1h" ? local(/** @type {number} */ (starts[i])) : localDate(/** @type {number} */ (starts[i])));
  const busiest = max === 0 ? "no tokens" : `most ${count(max)} tokens, ${when(series.indexOf(max))}`;
  return html`<svg class="spark" viewBox=${`0 0 ${n} 20`} preserveAspectRatio="none" role="img" aria-label=${`${label}: ${busiest}`}>
    <line class="spark-base" x1="0" y1="19.5" x2=${n} y2="19.5" />
    ${series.map((v, i) => {
      const h = max === 0 || v === 0 ? 0 : Math.max(1.5, (v / max) * 19);
      return html`<rect class="spark-bar" x=${i + 0.12} y=${19.5 - h} width="0.76" height=${h}><title>${when(i)}: ${count(v)} tokens</title></rect>`;
    })}
  </svg>`;
}

/** The share of all tokens as a bar and a number. @param {{part: number, whole: number}} props */
function Share({ part, whole }) {
  const w = whole === 0 ? 0 : (100 * part) / whole;
  return html`<span class="share">
    <svg class="share-bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">
      <rect class="meter-track" x="0" y="0" width="100" height="8" rx="4" />
      <rect class="share-fill" x="0" y="0" width=${w.toFixed(2)} height="8" rx="4" />
    </svg>
    <span class="share-text">${percent(part, whole)}</span>
  </span>`;
}

/**
 * One table of a summary: a row per token, domain, model or user.
 * @param {{summary: {rows: Row[], total: Totals, starts: number[]}, group: string, width: string, per: string, name: (key: string | null) => any, caption: string}} props
 */
export function UsageTable({ summary, group, width, per, name, caption }) {
  const { rows, total, starts } = summary;
  if (rows.length === 0) return html`<p class="empty-row">No requests in this range.</p>`;
  const head = /** @type {Record<string, string>} */ (GROUP_LABEL)[group] ?? group;
  return html`<div class="table-wrap"><table class="table usage">
    <caption class="sr-only">${caption}</caption>
    <thead><tr>
      <th scope="col">${head}</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Input tokens</th><th scope="col" class="num">Output tokens</th>
      <th scope="col">Share of tokens</th><th scope="col" class="num"><abbr title="Tokens charged as reserved, for answers that reported no usage">Estimated</abbr></th><th scope="col">Tokens ${per}</th>
    </tr></thead>
    <tbody>
      ${rows.map((r) => html`<tr data-key=${r.key ?? ""}>
        <td data-label=${head} class="usage-name">${name(r.key)}</td>
        <td data-label="Requests" class="num">${count(r.totals.requests)}</td>
        <td data-label="Input tokens" class="num">${count(r.totals.input)}</td>
        <td data-label="Output tokens" class="num">${count(r.totals.output)}</td>
        <td data-label="Share of tokens"><${Share} part=${tokens(r.totals)} whole=${tokens(total)} /></td>
        <td data-label="Estimated" class="num" title=${r.totals.estRequests === 0 ? "Every answer reported its usage." : `${count(r.totals.estRequests)} requests reported no usage and were charged their reservation (${count(r.totals.estTokens)} tokens).`}>${r.totals.estTokens === 0 ? html`<span class="muted">none</span>` : percent(r.totals.estTokens, tokens(r.totals))}</td>
        <td data-label=${`Tokens ${per}`}><${Sparkline} series=${r.series} starts=${starts} width=${width} label=${`Tokens ${per}`} /></td>
      </tr>`)}
    </tbody>
  </table></div>`;
}

/** The totals of a range, as four figures. @param {{total: Totals}} props */
function Figures({ total }) {
  const items = [
    ["Requests", count(total.requests)],
    ["Input tokens", count(total.input)],
    ["Output tokens", count(total.output)],
    ["Estimated", total.estTokens === 0 ? "none" : `${count(total.estTokens)} tokens`],
  ];
  return html`<dl class="figures">${items.map(([k, v]) => html`<div class="figure"><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>`;
}

/** @param {{value: string, onChange: (k: string) => void, id: string}} props */
function RangePicker({ value, onChange, id }) {
  return html`<div class="field compact range">
    <label for=${id}>Range</label>
    <select id=${id} value=${value} onChange=${(/** @type {any} */ e) => onChange(e.currentTarget.value)}>
      ${RANGES.map((r) => html`<option value=${r.key}>${r.label} (${r.per})</option>`)}
    </select>
  </div>`;
}

/** @param {string} key */
function rangeOf(key) {
  return RANGES.find((r) => r.key === key) ?? /** @type {typeof RANGES[number]} */ (RANGES[1]);
}

/** The query for a range: start in Unix seconds, the width, and more (api_key_id, user_id…). @param {typeof RANGES[number]} range @param {Record<string, string>} more */
function usagePath(range, more) {
  // The most buckets a page may hold (GET usage pages like OpenAI's Usage API); allPages follows the rest.
  const limit = range.width === "1h" ? "168" : "31";
  const q = new URLSearchParams({ start_time: String(Math.floor((Date.now() - range.ms) / 1000)), bucket_width: range.width, limit, ...more });
  return `usage?${q}`;
}

/** GET usage, page after page (next_page), as one page holding every bucket. @param {string} path */
async function allPages(path) {
  const first = await api("GET", path);
  const data = [...first.data];
  for (let page = first; page.has_more === true && typeof page.next_page === "string"; ) {
    page = await api("GET", `${path}&page=${encodeURIComponent(page.next_page)}`);
    data.push(...page.data);
  }
  return { ...first, data, has_more: false, next_page: null };
}

/**
 * Loads a usage page and GET me/limits for the given query; `again` reloads both.
 * @param {string} path @param {string | null} limitsPath
 */
function useUsage(path, limitsPath) {
  const [state, setState] = useState(/** @type {{page: any, limits: any, error: string | null, loadedAt: number}} */ ({ page: null, limits: null, error: null, loadedAt: 0 }));
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, error: null }));
    Promise.all([allPages(path), limitsPath === null ? Promise.resolve(null) : api("GET", limitsPath)]).then(
      ([page, limits]) => live && setState({ page, limits, error: null, loadedAt: Date.now() }),
      (e) => live && setState((s) => ({ ...s, error: e.message })),
    );
    return () => {
      live = false;
    };
  }, [path, limitsPath, tick]);
  return { ...state, again: () => setTick(tick + 1) };
}

/**
 * How much of each limit counting these tokens is used now.
 * @param {{limits: any, names: Map<string, string>, only?: string}} props
 */
export function LimitsNow({ limits, names, only }) {
  const label = (/** @type {any} */ l) => (l.pat_id === null ? "" : (names.get(l.pat_id) ?? l.pat_id));
  // Per token (the user's own policies first), its own limits before the gateway's.
  const rows = limits.limits
    .filter((/** @type {any} */ l) => only === undefined || l.pat_id === null || l.pat_id === only)
    .sort((/** @type {any} */ a, /** @type {any} */ b) => label(a).localeCompare(label(b)) || Number(b.policy === "pat-own") - Number(a.policy === "pat-own"));
  if (rows.length === 0) return html`<p class="muted">No limit counts ${only === undefined ? "these tokens" : "this token"}: the gateway has no per-token or per-user policy${only === undefined ? "" : " and the token has no limits of its own"}.</p>`;
  const whom = (/** @type {any} */ l) => (l.pat_id === null ? html`<span>all tokens of ${limits.user_id} together</span>` : html`<span>${names.get(l.pat_id) ?? html`<code class="small">${l.pat_id.slice(0, 8)}</code>`}</span>`);
  return html`<div class="table-wrap"><table class="table limits-use">
    <caption class="sr-only">Limits now</caption>
    <thead><tr><th scope="col">Policy</th><th scope="col">Counts</th><th scope="col">Limit</th><th scope="col">Used now</th><th scope="col">Frees up</th></tr></thead>
    <tbody>
      ${rows.flatMap((/** @type {any} */ l) => l.dimensions.map((/** @type {any} */ d) => html`<tr data-policy=${l.policy} data-pat=${l.pat_id ?? ""} data-dimension=${d.dimension}>
        <td data-label="Policy">${l.policy === "pat-own" ? html`<span>own limits</span>` : html`<code>${l.policy}</code>`}${l.mode === "shadow" ? html` <span class="badge badge-expired" title="Counted and logged, not enforced">shadow</span>` : null}</td>
        <td data-label="Counts">${only === undefined || l.pat_id === null ? whom(l) : html`<span>this token</span>`}</td>
        <td data-label="Limit">${count(d.limit)} ${dimensionWords(d.dimension)}</td>
        <td data-label="Used now"><${Meter} used=${d.used} limit=${d.limit} label=${`${l.policy} ${dimensionWords(d.dimension)}`} /></td>
        <td data-label="Frees up">${d.resets_at === null ? html`<span class="muted">${d.dimension === "concurrent" ? "as requests end" : "nothing counted"}</span>` : html`<${Time} t=${d.resets_at} />`}</td>
      </tr>`))}
    </tbody>
  </table></div>`;
}

/** A short id for a token that is gone or unknown. @param {string} id */
function shortId(id) {
  return html`<span><code class="small">${id.slice(0, 8)}</code> <span class="muted small">(deleted)</span></span>`;
}

/**
 * Profile → Usage (users) and Operator → Usage (everyone's, or one user's).
 * @param {{me: any, operator?: boolean, navigate: (h: string) => void}} props
 */
export function UsagePage({ me, operator, navigate }) {
  const [rangeKey, setRangeKey] = useState("7d");
  const [group, setGroup] = useState("api_key_id");
  const [userInput, setUserInput] = useState("");
  const [user, setUser] = useState("");
  const [pats, setPats] = useState(/** @type {Map<string, any>} */ (new Map()));
  const range = rangeOf(rangeKey);
  const groups = operator ? ["api_key_id", "user_id", "domain_id", "model"] : ["api_key_id", "domain_id", "model"];
  const more = { group_by: groups.join(","), ...(operator && user !== "" ? { user_id: user } : {}) };
  const limitsPath = !operator ? "me/limits" : user !== "" ? `me/limits?user_id=${encodeURIComponent(user)}` : null;
  const { page, limits, error, loadedAt, again } = useUsage(usagePath(range, more), limitsPath);

  // Token names: a user's own list; an operator asks for each token the page shows.
  useEffect(() => {
    if (page === null) return;
    const ids = new Set();
    for (const b of page.data) for (const r of b.results) if (r.api_key_id !== null && !pats.has(r.api_key_id)) ids.add(r.api_key_id);
    if (limits !== null) for (const l of limits.limits) if (l.pat_id !== null && !pats.has(l.pat_id)) ids.add(l.pat_id);
    if (ids.size === 0) return;
    let live = true;
    const lookups = operator
      ? Promise.all([...ids].slice(0, 100).map((id) => api("GET", `pats/${id}`).catch(() => ({ id, gone: true }))))
      : api("GET", "pats?limit=100").then(async (first) => {
          // Every page of the user's tokens; deleted ones are simply not among them.
          const out = [...first.pats];
          for (let offset = out.length; offset < first.total; offset += 100) out.push(...(await api("GET", `pats?offset=${offset}&limit=100`)).pats);
          return out;
        });
    lookups.then(
      (list) => {
        if (!live) return;
        const next = new Map(pats);
        for (const p of list) next.set(p.id, p);
        for (const id of ids) if (!next.has(id)) next.set(id, { id, gone: true });
        setPats(next);
      },
      () => {},
    );
    return () => {
      live = false;
    };
  }, [page, limits]);

  const domainNames = new Map(me.domains.map((/** @type {any} */ d) => [d.id, d.name]));
  /** @param {string | null} key */
  const name = (key) => {
    if (key === null) return html`<span class="muted">(none)</span>`;
    if (group === "api_key_id") {
      const p = pats.get(key);
      if (p === undefined) return html`<code class="small">${key.slice(0, 8)}</code>`;
      if (p.gone) return shortId(key);
      const label = operator ? html`${p.name} <span class="muted small">of ${p.user_id}</span>` : p.name;
      return operator ? html`<span>${label}</span>` : html`<a href=${`#/tokens/${key}`} onClick=${(/** @type {Event} */ e) => { e.preventDefault(); navigate(`#/tokens/${key}`); }}>${label}</a>`;
    }
    if (group === "domain_id") {
      const n = domainNames.get(key);
      return n === undefined || n === key ? html`<span>${key}</span>` : html`<span>${n} <span class="muted small">${key}</span></span>`;
    }
    return group === "model" ? html`<code>${key}</code>` : html`<span>${key}</span>`;
  };
  const names = new Map([...pats.values()].filter((p) => !p.gone).map((p) => [p.id, p.name]));
  const summary = page === null ? null : summarise(page, group);
  const whose = operator ? (user === "" ? "every user's access tokens" : `${user}'s access tokens`) : "your personal access tokens";

  return html`<div class="page-head">
      <div>
        <nav aria-label="Breadcrumb" class="crumbs"><span>${operator ? "Operator" : "Profile"}</span> <span aria-hidden="true">›</span> <span aria-current="page">Usage</span></nav>
        <h1>Usage</h1>
        <p class="lede">Requests and LLM tokens through ${whose}, as the models reported them, and how much of each limit is used now.</p>
      </div>
    </div>
    <section class="panel" aria-labelledby="usage-h">
      <div class="section-head"><h2 id="usage-h">Requests and tokens</h2></div>
      <div class="toolbar">
        <${RangePicker} id="usage-range" value=${rangeKey} onChange=${setRangeKey} />
        <div class="field compact">
          <span class="field-label" id="usage-group-label">Group by</span>
          <div class="segmented" role="radiogroup" aria-labelledby="usage-group-label">
            ${groups.map((g) => html`<label class=${g === group ? "segment on" : "segment"}>
              <input type="radio" name="usage-group" value=${g} checked=${g === group} onChange=${() => setGroup(g)} />
              <span>${/** @type {Record<string, string>} */ (GROUP_LABEL)[g]}</span>
            </label>`)}
          </div>
        </div>
        ${operator
          ? html`<form class="field compact" role="search" onSubmit=${(/** @type {Event} */ e) => { e.preventDefault(); setUser(userInput.trim()); }}>
              <label for="usage-user">User</label>
              <input id="usage-user" type="search" placeholder="Everyone" value=${userInput} onInput=${(/** @type {any} */ e) => setUserInput(e.currentTarget.value)} onChange=${(/** @type {any} */ e) => setUser(e.currentTarget.value.trim())} />
            </form>`
          : null}
        <button type="button" class="button" onClick=${again}>Refresh</button>
      </div>
      ${error ? html`<${Notice} error=${error} />` : null}
      ${summary === null
        ? error ? null : html`<${Spinner} label="Loading usage…" />`
        : html`<${Figures} total=${summary.total} />
          <${UsageTable} summary=${summary} group=${group} width=${range.width} per=${range.per} name=${name} caption=${`Usage by ${(/** @type {Record<string, string>} */ (GROUP_LABEL)[group] ?? group).toLowerCase()}, ${range.label.toLowerCase()}`} />
          <p class="hint">Buckets are whole ${range.width === "1h" ? "hours" : "days"} (UTC); times are in your time zone (${zone()}). ${FLUSH_HINT}${loadedAt ? html` Loaded <${Time} t=${new Date(loadedAt).toISOString()} />.` : null}</p>`}
    </section>
    <section class="panel" aria-labelledby="limits-now-h">
      <div class="section-head"><h2 id="limits-now-h">Limits now</h2></div>
      ${limits !== null
        ? html`<${LimitsNow} limits=${limits} names=${names} />`
        : operator && user === ""
          ? html`<p class="muted">Name a user above to see how much of their limits is used now.</p>`
          : error ? null : html`<${Spinner} />`}
    </section>`;
}

/**
 * A token's own usage, on its page: per model over a range, and its limits now.
 * @param {{pat: any}} props
 */
export function TokenUsage({ pat }) {
  const [rangeKey, setRangeKey] = useState("7d");
  const range = rangeOf(rangeKey);
  const { page, limits, error, again } = useUsage(usagePath(range, { api_key_id: pat.id, group_by: "model" }), "me/limits");
  const summary = page === null ? null : summarise(page, "model");
  const name = (/** @type {string | null} */ key) => (key === null ? html`<span class="muted">(none)</span>` : html`<code>${key}</code>`);
  return html`<section class="panel" aria-labelledby="token-usage-h">
    <div class="section-head">
      <h2 id="token-usage-h">Usage</h2>
      <div class="toolbar tight">
        <${RangePicker} id="token-usage-range" value=${rangeKey} onChange=${setRangeKey} />
        <button type="button" class="button" onClick=${again}>Refresh</button>
      </div>
    </div>
    ${error ? html`<${Notice} error=${error} />` : null}
    ${summary === null
      ? error ? null : html`<${Spinner} label="Loading usage…" />`
      : html`<${Figures} total=${summary.total} />
        <${UsageTable} summary=${summary} group="model" width=${range.width} per=${range.per} name=${name} caption=${`Usage of ${pat.name} by model, ${range.label.toLowerCase()}`} />
        <p class="hint">${FLUSH_HINT}</p>`}
    <h3 class="sub-head">Limits now</h3>
    ${limits === null ? (error ? null : html`<${Spinner} />`) : html`<${LimitsNow} limits=${limits} names=${new Map([[pat.id, pat.name]])} only=${pat.id} />`}
  </section>`;
}
