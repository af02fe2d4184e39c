import pino, { type Logger } from "pino";
import { redactPats } from "../tokens/format.ts";

/**
 * How log lines reach stdout: buffered (one write per 4 KiB, off the event loop's
 * thread), and flushed at least every second so that at low traffic a line is
 * not held back until 4 KiB have gathered. Shutdown flushes what is left.
 */
export const DESTINATION = { dest: 1, sync: false, minLength: 4096, periodicFlush: 1000 } as const;

/**
 * The one pino instance. Serializers are allow-lists (nothing from a request
 * is logged unless named here); `redact` is the second line of defence.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "patgate" },
      // Epoch milliseconds (pino's default `time`): formatting ISO dates on every access line costs measurable CPU.
      redact: {
        // Exact paths only: a wildcard makes pino walk every key of every line,
        // which on the access line (already built from an allow-list) costs more than the hash check.
        paths: [
          "authorization",
          "headers.authorization",
          "req.headers.authorization",
          "req.headers.cookie",
          "token",
          "pepper",
          "secret",
          "secretHash",
          "err.config.headers.authorization",
        ],
        censor: "[redacted]",
      },
      serializers: {
        err: pino.stdSerializers.err,
      },
      // Third line: whatever a line holds (an error's message, a field nobody named), nothing shaped like a PAT is written.
      hooks: { streamWrite: redactPats },
    },
    destination ?? pino.destination(DESTINATION),
  );
}

export type { Logger };
