import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Tail, usageFromTail } from "../../src/upstream/usage.ts";

describe("usageFromTail", () => {
  it("reads OpenAI JSON usage", () => {
    expect(usageFromTail('{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}')).toEqual({ inputTokens: 12, outputTokens: 7, cachedTokens: 0 });
  });
  it("reads the final SSE usage chunk, not earlier ones", () => {
    const sse = 'data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\ndata: {"choices":[],"usage":{"prompt_tokens": 30, "completion_tokens" : 64}}\n\ndata: [DONE]\n\n';
    expect(usageFromTail(sse)).toEqual({ inputTokens: 30, outputTokens: 64, cachedTokens: 0 });
  });
  it("reads Responses API and Ollama shapes", () => {
    expect(usageFromTail('{"usage":{"input_tokens":5,"output_tokens":9}}')).toEqual({ inputTokens: 5, outputTokens: 9, cachedTokens: 0 });
    expect(usageFromTail('{"done":true,"prompt_eval_count":26,"eval_count":290}\n')).toEqual({ inputTokens: 26, outputTokens: 290, cachedTokens: 0 });
  });
  it("finds keys that begin right at the start, and after a long answer", () => {
    expect(usageFromTail('"completion_tokens":3,"prompt_eval_count":4')).toEqual({ inputTokens: 4, outputTokens: 3, cachedTokens: 0 });
    const answer = `{"choices":[{"message":{"content":"${"tokens _tokens eval_count ".repeat(150)}"}}],`;
    expect(usageFromTail(`${answer}"usage":{"prompt_tokens":12,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}`)).toEqual({ inputTokens: 12, outputTokens: 7, cachedTokens: 2 });
  });
  it("ignores usage-looking text inside a JSON string", () => {
    expect(usageFromTail('{"content":"say \\"prompt_tokens\\": 99"}')).toBeNull();
  });
  it("agrees with a separate search for each kind, last match wins, on any mix of keys, spacing and text", () => {
    // The definition: the last "input key": n and, independently, the last "output key": n.
    const last = (re: RegExp, text: string): number | null => {
      let found: string | null = null;
      for (const m of text.matchAll(re)) found = m[1] ?? null;
      return found === null ? null : Number(found);
    };
    const oracle = (text: string): { inputTokens: number; outputTokens: number; cachedTokens: number } | null => {
      const i = last(/"(?:prompt_tokens|input_tokens|prompt_eval_count)"\s*:\s*(\d{1,12})/g, text);
      const o = last(/"(?:completion_tokens|output_tokens|eval_count)"\s*:\s*(\d{1,12})/g, text);
      const c = last(/"cached_tokens"\s*:\s*(\d{1,12})/g, text);
      return i === null && o === null ? null : { inputTokens: i ?? 0, outputTokens: o ?? 0, cachedTokens: c ?? 0 };
    };
    const keys = ["cached_tokens", "prompt_tokens", "input_tokens", "prompt_eval_count", "completion_tokens", "output_tokens", "eval_count", "total_tokens", "eval_duration", "tokens"];
    const piece = fc.oneof(
      fc.tuple(fc.constantFrom(...keys), fc.constantFrom("", " ", "\t", "\n  "), fc.constantFrom("", " ", "\n"), fc.oneof(fc.nat(), fc.constant(12345678901234), fc.constant("x"))).map(([k, s1, s2, v]) => `"${k}"${s1}:${s2}${v}`),
      fc.constantFrom('\\"', '"', ",", "{", "}", "data: ", "\n\n", '"prompt_', "_tokens", "eval_count"),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (parts) => {
        const text = parts.join("");
        expect(usageFromTail(text)).toEqual(oracle(text));
      }),
      { numRuns: 3000 },
    );
  });
  it("null when nothing is reported", () => {
    expect(usageFromTail('{"data":[]}')).toBeNull();
    expect(usageFromTail("")).toBeNull();
  });
});

describe("Tail", () => {
  it("keeps the last two small chunks and at most 4 KiB", () => {
    const t = new Tail();
    for (let i = 0; i < 100; i++) t.push(Buffer.from(`chunk${i};`));
    expect(t.text()).toBe("chunk98;chunk99;");
    t.push(Buffer.alloc(10_000, 97));
    expect(t.text()).toHaveLength(4096);
  });
  it("empty before any chunk", () => {
    expect(new Tail().text()).toBe("");
  });
});
