/** Token usage an upstream reported, in OpenTelemetry GenAI terms. */
export interface Usage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Of the input, tokens served from the provider's prompt cache (OpenAI `cached_tokens`); 0 when not reported. */
  readonly cachedTokens: number;
}

// Usage sits at the end of a JSON answer and in the last SSE/NDJSON events, so
// only the response tail is searched. The pattern needs an unescaped closing
// quote, so text inside a JSON string (where quotes are escaped) never matches.
// One pass finds both kinds (group 1 is set for an input count): the last of
// each kind wins. Group 2 is set for cached input tokens (`prompt_tokens_details` / `input_tokens_details`).
const USAGE = /"(?:(prompt_tokens|input_tokens|prompt_eval_count)|(cached_tokens)|completion_tokens|output_tokens|eval_count)"\s*:\s*(\d{1,12})/g;
const TAIL = 4096;

/** Reads usage from the last bytes of a response (OpenAI JSON/SSE, Responses API, Ollama). */
export function usageFromTail(tail: string): Usage | null {
  // Most bodies carry no usage at all: two native substring scans rule them out before any regex runs.
  if (!tail.includes("_tokens") && !tail.includes("eval_count")) return null;
  USAGE.lastIndex = 0;
  let input: string | null = null;
  let output: string | null = null;
  let cached: string | null = null;
  let m: RegExpExecArray | null;
  while ((m = USAGE.exec(tail)) !== null) {
    if (m[1] !== undefined) input = m[3] as string;
    else if (m[2] !== undefined) cached = m[3] as string;
    else output = m[3] as string;
  }
  if (input === null && output === null) return null;
  return { inputTokens: input === null ? 0 : Number(input), outputTokens: output === null ? 0 : Number(output), cachedTokens: cached === null ? 0 : Number(cached) };
}

/** Keeps the last few KiB of a streamed body without copying every chunk. */
export class Tail {
  #prev: Buffer | null = null;
  #last: Buffer | null = null;

  push(chunk: Buffer): void {
    if (chunk.length >= TAIL) {
      this.#prev = null;
      this.#last = chunk;
    } else {
      this.#prev = this.#last;
      this.#last = chunk;
    }
  }

  text(): string {
    const last = this.#last;
    if (last === null) return "";
    const prev = this.#prev;
    const buf = prev === null ? last : Buffer.concat([prev, last]);
    return buf.toString("utf8", Math.max(0, buf.length - TAIL));
  }
}
