/**
 * Drops, from an OpenAI stream, the usage chunk the gateway asked for on the
 * client's behalf (`stream_options.include_usage` it did not send), so the
 * client receives what it asked for. Only streams the gateway edited pass
 * through here; every other response is relayed chunk for chunk untouched.
 *
 * The usage chunk is the one event whose `choices` is empty and whose
 * `usage` is an object. Events end at a blank line (LF, CRLF or CR line
 * ends, as SSE allows); an event split across chunks is held until its end
 * arrives — a client's SSE parser could not use its first half anyway — so
 * what the client has received always ends on an event boundary. An event
 * that grows past MAX_HELD without ending is not an SSE event the gateway
 * can judge: the filter lets everything through from then on.
 */
const LF_LF = Buffer.from("\n\n");
const LF_CRLF = Buffer.from("\n\r\n");
const CR_CR = Buffer.from("\r\r");
const EMPTY_LIST = Buffer.from("[]");
const CHOICES_EMPTY = /"choices"\s*:\s*\[\]/;
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
const MAX_HELD = 1 << 20;

/** One per edited stream. */
export class UsageChunkFilter {
  #held: Buffer | null = null;
  /** Set once an unterminated event outgrew MAX_HELD: from then on every byte is relayed as it comes. */
  #off = false;

  /** The bytes of `chunk` (and what was held) to relay now. */
  push(chunk: Buffer): Buffer {
    if (this.#off) return chunk;
    const buf = this.#held === null ? chunk : Buffer.concat([this.#held, chunk]);
    this.#held = null;
    const end = lastEventEnd(buf);
    if (end < buf.length) {
      if (buf.length - end > MAX_HELD) {
        this.#off = true;
        return buf;
      }
      this.#held = buf.subarray(end);
    }
    if (end === 0) return EMPTY;
    const whole = end === buf.length ? buf : buf.subarray(0, end);
    // The common chunk holds content events only: one memchr-backed search for "[]" rules the usage event out.
    if (whole.indexOf(EMPTY_LIST) === -1) return whole;
    const parts: Buffer[] = [];
    const cr = whole.indexOf(0x0d) !== -1;
    let from = 0;
    while (from < whole.length) {
      const stop = nextEventEnd(whole, from, cr);
      const ev = whole.subarray(from, stop);
      if (!isUsageEvent(ev)) parts.push(ev);
      from = stop;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** Whether the client's bytes end on an event boundary (so a last frame of the gateway's own can follow). */
  atEventEnd(): boolean {
    return !this.#off;
  }

  /** What is still held at the end of the stream (an unterminated last event). */
  end(): Buffer {
    const h = this.#held ?? EMPTY;
    this.#held = null;
    return h;
  }
}

function isUsageEvent(ev: Buffer): boolean {
  if (ev.indexOf(EMPTY_LIST) === -1) return false;
  const text = ev.toString("utf8");
  return CHOICES_EMPTY.test(text) && USAGE_OBJECT.test(text);
}

/** The offset just past the last blank line in `buf`, 0 when there is none. */
function lastEventEnd(buf: Buffer): number {
  // Most chunks end on an event's end: read the last bytes here rather than search from C++ three times.
  const n = buf.length;
  const last = buf[n - 1];
  if (last === 0x0a && (buf[n - 2] === 0x0a || (buf[n - 2] === 0x0d && buf[n - 3] === 0x0a) || (buf[n - 2] === 0x0d && buf[n - 3] === 0x0d))) return n;
  if (last === 0x0d && buf[n - 2] === 0x0d) return n;
  let end = 0;
  const lf = buf.lastIndexOf(LF_LF);
  if (lf !== -1) end = lf + 2;
  // Most streams end their lines with LF alone: one memchr for a CR spares two backward searches of the whole
  // chunk for patterns it does not hold (a 64 KiB chunk cut mid-event was two full scans).
  if (buf.indexOf(0x0d) === -1) return end;
  const crlf = buf.lastIndexOf(LF_CRLF);
  if (crlf !== -1 && crlf + 3 > end) end = crlf + 3;
  const cr = buf.lastIndexOf(CR_CR);
  // "\r\r\n" is a CR line end and then a blank CRLF line: the event ends after the LF.
  if (cr !== -1 && cr + 2 > end) end = buf[cr + 2] === 0x0a ? cr + 3 : cr + 2;
  return end;
}

/** The offset just past the first blank line at or after `from`, or the end of `buf`. */
function nextEventEnd(buf: Buffer, from: number, hasCr: boolean): number {
  let end = buf.length;
  const lf = buf.indexOf(LF_LF, from);
  if (lf !== -1) end = lf + 2;
  if (!hasCr) return end;
  const crlf = buf.indexOf(LF_CRLF, from);
  if (crlf !== -1 && crlf + 3 < end) end = crlf + 3;
  const cr = buf.indexOf(CR_CR, from);
  if (cr !== -1 && cr + 2 < end) end = buf[cr + 2] === 0x0a ? cr + 3 : cr + 2;
  return end;
}

const EMPTY = Buffer.alloc(0);
