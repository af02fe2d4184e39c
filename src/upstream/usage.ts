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
/** The most characters a matched key has before its ending (`"completion` before `_tokens"`). */
const KEY_HEAD = 11;

/** Reads usage from the last bytes of a response (OpenAI JSON/SSE, Responses API, Ollama). */
export function usageFromTail(tail: string): Usage | null {
  // Every key the pattern matches ends in `_tokens"` or `eval_count"`: two native searches rule out the many
  // bodies with none, and the regex starts at the first (a key begins at most 11 characters before its
  // ending), not at the top of a tail that is mostly the answer's text.
  const t = tail.indexOf('_tokens"');
  const e = tail.indexOf('eval_count"');
  if (t === -1 && e === -1) return null;
  USAGE.lastIndex = Math.max(0, (t === -1 ? e : e === -1 ? t : Math.min(t, e)) - KEY_HEAD);
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
