// The filter that drops the usage event the gateway asked for on a client's
// behalf: whatever way the upstream splits its bytes and ends its lines, the
// client receives every other event byte for byte, and never half an event.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { UsageChunkFilter } from "../../src/limits/usage-chunk.ts";

const content = (n: number, nl: string): string => `data: {"id":"c","choices":[{"index":0,"delta":{"content":"t${n}"}}],"usage":null}${nl}${nl}`;
const usage = (nl: string, sp = ""): string =>
  `data: {"id":"c","choices":${sp}[],"usage":${sp}{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}${nl}${nl}`;
const done = (nl: string): string => `data: [DONE]${nl}${nl}`;

/** Runs `text` through a filter in the given pieces; returns what the client got after each piece and at the end. */
function relay(text: string, cuts: number[]): { pieces: string[]; all: string } {
  const f = new UsageChunkFilter();
  const bytes = Buffer.from(text);
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    pieces.push(f.push(bytes.subarray(from, c)).toString());
    from = c;
  }
  pieces.push(f.end().toString());
  return { pieces, all: pieces.join("") };
}

describe("UsageChunkFilter", () => {
  for (const [name, nl] of [["LF", "\n"], ["CRLF", "\r\n"], ["CR", "\r"]] as const) {
    it(`drops only the usage event, with ${name} line ends, however the bytes are split`, () => {
      const events = [content(1, nl), content(2, nl), usage(nl), done(nl)];
      const want = events[0]! + events[1]! + events[3]!;
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 8 }), (cuts) => {
          const { pieces, all } = relay(events.join(""), cuts);
          expect(all).toBe(want);
          // Every piece the client gets ends on an event boundary.
          let sent = "";
          for (const p of pieces) {
            sent += p;
            expect(want.startsWith(sent)).toBe(true);
            expect(sent === "" || sent.endsWith(nl + nl)).toBe(true);
          }
        }),
      );
    });
  }

  it("recognises the usage event when the upstream's JSON has spaces after colons", () => {
    expect(relay(content(1, "\n") + usage("\n", " ") + done("\n"), []).all).toBe(content(1, "\n") + done("\n"));
  });

  it("keeps an event that merely mentions an empty list, and one with usage but choices", () => {
    const tools = `data: {"choices":[{"delta":{"tool_calls":[]}}],"usage":{"prompt_tokens":1}}\n\n`;
    expect(relay(tools, [10]).all).toBe(tools);
  });

  it("relays an unterminated last event at the end of the stream", () => {
    expect(relay(`${content(1, "\n")}data: {"choices":[{"delta":{}}]}`, [5]).all).toBe(`${content(1, "\n")}data: {"choices":[{"delta":{}}]}`);
  });

  it("stops holding back once an unterminated event outgrows its bound, and says the client is then mid-event", () => {
    const f = new UsageChunkFilter();
    expect(f.push(Buffer.from(content(1, "\n"))).toString()).toBe(content(1, "\n"));
    expect(f.atEventEnd()).toBe(true);
    const big = Buffer.alloc((1 << 20) + 10, "a");
    expect(f.push(big).length).toBe(big.length);
    expect(f.atEventEnd()).toBe(false);
    expect(f.push(Buffer.from("x")).toString()).toBe("x");
  });
});
