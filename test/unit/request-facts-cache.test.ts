import { describe, expect, it } from "vitest";
import { RequestFactsCache } from "../../src/util/request-facts-cache.ts";

interface Rec {
  readonly id: string;
}

function counting(): { cache: RequestFactsCache<Rec, string>; made: string[] } {
  const made: string[] = [];
  const cache = new RequestFactsCache<Rec, string>((rec, d, m, o) => {
    const v = `${rec.id}/${d}/${m}/${o}`;
    made.push(v);
    return v;
  });
  return { cache, made };
}

describe("RequestFactsCache", () => {
  it("builds a value once per record and facts, also when the facts come as fresh strings", () => {
    const { cache, made } = counting();
    const rec = { id: "p1" };
    const first = cache.get(rec, "d", "m", "chat");
    // Fresh string objects with the same text (as a request's parsed path and body give).
    const again = cache.get(rec, ["d"].join(""), `${"m"}`, "chat");
    expect(again).toBe(first);
    expect(made).toEqual(["p1/d/m/chat"]);
  });

  it("answers each of the facts separately, also after the last-asked entry moved on", () => {
    const { cache, made } = counting();
    const rec = { id: "p1" };
    expect(cache.get(rec, "d", "m", "chat")).toBe("p1/d/m/chat");
    expect(cache.get(rec, "d", "m2", "chat")).toBe("p1/d/m2/chat");
    expect(cache.get(rec, "e", "m", "chat")).toBe("p1/e/m/chat");
    expect(cache.get(rec, "d", "m", "embed")).toBe("p1/d/m/embed");
    // Back to the first: from the maps, not rebuilt.
    expect(cache.get(rec, "d", "m", "chat")).toBe("p1/d/m/chat");
    expect(made).toEqual(["p1/d/m/chat", "p1/d/m2/chat", "p1/e/m/chat", "p1/d/m/embed"]);
  });

  it("never serves one record's value for another (a changed PAT is a new record)", () => {
    const { cache } = counting();
    expect(cache.get({ id: "p1" }, "d", "m", "chat")).toBe("p1/d/m/chat");
    expect(cache.get({ id: "p2" }, "d", "m", "chat")).toBe("p2/d/m/chat");
  });

  it("keeps each level bounded: past 64 domains a record starts its domains afresh", () => {
    const { cache, made } = counting();
    const rec = { id: "p1" };
    for (let i = 0; i < 65; i++) cache.get(rec, `d${i}`, "m", "chat");
    made.length = 0;
    cache.get(rec, "d64", "m", "chat"); // the last asked
    cache.get(rec, "d63", "m", "chat"); // dropped when d64 was added: rebuilt
    expect(made).toEqual(["p1/d63/m/chat"]);
  });
});
