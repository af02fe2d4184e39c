/**
 * A value per (PAT record, domain, model, operation), built once: the limit
 * step's charges and the meter's series id. Records are immutable (a change
 * is a new record), so a value is never served stale.
 *
 * The facts each record was last asked for sit in front of the maps: a PAT
 * that keeps calling one model costs three short string compares, not three
 * Map lookups that hash the request's fresh strings.
 */

/** At most this many entries per level (a PAT used on more domains or models starts that level afresh). */
const LEVEL = 64;

class PerRecord<V> {
  domainId = "";
  model = "";
  operation = "";
  last: V | undefined = undefined;
  readonly byDomain = new Map<string, Map<string, Map<string, V>>>();
}

export class RequestFactsCache<R extends object, V> {
  readonly #byRecord = new WeakMap<R, PerRecord<V>>();
  readonly #make: (rec: R, domainId: string, model: string, operation: string) => V;

  constructor(make: (rec: R, domainId: string, model: string, operation: string) => V) {
    this.#make = make;
  }

  get(rec: R, domainId: string, model: string, operation: string): V {
    let r = this.#byRecord.get(rec);
    if (r === undefined) this.#byRecord.set(rec, (r = new PerRecord<V>()));
    if (r.last !== undefined && r.domainId === domainId && r.model === model && r.operation === operation) return r.last;
    let byModel = r.byDomain.get(domainId);
    if (byModel === undefined) {
      if (r.byDomain.size >= LEVEL) r.byDomain.clear();
      r.byDomain.set(domainId, (byModel = new Map<string, Map<string, V>>()));
    }
    let byOp = byModel.get(model);
    if (byOp === undefined) {
      if (byModel.size >= LEVEL) byModel.clear();
      byModel.set(model, (byOp = new Map<string, V>()));
    }
    let v = byOp.get(operation);
    if (v === undefined) byOp.set(operation, (v = this.#make(rec, domainId, model, operation)));
    r.domainId = domainId;
    r.model = model;
    r.operation = operation;
    r.last = v;
    return v;
  }
}
