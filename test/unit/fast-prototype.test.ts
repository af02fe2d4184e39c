import { execFileSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const url = (rel: string): string => pathToFileURL(path.join(ROOT, rel)).href;

/**
 * Runs `code` as an ES module in a fresh node with V8's natives syntax, so it
 * can ask V8 whether an object has fast properties; returns what it prints.
 */
function v8(code: string): string {
  return execFileSync(process.execPath, ["--allow-natives-syntax", "--input-type=module", "-e", code], { cwd: ROOT, encoding: "utf8" }).trim();
}

const FAST = "%HasFastProperties(String.prototype)";

describe("String.prototype stays fast with ioredis loaded", () => {
  it("is slow after loading ioredis alone: the cause (if this fails, ioredis changed and the workaround may go)", () => {
    expect(v8(`await import("ioredis"); console.log(${FAST});`)).toBe("false");
  });

  it("is fast again once the Redis store module has loaded, and after the whole app has", () => {
    expect(v8(`await import(${JSON.stringify(url("src/store/redis.ts"))}); console.log(${FAST});`)).toBe("true");
    expect(v8(`await import(${JSON.stringify(url("src/app.ts"))}); console.log(${FAST});`)).toBe("true");
  });

  it("refastPrototype restores a builtin prototype that subclassing made slow, and keeps its behaviour", () => {
    const out = v8(`
      const { refastPrototype } = await import(${JSON.stringify(url("src/util/fast-prototype.ts"))});
      class Tagged extends String {}
      const before = ${FAST};
      refastPrototype(String.prototype);
      console.log(JSON.stringify([before, ${FAST}, "pat_x".charCodeAt(0), new Tagged("ab").slice(1), Object.getOwnPropertyNames(String.prototype).length]));
    `);
    const baseline = v8(`console.log(Object.getOwnPropertyNames(String.prototype).length);`);
    expect(JSON.parse(out)).toEqual([false, true, 0x70, "b", Number(baseline)]);
  });
});
