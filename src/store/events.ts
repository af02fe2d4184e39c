/** The wire form of change events, shared by the Redis channel and the embedded store's change table. */
import type { ChangeEvent } from "./types.ts";

/** A change event from its JSON form, or null for anything malformed (a feed ignores those). */
export function parseEvent(message: string): ChangeEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  const str = (x: unknown): x is string => typeof x === "string";
  switch (o["kind"]) {
    case "pat":
      return str(o["id"]) ? { kind: "pat", id: o["id"] } : null;
    case "domain":
      return str(o["id"]) ? { kind: "domain", id: o["id"] } : null;
    case "role":
      return str(o["name"]) ? { kind: "role", name: o["name"] } : null;
    case "member":
      return str(o["domainId"]) && str(o["userId"]) ? { kind: "member", domainId: o["domainId"], userId: o["userId"] } : null;
    case "reset":
      return { kind: "reset" };
    default:
      return null;
  }
}
