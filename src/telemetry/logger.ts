import pino, { type Logger } from "pino";

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
    },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }),
  );
}

export type { Logger };
