/**
 * `patgate export | import | backup`: moving, copying and restoring the
 * store, run on the gateway's machine against the store its config names
 * (local commands, see local.ts). The store code is imported on first use,
 * so API commands start fast.
 */
import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import type { Settings } from "../config/config.ts";
import type { ExportCounts, LoadResult, ParsedExport } from "../store/transfer.ts";
import type { Store } from "../store/types.ts";
import { CliError, UsageError, type Command, type Ctx } from "./command.ts";
import { CONFIG_OPT, describeStore, isEmbedded, loadConfig, withStore } from "./local.ts";

const FORCE = { type: "boolean", help: "replace FILE if it exists" } as const;

export const STORAGE_COMMANDS: readonly Command[] = [
  {
    name: "export",
    summary: "Write every domain, member, role, admin-key hash and PAT (hashes only) of the configured store as JSON lines.",
    usage: "FILE [--force] [--config FILE]",
    args: ["FILE"],
    options: { config: CONFIG_OPT, force: FORCE },
    notes: `FILE "-" writes to standard output. No secret is in the file: PATs are kept as keyed hashes
(useless without the pepper), admin keys as SHA-256. Still, keep it like a backup (it is written 0600).
From the embedded store every record comes from one snapshot, so a gateway may keep running.
Load it with \`patgate import\` into an empty store of either kind: the target needs the same pepper.`,
    async run(c) {
      const s = await loadConfig(c);
      const { findPepper } = await import("../store/pepper.ts");
      const pepper = await findPepper(s);
      const target = c.arg(0);
      const counts = await withStore(s, async (store) => writeExport(c, store, pepper, target));
      const where = target === "-" ? "standard output" : target;
      if (c.json) c.printJson({ file: target, source: isEmbedded(s) ? "embedded" : "redis", counts });
      c.io.err(`Exported ${summary(counts)} from ${describeStore(s)} to ${where}.${pepper === null ? " This store has no pepper yet, so its PATs verify nowhere." : ""}\n`);
      return 0;
    },
  },
  {
    name: "import",
    summary: "Load an export into the configured store (embedded or Redis), which must be empty unless --force.",
    usage: "FILE [--force] [--ignore-pepper] [--config FILE]",
    args: ["FILE"],
    options: {
      config: CONFIG_OPT,
      force: { type: "boolean", help: "load into a store that already holds data, writing over records with the same ids" },
      "ignore-pepper": { type: "boolean", help: "load even though the target's pepper is not the source's (no imported PAT will verify)" },
    },
    notes: `FILE "-" reads standard input. Every line is checked before anything is written.
The PATs keep working only if the target gateway uses the same pepper as the source: the same
security.pepper (PATGATE_PEPPER), or for an embedded source without one, the value of its data/pepper
file. The export carries a check value of the source's pepper, and import refuses a target whose
pepper differs or that has none yet. Gateways on the target may run: they hear every change.`,
    async run(c) {
      const s = await loadConfig(c);
      const parsed = await readExport(c);
      const pepperNote = await checkPepper(c, s, parsed);
      const result = await withStore(s, async (store) => importInto(c, store, parsed, s));
      if (c.json) c.printJson({ file: c.arg(0), counts: parsed.counts, written: result.written, conflicts: result.conflicts });
      for (const x of result.conflicts.slice(0, 20)) c.io.err(`patgate: left out PAT ${x.id} ("${x.name}" of ${x.userId}): the target has another PAT with that name or id\n`);
      const left = result.conflicts.length;
      c.io.err(`Imported ${summary(parsed.counts)} into ${describeStore(s)}${left > 0 ? `, ${left} PAT${left === 1 ? "" : "s"} left out` : ""}. ${pepperNote}\n`);
      return left > 0 ? 1 : 0;
    },
  },
  {
    name: "backup",
    summary: "Copy the embedded store to FILE while the gateway runs: one consistent snapshot, checked before it is kept.",
    usage: "FILE [--force] [--config FILE]",
    args: ["FILE"],
    options: { config: CONFIG_OPT, force: FORCE },
    notes: `FILE is a SQLite database like data/patgate.db. To restore: stop the gateway, remove
data/patgate.db-wal and data/patgate.db-shm if present, copy FILE to data/patgate.db, start it;
the pepper (security.pepper or data/pepper) must be the one the backup was taken with.
With Redis, use Redis persistence (AOF, RDB snapshots) or \`patgate export\`.`,
    async run(c) {
      const s = await loadConfig(c);
      if (!isEmbedded(s)) {
        throw new CliError(`backup copies the embedded store; this config uses ${describeStore(s)}: use Redis persistence (AOF, RDB snapshots) or patgate export`);
      }
      const { EmbeddedStore } = await import("../store/embedded.ts");
      const { backupEmbedded } = await import("../store/backup.ts");
      const target = c.arg(0);
      const sum = await withStore(s, async (store) => {
        if (!(store instanceof EmbeddedStore)) throw new CliError("not an embedded store");
        try {
          return await backupEmbedded(store, target, c.flag("force"));
        } catch (err) {
          throw new CliError(`backup to ${target} failed: ${(err as Error).message}`);
        }
      });
      if (c.json) c.printJson({ file: target, ...sum });
      const n = sum.counts;
      c.io.err(`Backed up ${summary({ ...n, members: n.memberships })} of ${describeStore(s)} to ${target}; SQLite's integrity check of the copy: ok.\n`);
      return 0;
    },
  },
];

function summary(n: ExportCounts): string {
  const part = (k: number, one: string, many: string): string => `${k} ${k === 1 ? one : many}`;
  return `${part(n.domains, "domain", "domains")}, ${part(n.members, "member", "members")}, ${part(n.roles, "role", "roles")}, ${part(n.adminKeys, "admin key", "admin keys")} and ${part(n.pats, "PAT", "PATs")}`;
}

/** Streams the export to FILE (0600, refusing an existing one unless --force) or to standard output. */
async function writeExport(c: Ctx, store: Store, pepper: Buffer | null, target: string): Promise<ExportCounts> {
  const { exportLines } = await import("../store/transfer.ts");
  const counts: ExportCounts = { domains: 0, members: 0, roles: 0, adminKeys: 0, pats: 0 };
  if (target === "-") {
    let buf = "";
    for await (const l of exportLines(store, pepper, counts)) {
      buf += l + "\n";
      if (buf.length > 65_536) {
        c.io.out(buf);
        buf = "";
      }
    }
    c.io.out(buf);
    return counts;
  }
  let fh;
  try {
    fh = await open(target, c.flag("force") ? "w" : "wx", 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === "EEXIST" ? `${target} exists; pass --force to replace it` : `cannot write ${target}: ${code ?? (err as Error).message}`);
  }
  try {
    let buf = "";
    for await (const l of exportLines(store, pepper, counts)) {
      buf += l + "\n";
      if (buf.length > 65_536) {
        await fh.write(buf);
        buf = "";
      }
    }
    await fh.write(buf);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return counts;
}

/** Reads and checks the whole export before anything is written; a bad file is one line naming the bad line. */
async function readExport(c: Ctx): Promise<ParsedExport> {
  const { parseExport, ExportFormatError } = await import("../store/transfer.ts");
  const file = c.arg(0);
  let text: string;
  try {
    if (file === "-") {
      if (c.io.readStdin === undefined) throw new UsageError("FILE -: there is no standard input to read here");
      text = c.io.readStdin().toString("utf8");
    } else {
      text = readFileSync(file, "utf8");
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseExport(text);
  } catch (err) {
    if (err instanceof ExportFormatError) throw new CliError(`${file} is not a usable export: ${err.message}`);
    throw err;
  }
}

/** The pepper the target will verify with, against the one the export was made with; returns the note for the summary. */
async function checkPepper(c: Ctx, s: Settings, parsed: ParsedExport): Promise<string> {
  const { findPepper, keptPepperFile } = await import("../store/pepper.ts");
  const { pepperCheck } = await import("../store/transfer.ts");
  const wanted = parsed.header.pepperCheck;
  if (wanted === null) return "The export does not say which pepper its source used: the PATs verify only if this gateway uses that one.";
  const ours = await findPepper(s);
  const where = isEmbedded(s) ? `security.pepper (PATGATE_PEPPER), or the source's pepper file copied to ${keptPepperFile(s)}` : "security.pepper (PATGATE_PEPPER) on every replica";
  if (ours !== null && pepperCheck(ours) === wanted) return "The pepper matches the source's: the PATs verify here.";
  if (c.flag("ignore-pepper")) return "The pepper is NOT the source's (--ignore-pepper): no imported PAT will verify.";
  if (ours === null) throw new CliError(`the target has no pepper yet, and the PATs verify only with the source's: set it first (${where}), or pass --ignore-pepper`);
  throw new CliError(`the target's pepper is not the one the export was made with, so no imported PAT would verify: use the source's (${where}), or pass --ignore-pepper`);
}

async function importInto(c: Ctx, store: Store, parsed: ParsedExport, s: Settings): Promise<LoadResult> {
  const { loadRecords, storeIsEmpty } = await import("../store/transfer.ts");
  if (!c.flag("force") && !(await storeIsEmpty(store))) {
    throw new CliError(`${describeStore(s)} is not empty: import loads only into an empty store (pass --force to write over records with the same ids)`);
  }
  return loadRecords(store, parsed.records);
}
