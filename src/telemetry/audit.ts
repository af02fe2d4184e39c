import type { Logger } from "pino";

/** Who did something: a user (OIDC subject), an operator (admin key id) or the gateway itself. */
export interface Actor {
  readonly kind: "user" | "admin" | "system";
  readonly id: string;
}

/** One management change, with before/after where they apply. Never secrets or hashes. */
export interface AuditEvent {
  /** e.g. "pat.create", "pat.revoke", "member.remove". */
  readonly action: string;
  readonly actor: Actor;
  /** What was acted on, e.g. { pat_id, user_id } or { domain_id, user_id }. */
  readonly target: Readonly<Record<string, string>>;
  readonly before?: unknown;
  readonly after?: unknown;
  readonly outcome: "ok" | "denied" | "failed";
  readonly reason?: string;
  readonly requestId?: string;
}

/** Appends one flat field list to an external stream (a Redis Stream in production). */
export type AuditAppender = (fields: string[]) => Promise<unknown>;

/**
 * Audit events go to the log stream as `{"audit": …}` lines and, when an
 * appender is configured, to a Redis Stream for other tools. Appending never
 * blocks or fails the action: a failed append is counted and logged.
 */
export class Audit {
  readonly #log: Logger;
  readonly #append: AuditAppender | null;
  failedAppends = 0;

  constructor(log: Logger, append: AuditAppender | null = null) {
    this.#log = log;
    this.#append = append;
  }

  /** Records a management change. */
  record(event: AuditEvent): void {
    const at = new Date().toISOString();
    this.#log.info({ audit: { ...event, at } }, "audit");
    this.appendFields(["kind", "change", "at", at, "event", JSON.stringify(event)]);
  }

  /** Sends fields to the stream, if any; used for data-plane decisions too when enabled. */
  appendFields(fields: string[]): void {
    if (this.#append === null) return;
    this.#append(fields).catch((err: unknown) => {
      this.failedAppends++;
      this.#log.warn({ err: (err as Error).message }, "audit stream append failed");
    });
  }
}
