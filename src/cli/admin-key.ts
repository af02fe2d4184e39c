/**
 * `patgate admin-key create`: a new operator key made on the gateway's machine,
 * straight into the configured store, with no gateway needed: the way back in
 * when the first-start key was lost (a start that failed after printing it,
 * a key printed on one replica of many). Whoever can run this can read the
 * gateway's config and store already, so it asks for no credential.
 *
 * Like the first-start key: printed once, only its SHA-256 stored. The keys
 * stored before are removed unless --keep (a lost key should stop working).
 * Running gateways accept the new key at once: stored keys are read on every
 * management call. The change is audit-logged like a management API change.
 */
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Settings } from "../config/config.ts";
import { CliError, type Command } from "./command.ts";
import { CONFIG_OPT, describeStore, loadConfig, withStore } from "./local.ts";

export const ADMIN_KEY_COMMANDS: readonly Command[] = [
  {
    name: "admin-key create",
    summary: "Create an admin key in the configured store (no gateway needed): the way back in when the first-start key is lost.",
    usage: "[--keep] [--config FILE]",
    options: {
      config: CONFIG_OPT,
      keep: { type: "boolean", help: "keep the admin keys stored before (default: they stop working)" },
    },
    notes: `The key is printed once, alone on stdout (KEY=$(patgate admin-key create)); only its SHA-256 is
stored. Gateways already running accept it at once. Refused while admin keys are configured
(auth.admin_keys, PATGATE_ADMIN_KEYS, auth.admin_keys_file): the gateway ignores stored keys then.
The change is written as an audit line (JSON, on stderr) and, with audit.redis_stream, to the stream.`,
    async run(c) {
      const s = await loadConfig(c);
      if (s.auth.adminKeyHashes.length > 0) {
        throw new CliError("admin keys are configured (auth.admin_keys, PATGATE_ADMIN_KEYS or auth.admin_keys_file), and while they are the gateway ignores stored keys: add the new key there instead");
      }
      const { generateAdminKey, hashAdminKey } = await import("../admin/keys.ts");
      const key = generateAdminKey();
      const rec = { id: randomUUID(), hash: hashAdminKey(key), createdAt: c.io.now() };
      const removed = await withStore(s, async (store) => {
        const before = await store.listAdminKeys();
        await store.addAdminKey(rec);
        const gone: { key_id: string; fingerprint: string }[] = [];
        if (!c.flag("keep")) {
          for (const k of before) if (k.id !== rec.id && (await store.deleteAdminKey(k.id))) gone.push({ key_id: k.id, fingerprint: k.hash.slice(0, 12) });
        }
        return gone;
      });
      const fields = { key_id: rec.id, fingerprint: rec.hash.slice(0, 12), removed, store: describeStore(s) };
      await audit(s, fields);
      if (c.json) c.printJson({ key, id: rec.id, fingerprint: fields.fingerprint, removed });
      else c.io.out(`${key}\n`);
      c.io.err(
        `Created admin key ${fields.fingerprint}… (id ${rec.id}) in ${describeStore(s)}. It is shown ONCE and only its hash is stored; ` +
          `running gateways accept it now. ${removed.length === 0 ? "No stored key was removed." : `${removed.length} stored key${removed.length === 1 ? "" : "s"} made before ${removed.length === 1 ? "no longer works" : "no longer work"} (--keep keeps them).`}\n`,
      );
      return 0;
    },
  },
];

/** Who ran it, as the audit trail names local commands: the OS account and the machine. */
function actor(): string {
  let user = "unknown";
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): keep "unknown".
  }
  return `local:${user}@${os.hostname()}`;
}

/** The audit line, as the gateway writes one (pino JSON, here on stderr), and the stream entry when one is configured. */
async function audit(s: Settings, fields: Record<string, unknown>): Promise<void> {
  const requestId = `cli-${randomUUID()}`;
  const who = actor();
  const pino = (await import("pino")).default;
  const { createLogger } = await import("../telemetry/logger.ts");
  const log = createLogger("info", pino.destination({ dest: 2, sync: true }));
  log.info({ audit: "admin_key.create", req_id: requestId, actor: who, ...fields }, "audit");
  if (s.audit.redisStream === null) return;
  const { redisStoreOptions } = await import("../store/open.ts");
  const { createRedisClient, untilReady } = await import("../store/redis.ts");
  const { changeEntry } = await import("../telemetry/audit.ts");
  const opts = redisStoreOptions(s.store);
  if (opts === null) return;
  const client = createRedisClient(opts);
  client.on("error", () => undefined);
  try {
    if (!(await untilReady(client, opts))) throw new Error("cannot connect");
    await client.xadd(s.audit.redisStream, "MAXLEN", "~", String(s.audit.streamMaxLen), "*", ...changeEntry("admin_key.create", who, fields, requestId));
  } catch (err) {
    // The key exists now: say the stream missed it rather than fail the command that made it.
    process.stderr.write(`patgate: warning: the audit entry could not be appended to ${s.audit.redisStream}: ${(err as Error).message}\n`);
  } finally {
    client.disconnect();
  }
}
