/**
 * Durations as people type them (PAT validity, config): `90m`, `30d`, `1h30m`.
 * Whole numbers only, units s m h d w y (y = 365 days), largest unit first,
 * each at most once. Not on the hot path, so errors aim to be helpful.
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const YEAR = 365 * DAY;
const MAX_MS = 100 * YEAR;

// Descending, which is also the order units must appear in.
const UNITS: readonly (readonly [string, number])[] = [
  ["y", YEAR],
  ["w", WEEK],
  ["d", DAY],
  ["h", HOUR],
  ["m", MINUTE],
  ["s", SECOND],
];

// Weeks are left out of output so 30d reads as 30d, not 4w2d.
const FORMAT_UNITS = UNITS.filter(([u]) => u !== "w");

const EXAMPLE = "write a whole number and a unit (s, m, h, d, w, y), e.g. 30d, 720h or 1h30m";

export type DurationResult = { ok: true; ms: number } | { ok: false; error: string };

function fail(error: string): DurationResult {
  return { ok: false, error };
}

/** Parses `90m`, `30d`, `1h30m`… into milliseconds, or says in plain words what is wrong. */
export function parseDuration(text: string): DurationResult {
  if (typeof text !== "string") return fail(`a duration must be text; ${EXAMPLE}`);
  const src = text.trim();
  if (src === "") return fail(`the duration is empty; ${EXAMPLE}`);
  // Bounds the BigInt work below; nothing sensible is this long.
  if (src.length > 64) return fail(`the duration is ${src.length} characters long; ${EXAMPLE}`);
  const q = JSON.stringify(src);
  if (src.startsWith("-")) return fail(`duration ${q} is negative; it must be positive, e.g. 30d`);
  if (/\s/.test(src)) return fail(`duration ${q} contains spaces; write it without them, e.g. 1h30m`);
  if (!/^[0-9]/.test(src)) return fail(`${q} is not a duration; ${EXAMPLE}`);

  // number: digits with an optional fraction (',' too, for those who write 1,5d); unit: a run of letters.
  const part = /([0-9]+)(?:[.,]([0-9]*))?([A-Za-z]*)/y;
  let pos = 0;
  let lastUnit = -1;
  let fractional = false;
  // Exact rational total: numerator in ms over 10^scale, so `1.5d` can be turned into a suggestion.
  let num = 0n;
  let scale = 0;
  while (pos < src.length) {
    part.lastIndex = pos;
    const m = part.exec(src);
    if (m === null) return fail(`${q} is not a duration; ${EXAMPLE}`);
    pos = part.lastIndex;
    const [matched, whole = "", frac, unitText = ""] = m;
    if (unitText === "") {
      if (pos === src.length) return fail(`duration ${q} has no unit after ${matched}; add one of s, m, h, d, w, y (e.g. ${frac === undefined ? whole : "30"}d)`);
      return fail(`${q} is not a duration; ${EXAMPLE}`);
    }
    const unit = unitText.toLowerCase();
    const idx = UNITS.findIndex(([u]) => u === unit);
    if (idx < 0) return fail(`duration ${q} has unknown unit ${JSON.stringify(unitText)}; use s, m, h, d, w or y`);
    if (idx <= lastUnit) {
      return fail(`duration ${q} has units out of order or repeated; go from largest to smallest, each once, e.g. 1h30m`);
    }
    lastUnit = idx;
    const unitMs = BigInt(UNITS[idx]?.[1] ?? 0);
    const f = frac ?? "";
    if (frac !== undefined) fractional = true;
    const partScale = f.length;
    const partNum = BigInt(whole + f) * unitMs; // over 10^partScale
    if (partScale > scale) {
      num *= 10n ** BigInt(partScale - scale);
      scale = partScale;
    }
    num += partNum * 10n ** BigInt(scale - partScale);
  }

  const div = 10n ** BigInt(scale);
  if (num === 0n) return fail(`duration ${q} is zero; it must be at least 1s`);
  if (num > BigInt(MAX_MS) * div) return fail(`duration ${q} is longer than the maximum of 100y`);
  if (fractional) {
    if (num % (BigInt(SECOND) * div) !== 0n) return fail(`duration ${q} is fractional and not a whole number of seconds; the smallest step is 1s`);
    return fail(`duration ${q} is fractional; write it in whole units, e.g. ${singleUnit(Number(num / div))}`);
  }
  return { ok: true, ms: Number(num) };
}

// The same span in the largest single unit that divides it: 1.5d → 36h.
function singleUnit(ms: number): string {
  for (const [u, size] of UNITS) {
    if (ms % size === 0) return `${ms / size}${u}`;
  }
  return `${ms / SECOND}s`;
}

/** Formats milliseconds as `30d`, `1h30m`… (y d h m s, whole seconds, rounded down); inverse of parseDuration. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`formatDuration: expected a non-negative finite number, got ${ms}`);
  let rest = Math.floor(ms / SECOND) * SECOND;
  if (rest === 0) return "0s";
  let out = "";
  for (const [u, size] of FORMAT_UNITS) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      out += `${n}${u}`;
      rest -= n * size;
    }
  }
  return out;
}
