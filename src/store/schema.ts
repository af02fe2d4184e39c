/**
 * The embedded store's SQLite schema, as an ordered list of migrations. The
 * database's `PRAGMA user_version` is the number of the last one applied; on
 * open, the missing ones run in order, each in the same transaction as the
 * version bump, so a crash leaves the schema at one version or the next.
 *
 * To add a table, append a migration with the next number; never edit one
 * that has shipped.
 */
import type { DatabaseSync } from "./sqlite.ts";

export interface Migration {
  readonly version: number;
  readonly sql: string;
}

/*
 * Version 1. One row per record. Scopes and role lists are JSON text inside
 * their record's row: they are only ever read and written with it, and a PAT
 * is one row to fetch on the hot path's cache miss.
 *
 * Indexes are exactly the Store interface's lookups: a PAT by id (primary key),
 * by user (UNIQUE(user_id, name) also makes names unique per user),
 * memberships by domain (primary key) and by user (memberships_by_user).
 *
 * `changes` is the change feed between processes: every change event, in
 * commit order, written in the change's own transaction. Other processes read
 * the rows after the last seq they saw; `meta.pruned_through` says up to which
 * seq old rows are gone, so a reader that fell that far behind knows to reset.
 */
const V1 = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE pats (
  id                     TEXT PRIMARY KEY,
  user_id                TEXT NOT NULL,
  name                   TEXT NOT NULL,
  description            TEXT NOT NULL,
  scopes                 TEXT NOT NULL,
  secret_hash            TEXT NOT NULL,
  prev_secret_hash       TEXT,
  prev_secret_expires_at INTEGER,
  issued_at              INTEGER NOT NULL,
  expires_at             INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL,
  last_used_at           INTEGER,
  revoked                INTEGER NOT NULL CHECK (revoked IN (0, 1)),
  revoked_at             INTEGER,
  version                INTEGER NOT NULL,
  UNIQUE (user_id, name)
) STRICT;

CREATE TABLE domains (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  upstream   TEXT,
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE memberships (
  domain_id TEXT NOT NULL,
  user_id   TEXT NOT NULL,
  roles     TEXT NOT NULL,
  PRIMARY KEY (domain_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_id, domain_id);

CREATE TABLE roles (
  name       TEXT PRIMARY KEY,
  operations TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE admin_keys (
  id         TEXT PRIMARY KEY,
  hash       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE changes (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  origin TEXT NOT NULL,
  at     INTEGER NOT NULL,
  event  TEXT NOT NULL
) STRICT;
`;

/*
 * Version 2. The web page's sessions (src/store/sessions-embedded.ts), so that
 * they survive a restart and every process on the database sees the same ones.
 * `id` is the session's kind and a keyed hash of its cookie value (never the
 * cookie); `expires_at` is when the row stops counting, read with every
 * lookup; expired rows are swept by that index. No change rows: sessions are
 * read from the table on every use, never cached.
 */
const V2 = `
CREATE TABLE ui_sessions (
  id         TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);
`;

/*
 * Version 3. A PAT's own limits (docs/limits.md), tighter than the policies:
 * JSON text, NULL for a PAT without any.
 */
const V3 = `
ALTER TABLE pats ADD COLUMN limits TEXT;
`;

/*
 * Version 4. Usage buckets (src/usage/sqlite-buckets.ts): one row per bucket
 * width, bucket start (epoch ms, UTC hour or day) and series (PAT, user,
 * domain, model, operation), its totals added to by every process's flush
 * (INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x), so several
 * gateways on the file sum up. The primary key leads with (width, start): a
 * read of a range of buckets and the retention's delete of old ones are
 * range searches on it; usage_by_user serves one user's range.
 */
const V4 = `
CREATE TABLE usage_buckets (
  width                   TEXT NOT NULL CHECK (width IN ('1h', '1d')),
  start                   INTEGER NOT NULL,
  pat_id                  TEXT NOT NULL,
  user_id                 TEXT NOT NULL,
  domain_id               TEXT NOT NULL,
  model                   TEXT NOT NULL,
  operation               TEXT NOT NULL,
  requests                INTEGER NOT NULL,
  input_tokens            INTEGER NOT NULL,
  output_tokens           INTEGER NOT NULL,
  cached_tokens           INTEGER NOT NULL,
  estimated_requests      INTEGER NOT NULL,
  estimated_input_tokens  INTEGER NOT NULL,
  estimated_output_tokens INTEGER NOT NULL,
  PRIMARY KEY (width, start, pat_id, user_id, domain_id, model, operation)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_by_user ON usage_buckets (width, user_id, start);
`;

/** Every migration, in order; the last one's number is the schema this code reads and writes. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, sql: V1 },
  { version: 2, sql: V2 },
  { version: 3, sql: V3 },
  { version: 4, sql: V4 },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Brings the schema up to SCHEMA_VERSION; call inside a write transaction.
 * Refuses a database written by a newer version (its schema is unknown here).
 */
export function migrate(db: DatabaseSync, file: string, migrations: readonly Migration[] = MIGRATIONS): void {
  const current = Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  if (current > latest) {
    throw new Error(`embedded store ${file} has schema version ${current}, newer than this patgate understands (${latest}); run the patgate version that wrote it, or restore a backup`);
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.exec(m.sql);
    // PRAGMA takes no bound parameters; the value is our own integer.
    db.exec(`PRAGMA user_version = ${Math.trunc(m.version)}`);
  }
}
