/**
 * The pepper keying every PAT hash: `security.pepper` from the config, or,
 * with the embedded store and none configured, the one generated on the
 * first start and kept in `pepper` beside the database (mode 0600).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError, usesRedis, type Settings } from "../config/config.ts";

/** Where the embedded store keeps a generated pepper. */
export function keptPepperFile(settings: Settings): string {
  return path.join(path.dirname(settings.store.embeddedPath), "pepper");
}

/** The configured pepper, else the kept one; null when neither exists yet (nothing is created). */
export async function findPepper(settings: Settings): Promise<Buffer | null> {
  if (settings.security.pepper !== null) return settings.security.pepper;
  if (usesRedis(settings.store)) return null;
  const file = keptPepperFile(settings);
  try {
    const buf = Buffer.from((await readFile(file, "utf8")).trim(), "hex");
    if (buf.length >= 32) return buf;
    throw new ConfigError(`${file}: the stored pepper is damaged; restore it (tokens cannot be verified without it)`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** The gateway's pepper: found as above, or generated once and kept (embedded store only; Redis needs one configured). */
export async function gatewayPepper(settings: Settings): Promise<Buffer> {
  const found = await findPepper(settings);
  if (found !== null) return found;
  if (usesRedis(settings.store)) {
    throw new ConfigError(`${settings.configFile}: security.pepper: required with Redis (every replica must share it; e.g. \`openssl rand -hex 32\`)`);
  }
  const file = keptPepperFile(settings);
  const pepper = randomBytes(32);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, pepper.toString("hex") + "\n", { mode: 0o600, flag: "wx" });
  return pepper;
}
