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
