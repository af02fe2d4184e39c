/**
 * The live route table: loaded once at start (errors stop the process),
 * swapped atomically on reload, and kept at the last good version when a
 * reload is invalid.
 */
import { readFileSync, statSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Catalog } from "../config/catalog.ts";
import { parseRouteTable, RouteTableError } from "./table.ts";
import type { RouteTable } from "./table.ts";

/** Outcome of one reload; on error the previous table stays in service. */
export type ReloadResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** Options for {@link RouteTableHolder.watch}. */
export interface WatchOptions {
  /** Quiet time after the last file-system event before reloading (ms). */
  readonly debounceMs?: number;
  /** Delay before re-arming the watcher after it failed (ms). */
  readonly retryMs?: number;
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new RouteTableError([`${file}: cannot read: ${(err as Error).message}`]);
  }
}

/** Holds the current RouteTable and reloads it from its file. */
export class RouteTableHolder {
  readonly file: string;
  readonly #catalog: Catalog;
  #current: RouteTable;
  /** Text of the last file version tried, good or bad: unchanged files are not re-reported. */
  #lastText: string | null;
  #watcher: FSWatcher | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #retry: NodeJS.Timeout | null = null;
  #closed = false;

  private constructor(file: string, catalog: Catalog, table: RouteTable, text: string) {
    this.file = file;
    this.#catalog = catalog;
    this.#current = table;
    this.#lastText = text;
  }

  /** Load and validate the file; throws RouteTableError, so a bad table stops start-up. */
  static load(file: string, catalog: Catalog): RouteTableHolder {
    const text = readText(file);
    return new RouteTableHolder(file, catalog, parseRouteTable(text, file, catalog), text);
  }

  /** The table to match the next request against. */
  get current(): RouteTable {
    return this.#current;
  }

  /** Re-read the file now; swaps the table only when the new one is valid. */
  reload(): ReloadResult {
    let text: string;
    try {
      text = readText(this.file);
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    return this.#apply(text);
  }

  #apply(text: string): ReloadResult {
    this.#lastText = text;
    try {
      this.#current = parseRouteTable(text, this.file, this.#catalog);
      return { ok: true };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }

  /**
   * Reload on change. Watches the file's directory, not the file: Kubernetes
   * updates a ConfigMap by swapping a symlink, and editors replace files by
   * rename, both of which a watch on the file itself would miss.
   */
  watch(onReload: (result: ReloadResult) => void, options: WatchOptions = {}): void {
    if (this.#closed || this.#watcher !== null) return;
    const debounceMs = options.debounceMs ?? 100;
    const retryMs = options.retryMs ?? 1000;
    const dir = dirname(resolve(this.file));

    const report = (r: ReloadResult): void => {
      try {
        onReload(r);
      } catch {
        // The callback is the reporter; if it throws there is nowhere left to
        // report to, and a timer callback must not crash the gateway.
      }
    };

    // inotify watches an inode: once the directory is removed or replaced the
    // watcher goes quiet without an error, so each check re-arms on a change.
    let dirIno = -1;
    const dirInode = (): number => {
      try {
        return statSync(dir).ino;
      } catch {
        return -1;
      }
    };

    const check = (): void => {
      this.#debounce = null;
      if (this.#closed) return;
      if (this.#watcher !== null && dirInode() !== dirIno) {
        this.#watcher.close();
        this.#watcher = null;
        retry();
      }
      let text: string;
      try {
        text = readText(this.file);
      } catch (err) {
        // Missing mid-swap or deleted: keep serving the last good table. A
        // later event (the file coming back) triggers another check.
        this.#lastText = null;
        report({ ok: false, error: (err as Error).message });
        return;
      }
      if (text === this.#lastText) return;
      report(this.#apply(text));
    };

    const schedule = (): void => {
      if (this.#closed) return;
      if (this.#debounce !== null) clearTimeout(this.#debounce);
      this.#debounce = setTimeout(check, debounceMs);
      this.#debounce.unref();
    };

    let failing = false;
    const arm = (): void => {
      this.#retry = null;
      if (this.#closed) return;
      try {
        const w = watch(dir, { persistent: false }, schedule);
        w.on("error", (err: Error) => {
          w.close();
          if (this.#watcher === w) this.#watcher = null;
          report({ ok: false, error: `watching ${dir} failed: ${err.message}` });
          retry();
        });
        this.#watcher = w;
        dirIno = dirInode();
        if (failing) schedule(); // changes may have happened while blind
        failing = false;
      } catch (err) {
        if (!failing) report({ ok: false, error: `cannot watch ${dir}: ${(err as Error).message}` });
        failing = true;
        retry();
      }
    };

    const retry = (): void => {
      if (this.#closed || this.#retry !== null) return;
      failing = true;
      this.#retry = setTimeout(arm, retryMs);
      this.#retry.unref();
    };

    arm();
  }

  /** Stop watching for good; the current table stays usable. */
  close(): void {
    this.#closed = true;
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#debounce = null;
    this.#retry = null;
    this.#watcher?.close();
    this.#watcher = null;
  }
}
