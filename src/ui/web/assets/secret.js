// @ts-check
/** The token, shown once: a read-only field, a copy button, ready snippets; closing asks first. */
import { useRef, useState } from "../vendor/hooks.js";
import { Dialog, copy, html } from "./ui.js";

/** @param {any} pat */
function snippets(pat) {
  const scope = pat.scopes.find((/** @type {any} */ s) => s.entity_type === "models" && s.entity_id !== "*");
  const domain = pat.scopes[0]?.domain_id ?? "<domain>";
  const model = scope?.entity_id ?? "<model>";
  const base = new URL(`../proxy/${encodeURIComponent(domain)}/v1`, location.href).href;
  return [
    {
      id: "curl",
      label: "curl",
      text: `export PATGATE_TOKEN='<paste the token>'\ncurl ${base}/chat/completions \\\n  -H "Authorization: Bearer $PATGATE_TOKEN" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}]}'`,
    },
    {
      id: "python",
      label: "OpenAI SDK (Python)",
      text: `import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${base}", api_key=os.environ["PATGATE_TOKEN"])\nreply = client.chat.completions.create(model="${model}", messages=[{"role": "user", "content": "Hello"}])\nprint(reply.choices[0].message.content)`,
    },
    {
      id: "node",
      label: "OpenAI SDK (JavaScript)",
      text: `import OpenAI from "openai";\n\nconst client = new OpenAI({ baseURL: "${base}", apiKey: process.env.PATGATE_TOKEN });\nconst reply = await client.chat.completions.create({ model: "${model}", messages: [{ role: "user", content: "Hello" }] });\nconsole.log(reply.choices[0].message.content);`,
    },
  ];
}

/**
 * @param {{pat: any, token: string, title?: string, onClose: () => void}} props
 */
export function TokenOnceDialog({ pat, token, title, onClose }) {
  const [copied, setCopied] = useState(/** @type {string | null} */ (null));
  const [confirming, setConfirming] = useState(false);
  const [tab, setTab] = useState("curl");
  /** @type {{current: HTMLInputElement | null}} */
  const field = useRef(null);
  const list = snippets(pat);
  const shown = list.find((s) => s.id === tab) ?? list[0];
  const doCopy = async () => {
    const ok = await copy(token);
    if (!ok) field.current?.select();
    setCopied(ok ? "token" : "select");
  };
  const close = () => (copied === "token" && confirming ? onClose() : setConfirming(true));

  return html`<${Dialog} title=${title ?? "Copy your new token"} onClose=${close} wide>
    <div class="dialog-body">
      <p class="callout"><strong>This is the only time the token is shown.</strong> Copy it now and keep it somewhere safe, such as a password manager or your CI's secret store.</p>
      <div class="field">
        <label for="new-token">Token “${pat.name}”</label>
        <div class="copy-row">
          <input id="new-token" ref=${field} class="mono" readonly value=${token} spellcheck="false" autocomplete="off" onFocus=${(/** @type {any} */ e) => e.currentTarget.select()} />
          <button type="button" class="button primary" onClick=${doCopy}>${copied === "token" ? "Copied ✓" : "Copy"}</button>
        </div>
        <p class="hint" role="status">${copied === "token" ? "Copied to the clipboard." : copied === "select" ? "The clipboard is not available here: the token is selected, press Ctrl+C (⌘C)." : ""}</p>
      </div>
      <div class="field">
        <div class="tabs" role="tablist" aria-label="Examples">
          ${list.map((s) => html`<button type="button" role="tab" id=${`tab-${s.id}`} aria-selected=${s.id === tab ? "true" : "false"} aria-controls="snippet" class=${s.id === tab ? "tab active" : "tab"} onClick=${() => setTab(s.id)}>${s.label}</button>`)}
        </div>
        <pre id="snippet" role="tabpanel" aria-labelledby=${`tab-${shown?.id}`} class="snippet" tabindex="0"><code>${shown?.text}</code></pre>
        <p class="hint">Put the token in the <code>PATGATE_TOKEN</code> environment variable rather than in a script.</p>
      </div>
      ${confirming
        ? html`<div class="confirm" role="alertdialog" aria-labelledby="confirm-close-title" aria-describedby="confirm-close-text">
            <p id="confirm-close-title"><strong>You will not see this token again.</strong></p>
            <p id="confirm-close-text">${copied === "token" ? "You copied it. Close the dialog?" : "You have not copied it yet. If you close now, you will have to rotate or create a new one."}</p>
            <div class="row-actions">
              <button type="button" class="button" onClick=${() => setConfirming(false)}>Go back</button>
              <button type="button" class="button danger" onClick=${onClose}>Close, I have saved it</button>
            </div>
          </div>`
        : null}
      <footer class="dialog-foot">
        <button type="button" class="button primary" onClick=${() => setConfirming(true)}>Done</button>
      </footer>
    </div>
  </${Dialog}>`;
}
