/**
 * Which operations exist and which apply to which entity type: configuration,
 * validated at load. `domains` always exists and accepts every operation, since
 * a domain-level grant covers the entities inside the domain.
 */
export interface Catalog {
  readonly operations: ReadonlySet<string>;
  /** entity type → the operations that apply to it */
  readonly entityTypes: ReadonlyMap<string, ReadonlySet<string>>;
}

/** True when `operation` may be granted on `entityType`. */
export function applies(catalog: Catalog, entityType: string, operation: string): boolean {
  return catalog.entityTypes.get(entityType)?.has(operation) === true;
}

/** The scope vocabulary as GET /catalog and `patgate catalog` show it. */
export interface CatalogView {
  readonly entity_types: readonly { readonly name: string; readonly operations: readonly string[] }[];
  readonly operations: readonly { readonly name: string; readonly description: string | null }[];
  /** How a scope is written on the command line. */
  readonly scope_syntax: string;
}

// The seed's (and the reference deployment's) operations, in words; an operation the operator adds has none.
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  read: "View resource information",
  update: "Modify existing resources",
  delete: "Remove resources",
  enable: "Enable a disabled resource",
  disable: "Disable a resource",
  manage_role: "Manage role permissions",
  add_role_users: "Add users to a role",
  remove_role_users: "Remove users from a role",
  view_role_users: "View users assigned to a role",
  llm_create: "Create a new LLM configuration (pull, create, copy a model)",
  llm_update: "Modify an existing LLM configuration (push a model)",
  llm_read: "View LLM configuration (list, show, retrieve models)",
  llm_delete: "Remove an LLM configuration (delete a model)",
  llm_chat_completions: "Generate chat responses from an LLM",
  llm_completions: "Generate text completions",
  llm_embeddings: "Generate vector embeddings",
  llm_transcription: "Convert audio to text",
  llm_translation: "Translate audio into English text",
  llm_utility: "Utility operations of LLM services (tokenize, detokenize)",
  llm_pooling: "Pooling outputs of a model",
  llm_classification: "Classify input with a model",
  llm_scoring: "Score text pairs with a model",
  llm_rerank: "Rerank documents with a model",
  llm_realtime: "Hold a Realtime session (speech and text over WebSocket) with a model",
  audit_log_read: "Read the audit log",
  audit_log_export: "Export the audit log",
};

/** The catalog for people and clients: every entity type with the operations it accepts, every operation. */
export function catalogView(c: Catalog): CatalogView {
  return {
    entity_types: [...c.entityTypes].map(([name, ops]) => ({ name, operations: [...c.operations].filter((o) => ops.has(o)) })),
    operations: [...c.operations].map((name) => ({ name, description: DESCRIPTIONS[name] ?? null })),
    scope_syntax: "DOMAIN:TYPE:ID:OP (ID may be * for every entity of the type; TYPE domains with ID DOMAIN covers the whole domain)",
  };
}

/** The operations valid for an entity type, for "unknown operation" messages (all of them when the type is unknown). */
export function validOperations(c: Catalog, entityType?: string): string[] {
  const ops = entityType === undefined ? undefined : c.entityTypes.get(entityType);
  return [...c.operations].filter((o) => ops === undefined || ops.has(o));
}
