/**
 * Scopes on the command line: `DOMAIN:TYPE:ID:OP`, or `TYPE:ID:OP` with
 * `--domain`. Domain ids, entity types and operations never contain `:`, but
 * entity ids may (Ollama tags such as `llama3:8b`), so the domain is the first
 * field, the type the next, the operation the LAST, and the entity id is
 * everything in between: `demo:models:llama3:8b:llm_chat_completions`.
 */
import { UsageError } from "./command.ts";

/** A scope in the management API's JSON shape. */
export interface ScopeJson {
  readonly domain_id: string;
  readonly entity_type: string;
  readonly entity_id: string;
  readonly operation: string;
}

/** Parses one `--scope` value; throws UsageError saying what is wrong. */
export function parseScope(text: string, domain?: string): ScopeJson {
  const parts = text.split(":");
  const form = domain === undefined ? "DOMAIN:TYPE:ID:OP" : "TYPE:ID:OP (with --domain)";
  const need = domain === undefined ? 4 : 3;
  if (parts.length < need) throw new UsageError(`--scope "${text}" is not ${form}${domain === undefined && parts.length === 3 ? missingPart(parts) : ""}`);
  const head = domain === undefined ? parts.slice(0, 2) : [domain, parts[0] ?? ""];
  const rest = domain === undefined ? parts.slice(2) : parts.slice(1);
  const s: ScopeJson = {
    domain_id: head[0] ?? "",
    entity_type: head[1] ?? "",
    entity_id: rest.slice(0, -1).join(":"),
    operation: rest.at(-1) ?? "",
  };
  for (const [k, v] of Object.entries(s)) if (v === "") throw new UsageError(`--scope "${text}" has an empty ${k.replace("_", " ")} (${form})`);
  return s;
}

/** The same syntax back: what `pat show` prints is what `--scope` takes. */
export function formatScope(s: ScopeJson): string {
  return `${s.domain_id}:${s.entity_type}:${s.entity_id}:${s.operation}`;
}

// The shipped catalog's entity types (an operator may add more): enough to tell which part of a scope is missing.
const KNOWN_TYPES: ReadonlySet<string> = new Set(["domains", "models", "datasets"]);

/** For A:B:C (one part short): which part is missing, and the scope as it would then be written. */
function missingPart(parts: readonly string[]): string {
  const [a = "", b = "", c = ""] = parts;
  // models:llama3:llm_read: it starts with an entity type, so the domain is what is missing.
  if (KNOWN_TYPES.has(a)) return `; the domain is missing: DOMAIN:${a}:${b}:${c}, or pass --domain DOMAIN`;
  // demo:llama3:llm_read: no entity type anywhere, so it is the type that is missing.
  if (!KNOWN_TYPES.has(b)) return `; the entity type is missing: ${a}:TYPE:${b}:${c} (TYPE is models, datasets, domains or another type of \`patgate catalog\`)`;
  // demo:models:llm_read: the domain and the type are there: the entity id is missing.
  return `; the entity id is missing: ${a}:${b}:ID:${c} (ID "*" is every entity of the type)`;
}
