/**
 * Certificate reload without a restart. Kubernetes updates a mounted Secret by
 * writing a new timestamped directory and renaming a `..data` symlink over the
 * old one: the files the gateway was given (`tls.crt -> ..data/tls.crt`) never
 * change themselves, so a watcher on them misses the swap. This watches their
 * directories instead, re-reads and checks the pair after each burst of events,
 * and hands a good new pair on; a bad one is logged and the last good pair stays.
 */
import { timingSafeEqual } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { readKeyPair, type KeyPair, type KeyPairFiles } from "../config/tls.ts";
import type { Metrics } from "../telemetry/metrics.ts";

export type ReloadResult = { readonly ok: true; readonly changed: boolean } | { readonly ok: false; readonly error: string };

export interface ReloaderOptions {
  /** The metrics label and log name: "server", or "upstream:<id>". */
  readonly name: string;
  readonly files: KeyPairFiles;
  /** The pair checked at start. */
  readonly initial: KeyPair;
  /** Puts a checked new pair in use for new connections; may throw (the pair is then refused). */
  readonly apply: (pair: KeyPair) => void;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Events within this long are one change (a kubelet swap is several renames). */
  readonly debounceMs?: number;
}

/** Keeps one certificate and key in use, swapping in a good new pair when its files change or when asked. */
export class CertificateReloader {
  readonly name: string;
  readonly #opts: ReloaderOptions;
  #current: KeyPair;
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: ReloaderOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#current = opts.initial;
    opts.metrics.tlsCertificateExpiry.labels(opts.name).set(Math.floor(opts.initial.notAfter.getTime() / 1000));
  }

  /** The pair in use now. */
  get current(): KeyPair {
    return this.#current;
  }

  /** Starts watching the directories that hold the files. */
  watch(): void {
    const f = this.#opts.files;
    const dirs = new Set([f.certFile, f.keyFile, ...(f.caFile === null ? [] : [f.caFile])].map((file) => path.dirname(file)));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.#schedule());
        w.on("error", (err) => this.#opts.log.warn({ certificate: this.name, dir, err: err.message }, "certificate watcher stopped; SIGHUP still reloads"));
        this.#watchers.push(w);
      } catch (err) {
        this.#opts.log.warn({ certificate: this.name, dir, err: (err as Error).message }, "cannot watch the certificate's directory; SIGHUP still reloads");
      }
    }
  }

  /**
   * Reads and checks the files now. A good pair that differs from the one in
   * use (or any good pair, when `force`: SIGHUP) is put in use; a bad one is
   * logged with its reason and counted, and the last good pair stays.
   */
  reload(how: string, force = true): ReloadResult {
    const { log, metrics, files } = this.#opts;
    const r = readKeyPair(files);
    if (!r.ok) {
      metrics.tlsReloads.labels(this.name, "invalid").inc();
      log.error({ certificate: this.name, how, problem: r.error }, "certificate reload failed; keeping the last good certificate");
      return { ok: false, error: r.error };
    }
    const pair = r.pair;
    if (!force && sameDigest(pair.digest, this.#current.digest)) return { ok: true, changed: false };
    try {
      this.#opts.apply(pair);
    } catch (err) {
      const error = `${files.certFile}: ${(err as Error).message}`;
      metrics.tlsReloads.labels(this.name, "invalid").inc();
      log.error({ certificate: this.name, how, problem: error }, "certificate reload failed; keeping the last good certificate");
      return { ok: false, error };
    }
    const changed = !sameDigest(pair.digest, this.#current.digest);
    this.#current = pair;
    metrics.tlsReloads.labels(this.name, "ok").inc();
    metrics.tlsCertificateExpiry.labels(this.name).set(Math.floor(pair.notAfter.getTime() / 1000));
    log.info({ certificate: this.name, how, serial: pair.serial, not_after: pair.notAfter.toISOString(), changed }, "certificate reloaded");
    return { ok: true, changed };
  }

  /** Stops watching. */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }

  #schedule(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.reload("file change", false);
    }, this.#opts.debounceMs ?? 100);
    this.#timer.unref();
  }
}

/** Whether two pairs' SHA-256 digests (hex) are the same; the digest covers the private key, so compared in constant time. */
function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
}
