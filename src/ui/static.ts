/**
 * The page's files, read once at start into memory (with their ETags) and
 * served with strict headers. Vendor modules come from the installed packages
 * (preact, htm); the one bare import among them is pointed at its file here,
 * since an import map would need an inline script the CSP forbids.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/**
 * Every response under /ui/. No inline script or style anywhere (`'self'` only),
 * nothing from elsewhere, never framed, no Referer leaves the page.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; " +
    "manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
};

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

// Vendor modules: served path → [package specifier, rewrites of bare imports].
const VENDOR: ReadonlyArray<readonly [string, string, ReadonlyArray<readonly [string, string]>]> = [
  ["vendor/preact.js", "preact", []],
  ["vendor/hooks.js", "preact/hooks", [['from"preact"', 'from"./preact.js"']]],
  ["vendor/htm.js", "htm", []],
];

/** Where the page's own files are: next to this module, or (compiled build) in the package's src/ui/web. */
export function webDir(): string {
  const here = path.join(import.meta.dirname, "web");
  if (existsSync(path.join(here, "index.html"))) return here;
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "src", "ui", "web");
    if (existsSync(path.join(candidate, "index.html"))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`the web page's files (src/ui/web) are missing next to ${import.meta.dirname}`);
  }
}

/** Reads every asset once; throws when one is missing or a vendor module changed shape. */
export function loadAssets(dir = webDir()): ReadonlyMap<string, Asset> {
  const out = new Map<string, Asset>();
  const add = (name: string, body: Buffer): void => {
    const type = TYPES[path.extname(name)];
    if (type === undefined) return;
    out.set(name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` });
  };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    add(path.relative(dir, full).split(path.sep).join("/"), readFileSync(full));
  }
  for (const [name, spec, rewrites] of VENDOR) {
    let text = readFileSync(fileURLToPath(import.meta.resolve(spec)), "utf8");
    for (const [from, to] of rewrites) {
      if (!text.includes(from)) throw new Error(`${spec}: expected the import ${from} to rewrite; was the package upgraded?`);
      text = text.replaceAll(from, to);
    }
    if (/\bfrom\s*["'][^./]/.test(text)) throw new Error(`${spec}: a bare import is left that browsers cannot resolve`);
    add(name, Buffer.from(text));
  }
  if (!out.has("index.html")) throw new Error(`${dir}: index.html is missing`);
  return out;
}
