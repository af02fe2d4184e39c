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
  if (parts.length < need) {
    const hint = domain === undefined && parts.length === 3 ? `; put the domain first (DOMAIN:${text}) or pass --domain DOMAIN` : "";
    throw new UsageError(`--scope "${text}" is not ${form}${hint}`);
  }
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
