import type { Logger } from "pino";

/** Appends one flat field list to an external stream (a Redis Stream in production). */
export type AuditAppender = (fields: string[]) => Promise<unknown>;

/** A management change as a stream entry's field list (the gateway's and the CLI's local commands'). */
export function changeEntry(action: string, actor: string, fields: Readonly<Record<string, unknown>>, requestId: string): string[] {
  return ["kind", "change", "at", new Date().toISOString(), "action", action, "actor", actor, "req_id", requestId, "fields", JSON.stringify(fields)];
}

/**
 * The optional second home of audit events: every management change (and, when
 * enabled, every data-plane decision) appended to a Redis Stream for other
 * tools. The log stream always has them. Appending never blocks or fails the
 * action it records: a failed append is counted and logged.
 */
export class AuditStream {
  readonly #log: Logger;
  readonly #append: AuditAppender;
  failedAppends = 0;

  constructor(log: Logger, append: AuditAppender) {
    this.#log = log;
    this.#append = append;
  }

  /** A management change: what, by whom, and its fields (ids, before/after). Never secrets. */
  change(action: string, actor: string, fields: Readonly<Record<string, unknown>>, requestId: string): void {
    this.#send(changeEntry(action, actor, fields, requestId));
  }

  /** A data-plane allow/deny. */
  decision(fields: string[]): void {
    this.#send(["kind", "decision", "at", new Date().toISOString(), ...fields]);
  }

  #send(fields: string[]): void {
    this.#append(fields).catch((err: unknown) => {
      this.failedAppends++;
      this.#log.warn({ problem: (err as Error).message }, "audit stream append failed");
    });
  }
}
