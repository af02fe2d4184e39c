import { describe, expect, it } from "vitest";
import { Tail, usageFromTail } from "../../src/upstream/usage.ts";

describe("usageFromTail", () => {
  it("reads OpenAI JSON usage", () => {
    expect(usageFromTail('{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}')).toEqual({ inputTokens: 12, outputTokens: 7 });
  });
  it("reads the final SSE usage chunk, not earlier ones", () => {
    const sse = 'data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\ndata: {"choices":[],"usage":{"prompt_tokens": 30, "completion_tokens" : 64}}\n\ndata: [DONE]\n\n';
    expect(usageFromTail(sse)).toEqual({ inputTokens: 30, outputTokens: 64 });
  });
  it("reads Responses API and Ollama shapes", () => {
    expect(usageFromTail('{"usage":{"input_tokens":5,"output_tokens":9}}')).toEqual({ inputTokens: 5, outputTokens: 9 });
    expect(usageFromTail('{"done":true,"prompt_eval_count":26,"eval_count":290}\n')).toEqual({ inputTokens: 26, outputTokens: 290 });
  });
  it("ignores usage-looking text inside a JSON string", () => {
    expect(usageFromTail('{"content":"say \\"prompt_tokens\\": 99"}')).toBeNull();
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
