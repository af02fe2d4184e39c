/** The shapes scenarios hand to the report. */

/** One target of the issue, evaluated. `pass` is null when it could not be measured. */
export interface Check {
  readonly id: string;
  readonly what: string;
  readonly value: number | null;
  readonly unit: string;
  readonly goal: string;
  readonly pass: boolean | null;
  readonly note?: string;
}

export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | number | null>>;
  readonly notes?: readonly string[];
}

export interface ScenarioResult {
  readonly id: string;
  readonly config: Record<string, unknown>;
  /** Every run, as measured. */
  readonly runs: readonly unknown[];
  readonly summary: Record<string, unknown>;
  readonly tables: readonly Table[];
  readonly checks: readonly Check[];
}
