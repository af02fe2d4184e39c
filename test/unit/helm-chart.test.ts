/**
 * Checks helm/patgate as far as a machine without a cluster allows: chart
 * metadata, values against values.schema.json, template syntax (balanced
 * blocks, known functions, defined includes), every .Values reference against
 * values.yaml and every value against the templates, no secrets in values,
 * the streaming ingress settings, and the ConfigMap's copies of patgate.yaml
 * and routes.yaml against the repository's. With `helm` on the PATH it also
 * runs `helm lint` and `helm template`; without it those cases are skipped.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { loadSettings } from "../../src/config/config.ts";
import { RouteTableHolder } from "../../src/routing/holder.ts";
import { parseSize } from "../../src/util/size.ts";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const CHART = path.join(ROOT, "helm", "patgate");
const TEMPLATES = path.join(CHART, "templates");

type Obj = Record<string, unknown>;
interface SchemaNode {
  type?: string;
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean;
}

const read = (file: string): string => readFileSync(file, "utf8");
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

const values = parseYaml(read(path.join(CHART, "values.yaml"))) as Obj;
const valuesText = read(path.join(CHART, "values.yaml"));
const schema = JSON.parse(read(path.join(CHART, "values.schema.json"))) as SchemaNode;
const templateFiles = readdirSync(TEMPLATES).sort();
const templates = new Map(templateFiles.map((f) => [f, read(path.join(TEMPLATES, f))]));

function template(name: string): string {
  const text = templates.get(name);
  if (text === undefined) throw new Error(`templates/${name} is missing`);
  return text;
}

function get(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const seg of dotted.split(".")) {
    if (!isObj(cur) || !Object.hasOwn(cur, seg)) return undefined;
    cur = cur[seg];
  }
  return cur;
}

// ---- Go template scanning ----------------------------------------------------

interface Action {
  readonly file: string;
  readonly line: number;
  /** The action without delimiters and trim markers. */
  readonly body: string;
}

/** Every {{ … }} action of a template, comments included (body starting with /*). */
function actionsOf(file: string, text: string): Action[] {
  const out: Action[] = [];
  let i = 0;
  while ((i = text.indexOf("{{", i)) !== -1) {
    let j = i + 2;
    let quote: string | null = null;
    let inComment = /^\{\{-?\s*\/\*/.test(text.slice(i, i + 6));
    for (; j < text.length; j++) {
      const ch = text[j];
      if (inComment) {
        if (text.startsWith("*/", j)) {
          inComment = false;
          j++;
        }
      } else if (quote !== null) {
        if (ch === "\\" && quote === '"') j++;
        else if (ch === quote) quote = null;
      } else if (ch === '"' || ch === "`") {
        quote = ch;
      } else if (text.startsWith("}}", j)) {
        break;
      }
    }
    const line = text.slice(0, i).split("\n").length;
    if (j >= text.length) throw new Error(`${file}:${line}: "{{" without a closing "}}"`);
    const body = text.slice(i + 2, j).replace(/^-\s/, "").replace(/\s-$/, "").trim();
    out.push({ file, line, body });
    i = j + 2;
  }
  return out;
}

const BLOCK_OPENERS = new Set(["if", "range", "with", "define", "block"]);
// text/template keywords and builtins, Helm's own functions, and the Sprig
// functions the chart may use. A name outside this list is a typo or a
// function helm does not have.
const KNOWN_FUNCTIONS = new Set([
  // text/template
  "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil", "true", "false",
  "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge", "call", "html", "js", "urlquery",
  // Helm
  "include", "tpl", "required", "fail", "lookup", "toYaml", "fromYaml", "fromYamlArray", "toJson", "fromJson", "fromJsonArray", "toToml", "mustToYaml",
  // Sprig
  "default", "empty", "coalesce", "ternary", "quote", "squote", "trim", "trimAll", "trimPrefix", "trimSuffix", "trunc", "lower", "upper", "title",
  "replace", "contains", "hasPrefix", "hasSuffix", "repeat", "substr", "nospace", "cat", "indent", "nindent", "wrap", "toString", "toStrings",
  "int", "int64", "float64", "atoi", "add", "add1", "sub", "mul", "div", "mod", "max", "min", "round", "until", "untilStep", "seq",
  "list", "append", "prepend", "concat", "first", "last", "rest", "initial", "uniq", "without", "has", "compact", "reverse", "sortAlpha", "join", "splitList", "split",
  "dict", "get", "set", "unset", "hasKey", "keys", "values", "pluck", "pick", "omit", "merge", "mergeOverwrite", "deepCopy", "dig",
  "kindIs", "kindOf", "typeOf", "typeIs", "deepEqual", "regexMatch", "regexFind", "regexReplaceAll", "semverCompare", "semver",
  "sha1sum", "sha256sum", "b64enc", "b64dec", "toDecimal", "now", "date", "uuidv4", "randAlphaNum",
]);

function stripStrings(body: string): string {
  return body.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/`[^`]*`/g, '""');
}

interface ValuesRef {
  readonly path: string;
  readonly where: string;
}

function valuesRefs(): ValuesRef[] {
  const refs: ValuesRef[] = [];
  for (const [file, text] of templates) {
    for (const a of actionsOf(file, text)) {
      if (a.body.startsWith("/*")) continue;
      for (const m of stripStrings(a.body).matchAll(/(?<![\w])\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        refs.push({ path: (m[1] ?? "").slice(1), where: `${a.file}:${a.line}` });
      }
    }
  }
  return refs;
}

/** Value paths to check for use: leaves, stopping at objects the schema leaves open (Kubernetes objects) and at lists. */
function declaredLeaves(v: unknown, s: SchemaNode | undefined, prefix: string, out: string[]): string[] {
  if (isObj(v) && s?.properties !== undefined) {
    for (const [k, child] of Object.entries(v)) declaredLeaves(child, s.properties[k], prefix === "" ? k : `${prefix}.${k}`, out);
  } else {
    out.push(prefix);
  }
  return out;
}

// ---- the tests -----------------------------------------------------------------

describe("helm chart: metadata and files", () => {
  it("Chart.yaml names the chart, a semver version and the app's version", () => {
    const chart = parseYaml(read(path.join(CHART, "Chart.yaml"))) as Obj;
    const pkg = JSON.parse(read(path.join(ROOT, "package.json"))) as { version: string };
    expect(chart.apiVersion).toBe("v2");
    expect(chart.name).toBe("patgate");
    expect(chart.type).toBe("application");
    expect(String(chart.version)).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    expect(String(chart.appVersion)).toBe(pkg.version);
    expect(typeof chart.description).toBe("string");
    expect(String(chart.kubeVersion)).toMatch(/^>=/);
  });

  it("every template is present, each with its API version", () => {
    const expected: Record<string, RegExp | null> = {
      "_helpers.tpl": null,
      "NOTES.txt": null,
      "configmap.yaml": /^apiVersion: v1\nkind: ConfigMap$/m,
      "deployment.yaml": /^apiVersion: apps\/v1\nkind: Deployment$/m,
      "service.yaml": /^apiVersion: v1\nkind: Service$/m,
      "serviceaccount.yaml": /^apiVersion: v1\nkind: ServiceAccount$/m,
      "ingress.yaml": /^apiVersion: networking\.k8s\.io\/v1\nkind: Ingress$/m,
      "hpa.yaml": /^apiVersion: autoscaling\/v2\nkind: HorizontalPodAutoscaler$/m,
      "pdb.yaml": /^apiVersion: policy\/v1\nkind: PodDisruptionBudget$/m,
      "servicemonitor.yaml": /^apiVersion: monitoring\.coreos\.com\/v1\nkind: ServiceMonitor$/m,
      "networkpolicy.yaml": /^apiVersion: networking\.k8s\.io\/v1\nkind: NetworkPolicy$/m,
      "pvc.yaml": /^apiVersion: v1\nkind: PersistentVolumeClaim$/m,
    };
    expect(templateFiles).toEqual(Object.keys(expected).sort());
    for (const [file, re] of Object.entries(expected)) if (re !== null) expect(template(file), file).toMatch(re);
    for (const f of ["Chart.yaml", "values.yaml", "values.schema.json", ".helmignore", "files/patgate.yaml", "files/routes.yaml"]) {
      expect(existsSync(path.join(CHART, f)), f).toBe(true);
    }
  });
});

describe("helm chart: values.yaml and values.schema.json", () => {
  const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  const withChange = (dotted: string, v: unknown): Obj => {
    const copy = structuredClone(values);
    const segs = dotted.split(".");
    const last = segs.pop() ?? "";
    let cur: Obj = copy;
    for (const s of segs) cur = cur[s] as Obj;
    cur[last] = v;
    return copy;
  };

  it("values.yaml is valid against the schema (which is itself a strict draft-07 schema)", () => {
    expect(validate(values), ajv.errorsText(validate.errors)).toBe(true);
  });

  it("the schema refuses misspelt keys, wrong types and out-of-range values", () => {
    expect(validate({ ...values, replicaCont: 2 })).toBe(false);
    expect(validate(withChange("probes.port", "admin"))).toBe(false);
    expect(validate(withChange("server.port", 70000))).toBe(false);
    expect(validate(withChange("redis.password", "x"))).toBe(false);
    expect(validate(withChange("upstreamCredentials", [{ env: "OPENAI_API_KEY", value: "literal" }]))).toBe(false);
    expect(validate(withChange("podDisruptionBudget.maxUnavailable", "50%"))).toBe(true);
  });

  it("schema and values.yaml declare the same keys, and every schema property is described", () => {
    const problems: string[] = [];
    const walk = (s: SchemaNode, v: unknown, at: string): void => {
      if (s.description === undefined || s.description === "") problems.push(`${at || "(root)"}: no description in the schema`);
      if (s.properties === undefined || !isObj(v)) return;
      for (const [k, child] of Object.entries(s.properties)) {
        const p = at === "" ? k : `${at}.${k}`;
        if (p === "global") continue; // for parent charts only
        if (!Object.hasOwn(v, k)) problems.push(`${p}: in the schema but not in values.yaml`);
        else walk(child, v[k], p);
      }
    };
    walk(schema, values, "");
    expect(problems).toEqual([]);
  });

  it("every key in values.yaml has a comment", () => {
    const lines = valuesText.split("\n");
    const bare: string[] = [];
    lines.forEach((line, i) => {
      if (!/^\s*[A-Za-z_][\w.-]*:(\s|$)/.test(line)) return;
      const prev = (lines[i - 1] ?? "").trim();
      if (!prev.startsWith("#") && !/\s#\s/.test(line)) bare.push(`values.yaml:${i + 1}: ${line.trim()}`);
    });
    expect(bare).toEqual([]);
  });

  it("values.yaml holds no secret: only Secret names and keys", () => {
    const SENSITIVE = /pass(word)?|pepper|token|api_?key|secret|credential|private|admin_?keys?/i;
    // Names of Secrets and of keys inside them, never their contents.
    const REFERENCE_FIELDS = new Set(["existingSecret", "key", "urlKey", "env", "name", "idKey", "secretKey"]);
    const problems: string[] = [];
    const walk = (v: unknown, at: string[]): void => {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, String(i)]));
      else if (isObj(v)) for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
      else if (typeof v === "string" && v !== "") {
        const leaf = at[at.length - 1] ?? "";
        if (at.some((seg) => SENSITIVE.test(seg)) && !REFERENCE_FIELDS.has(leaf)) problems.push(`${at.join(".")}: a literal value under a secret-sounding key`);
        if (/^[0-9a-f]{32,}$/i.test(v) || /^[A-Za-z0-9+/_-]{40,}={0,2}$/.test(v)) problems.push(`${at.join(".")}: looks like a key`);
      }
    };
    walk(values, []);
    expect(problems).toEqual([]);
  });

  it("no chart file contains anything that looks like a credential", () => {
    const files = ["values.yaml", "values.schema.json", "Chart.yaml", "files/patgate.yaml", "files/routes.yaml", ...templateFiles.map((f) => `templates/${f}`)];
    const PATTERNS: [string, RegExp][] = [
      ["a PAT", /\bpat_[0-9A-Za-z]{22}_[0-9A-Za-z]{20,}/],
      ["an OpenAI-style key", /\bsk-[A-Za-z0-9_-]{16,}/],
      ["a long hex string", /\b[0-9a-f]{40,}\b/i],
      ["a private key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
    ];
    const problems: string[] = [];
    for (const f of files) {
      const text = read(path.join(CHART, f));
      for (const [what, re] of PATTERNS) if (re.test(text)) problems.push(`${f}: ${what}`);
      for (const m of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^\s/@:"']*:([^\s/@"']+)@/gi)) {
        if (!/^<[^>]*>$|^\$\{[^}]*\}$/.test(m[1] ?? "")) problems.push(`${f}: a URL with a password (${m[0]})`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("helm chart: templates", () => {
  const actions = [...templates].flatMap(([f, t]) => actionsOf(f, t));

  it("every {{ }} closes and every if/range/with/define/block has its {{ end }}, properly nested", () => {
    const problems: string[] = [];
    for (const [file, text] of templates) {
      const stack: Action[] = [];
      for (const a of actionsOf(file, text)) {
        if (a.body.startsWith("/*")) {
          if (!a.body.endsWith("*/")) problems.push(`${file}:${a.line}: comment not closed as */}}`);
          continue;
        }
        const word = /^[A-Za-z_]\w*/.exec(a.body)?.[0] ?? "";
        if (BLOCK_OPENERS.has(word)) {
          if (word === "define" && stack.length > 0) problems.push(`${file}:${a.line}: define inside a block`);
          stack.push(a);
        } else if (word === "else") {
          const top = stack[stack.length - 1];
          if (top === undefined || !/^(if|range|with)\b/.test(top.body)) problems.push(`${file}:${a.line}: else outside if/range/with`);
        } else if (word === "end") {
          if (stack.pop() === undefined) problems.push(`${file}:${a.line}: end without an opening block`);
        }
      }
      for (const open of stack) problems.push(`${file}:${open.line}: "${open.body.slice(0, 40)}" has no end`);
    }
    expect(problems).toEqual([]);
  });

  it("templates call only functions helm has, and include only defined templates", () => {
    const defined = new Set(actions.flatMap((a) => /^define\s+"([^"]+)"/.exec(a.body)?.[1] ?? []));
    const problems: string[] = [];
    for (const a of actions) {
      if (a.body.startsWith("/*")) continue;
      for (const m of stripStrings(a.body).matchAll(/(?<![\w.$])[A-Za-z_][A-Za-z0-9_]*/g)) {
        if (!KNOWN_FUNCTIONS.has(m[0])) problems.push(`${a.file}:${a.line}: unknown function "${m[0]}"`);
      }
      for (const m of a.body.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)) {
        if (!defined.has(m[1] ?? "")) problems.push(`${a.file}:${a.line}: include of undefined "${m[1]}"`);
      }
    }
    expect(problems).toEqual([]);
    expect([...defined].every((d) => d.startsWith("patgate."))).toBe(true);
  });

  it("every .Values path a template uses exists in values.yaml", () => {
    const refs = valuesRefs();
    expect(refs.length).toBeGreaterThan(50);
    const missing = refs.filter((r) => get(values, r.path) === undefined).map((r) => `${r.where}: .Values.${r.path}`);
    expect(missing).toEqual([]);
  });

  it("every value in values.yaml is used by a template", () => {
    const used = new Set(valuesRefs().map((r) => r.path));
    const isUsed = (p: string): boolean => [...used].some((u) => p === u || p.startsWith(`${u}.`));
    const unused = declaredLeaves(values, schema, "", []).filter((p) => !isUsed(p));
    expect(unused).toEqual([]);
  });

  it("rendering fails, with a message, for replicas or autoscaling without Redis, and for Redis without a pepper", () => {
    const helpers = template("_helpers.tpl");
    expect(helpers).toMatch(/if and \(not \$redis\) \(gt \(int \.Values\.replicaCount\) 1\) \}\}\n\{\{- fail "patgate: replicaCount > 1 needs Redis/);
    expect(helpers).toMatch(/if and \(not \$redis\) \.Values\.autoscaling\.enabled \}\}\n\{\{- fail "patgate: autoscaling\.enabled needs Redis/);
    expect(helpers).toMatch(/if and \$redis \(not \.Values\.pepper\.existingSecret\) \}\}\n\{\{- fail "patgate: Redis needs a pepper/);
    expect(helpers).toMatch(/define "patgate\.redisEnabled"[\s\S]*?\.Values\.redis\.existingSecret/);
    expect(template("deployment.yaml").split("\n")[0]).toBe('{{- include "patgate.validate" . }}');
  });

  it("the Deployment has the probes, security context, anti-affinity, volumes and Secret references", () => {
    const d = template("deployment.yaml");
    expect(d).toMatch(/startupProbe:\n\s+httpGet:\n\s+path: \/healthz/);
    expect(d).toMatch(/livenessProbe:\n\s+httpGet:\n\s+path: \/healthz/);
    expect(d).toMatch(/readinessProbe:\n\s+httpGet:\n\s+path: \/readyz/);
    expect(d).toContain("toYaml .Values.resources");
    expect(d).toContain("toYaml .Values.podSecurityContext");
    expect(d).toContain("toYaml .Values.securityContext");
    expect(d).toMatch(/preferredDuringSchedulingIgnoredDuringExecution:[\s\S]*?topologyKey: kubernetes\.io\/hostname/);
    expect(d).toMatch(/- name: tmp\n\s+mountPath: \/tmp/);
    expect(d).toMatch(/- name: data\n\s+mountPath: \/data/);
    expect(d).toMatch(/- name: PATGATE_DATA\n\s+value: \/data/);
    for (const env of ["REDIS_URL", "PATGATE_PEPPER", "PATGATE_ADMIN_KEYS"]) {
      expect(d, env).toMatch(new RegExp(`- name: ${env}\\n\\s+valueFrom:\\n\\s+secretKeyRef:`));
    }
    expect(d).toMatch(/range \.Values\.upstreamCredentials \}\}\n\s+- name: \{\{ \.env \}\}\n\s+valueFrom:\n\s+secretKeyRef:/);
    // The ConfigMap is a directory mount: subPath mounts never see updates.
    expect(d).not.toContain("subPath");
    expect(d).toMatch(/- name: config\n\s+mountPath: \{\{ \.Values\.config\.mountPath \}\}\n\s+readOnly: true/);
    expect(d).toMatch(/- name: PATGATE_CONFIG\n\s+value: \{\{ printf "%s\/patgate\.yaml" \(trimSuffix "\/" \.Values\.config\.mountPath\) \| quote \}\}/);
    // A patgate.yaml change rolls the pods.
    expect(d).toContain('checksum/config: {{ include "patgate.configYaml" . | sha256sum }}');
  });

  it("security defaults: non-root, read-only root, no capabilities, RuntimeDefault seccomp", () => {
    expect(get(values, "podSecurityContext.runAsNonRoot")).toBe(true);
    expect(get(values, "podSecurityContext.seccompProfile.type")).toBe("RuntimeDefault");
    expect(get(values, "securityContext.runAsNonRoot")).toBe(true);
    expect(get(values, "securityContext.readOnlyRootFilesystem")).toBe(true);
    expect(get(values, "securityContext.allowPrivilegeEscalation")).toBe(false);
    expect(get(values, "securityContext.capabilities.drop")).toEqual(["ALL"]);
    expect(get(values, "securityContext.seccompProfile.type")).toBe("RuntimeDefault");
    expect(get(values, "automountServiceAccountToken")).toBe(false);
    expect(Number(get(values, "securityContext.runAsUser"))).toBeGreaterThan(0);
  });

  it("the grace period outlasts the preStop sleep plus the drain deadline", () => {
    const grace = Number(get(values, "terminationGracePeriodSeconds"));
    const drain = Number(get(values, "shutdown.drainTimeoutSeconds"));
    const preStop = Number(get(values, "shutdown.preStopSleepSeconds"));
    // src/app.ts drains for 30 s unless told otherwise.
    expect(drain).toBeGreaterThanOrEqual(30);
    expect(grace).toBeGreaterThan(drain + preStop);
    expect(template("_helpers.tpl")).toMatch(/if le \(int \.Values\.terminationGracePeriodSeconds\) \$stop \}\}\n\{\{- fail/);
  });

  it("the Ingress keeps SSE unbuffered and long-lived and lets uploads stream", () => {
    const ing = template("ingress.yaml");
    for (const [name, value] of [
      ["proxy-buffering", '"off"'],
      ["proxy-request-buffering", '"off"'],
      ["proxy-read-timeout", "$timeout"],
      ["proxy-send-timeout", "$timeout"],
      ["proxy-body-size", ".Values.ingress.nginx.proxyBodySize"],
    ] as const) {
      expect(ing, name).toContain(`"nginx.ingress.kubernetes.io/${name}" ${value}`);
    }
    expect(get(values, "ingress.nginx.enabled")).toBe(true);
    expect(Number(get(values, "ingress.nginx.proxyTimeoutSeconds"))).toBeGreaterThanOrEqual(3600);
    // The body-size cap must admit the largest body a route accepts.
    const routes = parseYaml(read(path.join(ROOT, "routes.yaml"))) as { defaults?: { body_limit?: string }; routes: { body_limit?: string }[] };
    const limits = [routes.defaults?.body_limit ?? "10mb", ...routes.routes.map((r) => r.body_limit ?? "0")].map((s) => {
      const r = parseSize(s);
      if (!r.ok) throw new Error(r.error);
      return r.bytes;
    });
    const m = /^(\d+)([kmg]?)$/i.exec(String(get(values, "ingress.nginx.proxyBodySize")));
    expect(m).not.toBeNull();
    const nginxBytes = Number(m?.[1]) * ({ "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m?.[2] ?? "").toLowerCase()] ?? 1);
    expect(nginxBytes).toBeGreaterThanOrEqual(Math.max(...limits));
  });

  it("toggled resources: ServiceMonitor, NetworkPolicy, HPA, PDB and Ingress each behind their switch", () => {
    expect(template("servicemonitor.yaml")).toMatch(/^\{\{- if and \.Values\.metrics\.enabled \.Values\.metrics\.serviceMonitor\.enabled \}\}/);
    expect(template("networkpolicy.yaml")).toMatch(/^\{\{- if \.Values\.networkPolicy\.enabled \}\}/);
    expect(template("hpa.yaml")).toMatch(/^\{\{- if \.Values\.autoscaling\.enabled \}\}/);
    expect(template("pdb.yaml")).toMatch(/^\{\{- if \.Values\.podDisruptionBudget\.enabled \}\}/);
    expect(template("ingress.yaml")).toMatch(/^\{\{- if \.Values\.ingress\.enabled \}\}/);
    const np = template("networkpolicy.yaml");
    expect(np).toContain("policyTypes: [Ingress, Egress]");
    expect(np).toMatch(/port: 53\n\s+protocol: UDP/);
    expect(np).toContain(".Values.networkPolicy.egress.redis.ports");
    expect(np).toContain(".Values.networkPolicy.egress.upstreams");
    expect(np).toContain(".Values.networkPolicy.ingressController.namespaceSelector");
  });
});

describe("helm chart: the ConfigMap's patgate.yaml and routes.yaml", () => {
  const RESYNC =
    "re-sync the chart's copies: cp routes.yaml helm/patgate/files/routes.yaml && " +
    "sed 's#^routes_file: \\.\\./routes\\.yaml$#routes_file: routes.yaml#' config/patgate.yaml > helm/patgate/files/patgate.yaml";

  it("the ConfigMap is templated from the chart's copies", () => {
    const cm = template("configmap.yaml");
    expect(cm).toMatch(/patgate\.yaml: \|\n\s+\{\{- include "patgate\.configYaml" \. \| nindent 4 \}\}/);
    expect(cm).toMatch(/routes\.yaml: \|\n\s+\{\{- include "patgate\.routesYaml" \. \| nindent 4 \}\}/);
    const helpers = template("_helpers.tpl");
    expect(helpers).toContain('.Files.Get "files/patgate.yaml"');
    expect(helpers).toContain('.Files.Get "files/routes.yaml"');
  });

  it("files/routes.yaml is the repository's routes.yaml", () => {
    expect(read(path.join(CHART, "files", "routes.yaml")) === read(path.join(ROOT, "routes.yaml")), RESYNC).toBe(true);
  });

  it("files/patgate.yaml is the repository's config/patgate.yaml, with the route table next to it", () => {
    const repo = read(path.join(ROOT, "config", "patgate.yaml"));
    expect(repo.match(/^routes_file: \.\.\/routes\.yaml$/gm)?.length, "config/patgate.yaml should have one `routes_file: ../routes.yaml` line").toBe(1);
    const expected = repo.replace(/^routes_file: \.\.\/routes\.yaml$/m, "routes_file: routes.yaml");
    expect(read(path.join(CHART, "files", "patgate.yaml")) === expected, RESYNC).toBe(true);
  });

  it("the gateway loads the chart's config with the environment the Deployment sets", () => {
    const file = path.join(CHART, "files", "patgate.yaml");
    const env = {
      PATGATE_CONFIG: file,
      PATGATE_HOST: String(get(values, "server.host")),
      PATGATE_PORT: String(get(values, "server.port")),
      PATGATE_DATA: "/data",
      PATGATE_LOG_LEVEL: String(get(values, "config.logLevel")),
      PATGATE_DRAIN_TIMEOUT: `${String(get(values, "shutdown.drainTimeoutSeconds"))}s`,
      PATGATE_METRICS_PORT: String(get(values, "metrics.port")),
      // What the referenced Secrets would hold: made up here, never stored.
      PATGATE_PEPPER: randomBytes(32).toString("hex"),
      PATGATE_ADMIN_KEYS: randomBytes(24).toString("hex"),
    };
    const s = loadSettings(file, env);
    expect(s.server.host).toBe(get(values, "server.host"));
    expect(s.server.port).toBe(get(values, "server.port"));
    expect(s.routesFile).toBe(path.join(CHART, "files", "routes.yaml"));
    expect(s.store.embeddedPath).toBe("/data/patgate.db");
    expect(s.logging.level).toBe(get(values, "config.logLevel"));
    expect(RouteTableHolder.load(s.routesFile, s.catalog).current.routes.length).toBeGreaterThan(0);
  });
});

describe("helm chart: the web page (ui.*, oidc.client, operators by claim)", () => {
  const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  const withUi = (patch: Obj, oidc: Obj = {}): Obj => ({ ...values, ui: { ...(values.ui as Obj), ...patch }, oidc: { ...(values.oidc as Obj), ...oidc } });
  const deployment = template("deployment.yaml");
  const helpers = template("_helpers.tpl");
  const ingress = template("ingress.yaml");

  it("defaults: the page on, no public URL or prefix (derived from the Ingress), no OIDC client", () => {
    expect(get(values, "ui")).toEqual({ enabled: true, publicUrl: "", pathPrefix: "", trustedProxies: [] });
    expect(get(values, "oidc.client")).toEqual({ existingSecret: "", idKey: "client-id", secretKey: "client-secret" });
    expect(get(values, "oidc.loginScopes")).toBe("openid profile email");
  });

  it("the schema takes path prefixes, public URLs, scopes and proxies in the forms the gateway takes, and refuses the rest", () => {
    for (const p of ["", "/patgate", "/a/b", "/team-1/llm.gw"]) expect(validate(withUi({ pathPrefix: p })), p).toBe(true);
    for (const p of ["patgate", "/patgate/", "/a//b", "/a b", "/"]) expect(validate(withUi({ pathPrefix: p })), p).toBe(false);
    for (const u of ["", "https://llm.example.com", "https://llm.example.com/a/b", "http://10.0.0.1:8080"]) expect(validate(withUi({ publicUrl: u })), u).toBe(true);
    for (const u of ["llm.example.com", "ftp://x", "https://gw.example/?q=1", "https://user@gw.example"]) expect(validate(withUi({ publicUrl: u })), u).toBe(false);
    expect(validate(withUi({ trustedProxies: ["10.0.0.0/8", "fd00::/8", "192.168.1.7"] }))).toBe(true);
    expect(validate(withUi({ trustedProxies: ["ingress-nginx"] }))).toBe(false);
    expect(validate(withUi({}, { loginScopes: "openid profile groups" }))).toBe(true);
    expect(validate(withUi({}, { loginScopes: "profile email" }))).toBe(false);
    expect(validate(withUi({}, { client: { existingSecret: "s", idKey: "id", secretKey: "" } }))).toBe(true);
    expect(validate(withUi({}, { client: { existingSecret: "s", clientSecret: "literal" } }))).toBe(false);
  });

  it("the Deployment takes the OIDC client's id and secret from the Secret, and the rest as plain values", () => {
    const oidcBlock = /\{\{- if \.Values\.oidc\.issuer \}\}([\s\S]*?)\n {12}\{\{- end \}\}\n {12}# The web page/.exec(deployment)?.[1] ?? "";
    expect(oidcBlock).toMatch(/\{\{- if \.Values\.oidc\.client\.existingSecret \}\}\n\s+- name: PATGATE_OIDC_CLIENT_ID\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: \{\{ \.Values\.oidc\.client\.existingSecret \}\}\n\s+key: \{\{ \.Values\.oidc\.client\.idKey \}\}/);
    expect(oidcBlock).toMatch(/\{\{- if \.Values\.oidc\.client\.secretKey \}\}\n\s+- name: PATGATE_OIDC_CLIENT_SECRET\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: \{\{ \.Values\.oidc\.client\.existingSecret \}\}\n\s+key: \{\{ \.Values\.oidc\.client\.secretKey \}\}/);
    expect(oidcBlock).toMatch(/- name: PATGATE_OIDC_LOGIN_SCOPES\n\s+value: \{\{ \.Values\.oidc\.loginScopes \| quote \}\}/);
    expect(oidcBlock).toMatch(/\{\{- if \.Values\.oidc\.operatorClaim \}\}\n\s+- name: PATGATE_OIDC_OPERATOR_CLAIM\n[\s\S]*?- name: PATGATE_OIDC_OPERATOR_VALUE\n\s+value: \{\{ \.Values\.oidc\.operatorValue \| quote \}\}/);
    // The secret never arrives as a plain value.
    expect(deployment).not.toMatch(/PATGATE_OIDC_CLIENT_SECRET\n\s+value:/);
    expect(deployment).toMatch(/- name: PATGATE_UI\n\s+value: \{\{ \.Values\.ui\.enabled \| quote \}\}/);
    expect(deployment).toMatch(/\{\{- with include "patgate\.publicUrl" \. \}\}\n\s+- name: PATGATE_PUBLIC_URL\n\s+value: \{\{ \. \| quote \}\}/);
    expect(deployment).toMatch(/\{\{- with \.Values\.ui\.trustedProxies \}\}\n\s+- name: PATGATE_TRUSTED_PROXIES\n\s+value: \{\{ join "," \. \| quote \}\}/);
  });

  it("every variable the Deployment sets is one the chart's patgate.yaml reads", () => {
    const yaml = read(path.join(CHART, "files", "patgate.yaml"));
    const names = [...deployment.matchAll(/- name: (PATGATE_[A-Z_]+|REDIS_URL)\n/g)].map((m) => m[1] ?? "");
    expect(names.length).toBeGreaterThan(15);
    // PATGATE_CONFIG names the file itself (src/main.ts).
    const unread = names.filter((n) => n !== "PATGATE_CONFIG" && !yaml.includes(`\${${n}:-`) && !yaml.includes(`\${${n}}`));
    expect(unread).toEqual([]);
  });

  it("the public URL defaults to the first Ingress host under the prefix, https with TLS", () => {
    const def = /define "patgate\.publicUrl"[\s\S]*?\{\{- end \}\}\n\{\{- end \}\}/.exec(helpers)?.[0] ?? "";
    expect(def).toContain('trimSuffix "/" .Values.ui.publicUrl');
    expect(def).toContain('else if and .Values.ingress.enabled .Values.ingress.hosts');
    expect(def).toContain('printf "%s://%s%s" (ternary "https" "http" (not (empty .Values.ingress.tls))) (index .Values.ingress.hosts 0).host .Values.ui.pathPrefix');
    expect(template("NOTES.txt")).toContain('{{ include "patgate.publicUrl" . }}/ui/');
  });

  it("with a path prefix and ingress-nginx, the Ingress matches the prefix and strips it; the regex does what the page needs", () => {
    expect(ingress).toMatch(/\{\{- \$strip := and \$prefix \.Values\.ingress\.nginx\.enabled \}\}\n\{\{- if \$strip \}\}/);
    expect(ingress).toContain('set $annotations "nginx.ingress.kubernetes.io/use-regex" "true"');
    expect(ingress).toContain('set $annotations "nginx.ingress.kubernetes.io/rewrite-target" "/$2"');
    expect(ingress).toContain('- path: {{ if $strip }}{{ printf "%s(/|$)(.*)" $prefix }}{{ else }}{{ $prefix }}{{ end }}');
    expect(ingress).toContain("pathType: {{ if $strip }}ImplementationSpecific{{ else }}Prefix{{ end }}");
    // ingress-nginx anchors the location regex and rewrites to /$2: what the gateway then sees.
    const rewrite = (prefix: string, p: string): string | null => {
      const m = new RegExp(`^${prefix.replace(/[.]/g, "\\.")}(/|$)(.*)`).exec(p);
      return m === null ? null : `/${m[2] ?? ""}`;
    };
    expect(rewrite("/a/b", "/a/b/ui/")).toBe("/ui/");
    expect(rewrite("/a/b", "/a/b/ui/assets/app.js")).toBe("/ui/assets/app.js");
    expect(rewrite("/a/b", "/a/b/proxy/demo/v1/chat/completions")).toBe("/proxy/demo/v1/chat/completions");
    expect(rewrite("/a/b", "/a/b/ui/auth/callback?code=x&state=y")).toBe("/ui/auth/callback?code=x&state=y");
    expect(rewrite("/a/b", "/a/b")).toBe("/");
    expect(rewrite("/a/b", "/a/bc/ui/")).toBeNull();
    expect(rewrite("/a/b", "/ui/")).toBeNull();
  });

  it("rendering fails, with a message, for an OIDC client or an operator claim without an issuer, half a claim rule, and a public URL outside the prefix", () => {
    expect(helpers).toMatch(/if and \.Values\.oidc\.client\.existingSecret \(not \.Values\.oidc\.issuer\) \}\}\n\{\{- fail "patgate: oidc\.client\.existingSecret needs oidc\.issuer/);
    expect(helpers).toMatch(/if ne \(empty \.Values\.oidc\.operatorClaim\) \(empty \.Values\.oidc\.operatorValue\) \}\}\n\{\{- fail "patgate: oidc\.operatorClaim and oidc\.operatorValue go together/);
    expect(helpers).toMatch(/if and \.Values\.oidc\.operatorClaim \(not \.Values\.oidc\.issuer\) \}\}\n\{\{- fail "patgate: oidc\.operatorClaim needs oidc\.issuer/);
    expect(helpers).toMatch(/if and \.Values\.ui\.publicUrl \.Values\.ui\.pathPrefix \(not \(hasSuffix \.Values\.ui\.pathPrefix \(trimSuffix "\/" \.Values\.ui\.publicUrl\)\)\) \}\}\n\{\{- fail/);
  });

  it("the gateway loads the chart's config with the web page's environment as the Deployment sets it", () => {
    const file = path.join(CHART, "files", "patgate.yaml");
    const env = {
      PATGATE_DATA: "/data",
      PATGATE_PEPPER: randomBytes(32).toString("hex"),
      PATGATE_ADMIN_KEYS: randomBytes(24).toString("hex"),
      PATGATE_OIDC_ISSUER: "https://idp.example.com",
      PATGATE_OIDC_AUDIENCE: "patgate",
      PATGATE_OIDC_JWKS_URL: "https://idp.example.com/jwks",
      PATGATE_OIDC_USER_CLAIM: String(get(values, "oidc.userClaim")),
      PATGATE_OIDC_LOGIN_SCOPES: "openid profile email groups",
      PATGATE_OIDC_OPERATOR_CLAIM: "groups",
      PATGATE_OIDC_OPERATOR_VALUE: "patgate-operators",
      // What the client Secret would hold: made up here.
      PATGATE_OIDC_CLIENT_ID: "patgate-web",
      PATGATE_OIDC_CLIENT_SECRET: randomBytes(16).toString("hex"),
      PATGATE_UI: String(get(values, "ui.enabled")),
      PATGATE_PUBLIC_URL: "https://llm.example.com/a/b",
      PATGATE_TRUSTED_PROXIES: ["10.0.0.0/8", "fd00::/8"].join(","),
    };
    const s = loadSettings(file, env);
    expect(s.ui.enabled).toBe(true);
    expect(s.ui.publicUrl?.href).toBe("https://llm.example.com/a/b");
    expect(s.ui.trustedProxies).toEqual(["10.0.0.0/8", "fd00::/8"]);
    expect(s.ui.login).toMatchObject({ clientId: "patgate-web", clientSecret: env.PATGATE_OIDC_CLIENT_SECRET, scopes: "openid profile email groups" });
    expect(s.auth.oidc?.operator?.describe).toBe("groups=patgate-operators");
    expect(loadSettings(file, { ...env, PATGATE_UI: "false" }).ui.enabled).toBe(false);
    // The chart's default scopes are the gateway's.
    expect(loadSettings(file, { ...env, PATGATE_OIDC_LOGIN_SCOPES: String(get(values, "oidc.loginScopes")) }).ui.login?.scopes).toBe("openid profile email");
  });
});

describe("helm chart: HTTPS on the gateway from a TLS Secret", () => {
  const d = template("deployment.yaml");
  const block = (start: string, end: string): string => {
    const i = d.indexOf(start);
    const j = d.indexOf(end, i + start.length);
    if (i === -1 || j === -1) throw new Error(`deployment.yaml: no block from "${start}" to "${end}"`);
    return d.slice(i, j);
  };

  it("tls.enabled mounts the Secret as a read-only directory (no subPath, so renewals reach the pod) and points server.tls at it", () => {
    expect(get(values, "tls.enabled")).toBe(false);
    const mounts = block("volumeMounts:", "volumes:");
    expect(mounts).toMatch(/\{\{- if \.Values\.tls\.enabled \}\}[\s\S]*?- name: tls\n\s+mountPath: \{\{ \.Values\.tls\.mountPath \}\}\n\s+readOnly: true/);
    const volumes = d.slice(d.indexOf("      volumes:"));
    expect(volumes).toMatch(/- name: tls\n\s+secret:\n\s+secretName: \{\{ \.Values\.tls\.existingSecret \}\}/);
    // The image runs as a non-root user of the pod's fsGroup: the key must be group-readable.
    expect(volumes).toMatch(/secretName: \{\{ \.Values\.tls\.existingSecret \}\}\n(\s+#.*\n)?\s+defaultMode: 0440/);
    expect(d).not.toContain("subPath");
    const env = block("{{- if .Values.tls.enabled }}\n            # server.tls", "{{- if .Values.metrics.enabled }}");
    for (const [name, value] of [
      ["PATGATE_TLS_CERT_FILE", '{{ printf "%s/tls.crt" (trimSuffix "/" .Values.tls.mountPath) | quote }}'],
      ["PATGATE_TLS_KEY_FILE", '{{ printf "%s/tls.key" (trimSuffix "/" .Values.tls.mountPath) | quote }}'],
      ["PATGATE_HTTP2", "{{ .Values.tls.http2 | quote }}"],
      ["PATGATE_HSTS_MAX_AGE", "{{ .Values.tls.hstsMaxAge | quote }}"],
      ["PATGATE_TLS_CLIENT_AUTH", "{{ .Values.tls.clientAuth | quote }}"],
    ]) {
      expect(env, name).toContain(`- name: ${name}\n              value: ${value}`);
    }
    expect(env).toMatch(/if ne \.Values\.tls\.clientAuth "none" \}\}\n\s+- name: PATGATE_TLS_CLIENT_CA_FILE/);
  });

  it("the variables the chart sets are the ones the shipped config reads", () => {
    const shippedText = read(path.join(CHART, "files", "patgate.yaml"));
    for (const v of ["PATGATE_TLS_CERT_FILE", "PATGATE_TLS_KEY_FILE", "PATGATE_HTTP2", "PATGATE_HSTS_MAX_AGE", "PATGATE_TLS_CLIENT_AUTH", "PATGATE_TLS_CLIENT_CA_FILE"]) {
      expect(shippedText, v).toContain("${" + v + ":-");
    }
  });

  it("probes use HTTPS on the http port with TLS; the metrics port stays plain", () => {
    expect(d).toContain('{{- $probeScheme := ternary "HTTPS" "HTTP" (and .Values.tls.enabled (eq .Values.probes.port "http")) }}');
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      expect(d, probe).toMatch(new RegExp(`${probe}:\\n\\s+httpGet:\\n\\s+path: /\\w+\\n\\s+port: \\{\\{ \\.Values\\.probes\\.port \\}\\}\\n\\s+scheme: \\{\\{ \\$probeScheme \\}\\}`));
    }
  });

  it("the nginx ingress speaks HTTPS to pods that serve it", () => {
    expect(template("ingress.yaml")).toMatch(/\{\{- if \.Values\.tls\.enabled \}\}\n(\{\{-? \/\*.*\*\/\}\}\n)?\{\{- \$_ := set \$annotations "nginx\.ingress\.kubernetes\.io\/backend-protocol" "HTTPS" \}\}/);
  });

  it("rendering fails without the Secret, without a client CA for client certificates, or with the mount inside the ConfigMap's", () => {
    const helpers = template("_helpers.tpl");
    expect(helpers).toMatch(/if and \.Values\.tls\.enabled \(not \.Values\.tls\.existingSecret\) \}\}\n\{\{- fail "patgate: tls\.enabled needs tls\.existingSecret/);
    expect(helpers).toMatch(/if and \.Values\.tls\.enabled \(ne \.Values\.tls\.clientAuth "none"\) \(not \.Values\.tls\.clientCaSecret\) \}\}\n\{\{- fail/);
    expect(helpers).toMatch(/\.Values\.tls\.mountPath[^\n]*\}\}\n\{\{- fail "patgate: tls\.mountPath must not be inside config\.mountPath/);
    const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
    const validate = ajv.compile(schema);
    const withTls = (tls: Obj): Obj => ({ ...values, tls: { ...(values.tls as Obj), ...tls } });
    expect(validate(withTls({ enabled: true, existingSecret: "patgate-tls", clientAuth: "require", clientCaSecret: "clients-ca" }))).toBe(true);
    expect(validate(withTls({ clientAuth: "sometimes" }))).toBe(false);
    expect(validate(withTls({ mountPath: "relative/tls" }))).toBe(false);
    expect(validate(withTls({ hstsMaxAge: "one year" }))).toBe(false);
  });

  it("the gateway starts its HTTPS listener from the chart's config with the environment the Deployment sets for tls.enabled", async () => {
    const { TestCa } = await import("../helpers/certs.ts");
    const ca = new TestCa("helm");
    try {
      const pair = ca.issue("patgate.example.com", { sans: ["DNS:patgate.example.com"] }, path.join(ca.dir, "mount"), "tls");
      const clientCa = path.join(ca.dir, "mount-client-ca", "ca.crt");
      const { mkdirSync, copyFileSync } = await import("node:fs");
      mkdirSync(path.dirname(clientCa));
      copyFileSync(ca.cert, clientCa);
      const mount = path.dirname(pair.cert);
      const s = loadSettings(path.join(CHART, "files", "patgate.yaml"), {
        PATGATE_DATA: "/data",
        PATGATE_PEPPER: randomBytes(32).toString("hex"),
        PATGATE_TLS_CERT_FILE: `${mount}/tls.crt`,
        PATGATE_TLS_KEY_FILE: `${mount}/tls.key`,
        PATGATE_HTTP2: String(get(values, "tls.http2")),
        PATGATE_HSTS_MAX_AGE: "1y",
        PATGATE_TLS_CLIENT_AUTH: "require",
        PATGATE_TLS_CLIENT_CA_FILE: `${mount}-client-ca/${String(get(values, "tls.clientCaKey"))}`,
      });
      expect(s.server.tls).toMatchObject({ certFile: `${mount}/tls.crt`, keyFile: `${mount}/tls.key`, http2: false, hstsMaxAgeSec: 365 * 86400, clientAuth: "require", caFile: clientCa });
    } finally {
      ca.remove();
    }
  });
});

// ---- with helm -------------------------------------------------------------------

const HELM = spawnSync("helm", ["version", "--short"], { encoding: "utf8" }).status === 0;
const SKIP = HELM ? "" : " (skipped: helm is not on the PATH; Debian has no helm package)";

function helm(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync("helm", args, { cwd: ROOT, encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("helm chart: helm lint and helm template", () => {
  const redis = ["--set", "redis.existingSecret=patgate-redis", "--set", "pepper.existingSecret=patgate-pepper"];

  it.skipIf(!HELM)(`helm lint --strict passes${SKIP}`, () => {
    const r = helm("lint", "--strict", CHART);
    expect(r.status, r.out).toBe(0);
  });

  it.skipIf(!HELM)(`helm template renders the defaults and everything switched on${SKIP}`, () => {
    const all = [
      ...redis, "--set", "replicaCount=3", "--set", "autoscaling.enabled=true", "--set", "ingress.enabled=true",
      "--set", "metrics.serviceMonitor.enabled=true", "--set", "networkPolicy.enabled=true",
      "--set", "adminKeys.existingSecret=patgate-admin", "--set", "upstreamCredentials[0].env=OPENAI_API_KEY",
      "--set", "upstreamCredentials[0].existingSecret=openai", "--set", "upstreamCredentials[0].key=api-key",
      "--set", "oidc.issuer=https://idp.example.com", "--set", "oidc.audience=patgate", "--set", "oidc.jwksUrl=https://idp.example.com/jwks",
      "--set", "oidc.client.existingSecret=patgate-oidc", "--set", "oidc.operatorClaim=groups", "--set", "oidc.operatorValue=patgate-operators",
      "--set", "ui.pathPrefix=/a/b", "--set", "ui.trustedProxies={10.0.0.0/8}",
      "--set", "tls.enabled=true", "--set", "tls.existingSecret=patgate-tls", "--set", "tls.clientAuth=optional", "--set", "tls.clientCaSecret=clients-ca",
    ];
    for (const args of [[], all]) {
      const r = helm("template", "rel", CHART, ...args);
      expect(r.status, r.out).toBe(0);
      const docs = parseAllDocuments(r.out).map((d) => d.toJS() as Obj | null).filter(isObj);
      const kinds = docs.map((d) => d.kind);
      expect(kinds).toContain("Deployment");
      expect(kinds).toContain("ConfigMap");
      if (args.length > 0) {
        for (const k of ["Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "NetworkPolicy"]) expect(kinds).toContain(k);
      }
      const cm = docs.find((d) => d.kind === "ConfigMap");
      expect(get(cm, "data.routes.yaml")).toBe(read(path.join(CHART, "files", "routes.yaml")));
      expect(get(cm, "data.patgate.yaml")).toBe(read(path.join(CHART, "files", "patgate.yaml")));
    }
  });

  it.skipIf(!HELM)(`helm template refuses replicas or autoscaling without Redis${SKIP}`, () => {
    const replicas = helm("template", "rel", CHART, "--set", "replicaCount=2");
    expect(replicas.status).not.toBe(0);
    expect(replicas.out).toContain("replicaCount > 1 needs Redis");
    const hpa = helm("template", "rel", CHART, "--set", "autoscaling.enabled=true");
    expect(hpa.status).not.toBe(0);
    expect(hpa.out).toContain("autoscaling.enabled needs Redis");
    const noPepper = helm("template", "rel", CHART, "--set", "redis.existingSecret=r");
    expect(noPepper.out).toContain("Redis needs a pepper");
  });
});
