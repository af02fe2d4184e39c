/**
 * Keeping String.prototype a fast object in V8.
 *
 * When an ordinary object gets String.prototype as its prototype (ioredis
 * declares `class VerbatimString extends String` as it loads), V8 turns
 * String.prototype into a dictionary-mode object. Optimized code then reaches
 * every string method (`s.charCodeAt`, `s.slice`, `s.indexOf`, in our code as
 * in node:http and undici) through a generic property lookup instead of a
 * constant: about five times the cost per call, on every request. V8 makes a
 * prototype fast again when a property is looked up through an ordinary
 * object whose chain holds it; nothing on the request path does that for
 * String.prototype, so this does it once, right after such a module loads.
 */

// V8 acts on the lookup only once the probing code has feedback, which it
// allocates lazily (after ~25 lookups here): 1000 leaves a wide margin and
// takes microseconds, once. test/unit/fast-prototype.test.ts checks the effect.
const PROBE_LOOKUPS = 1000;

/** Looks a property up through `proto` until V8 has made it a fast prototype again. */
export function refastPrototype(proto: object): void {
  const probe = Object.create(proto) as Record<string, unknown>;
  for (let i = 0; i < PROBE_LOOKUPS; i++) void probe["patgate:probe"];
}
