/**
 * TLS settings: `server.tls` (HTTPS on the gateway itself) and `upstreams.<id>.tls`
 * (trust, client certificate and SNI towards an upstream), and the one check of a
 * certificate and its key that start-up and every reload share.
 */
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createSecureContext } from "node:tls";
import type { Checker } from "./config.ts";

/** Client certificates on the gateway's HTTPS listener. */
export type ClientAuth = "none" | "optional" | "require";
export type TlsMinVersion = "TLSv1.2" | "TLSv1.3";

/** Where a certificate, its key and (optionally) a CA bundle are read from; absolute paths. */
export interface KeyPairFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Server: the CA client certificates must chain to. Null: none. */
  readonly caFile: string | null;
}

export interface ServerTlsSettings extends KeyPairFiles {
  readonly minVersion: TlsMinVersion;
  readonly clientAuth: ClientAuth;
  /** Offer HTTP/2 by ALPN (HTTP/1.1 stays available on the same port). */
  readonly http2: boolean;
  /** Strict-Transport-Security max-age in seconds on HTTPS responses; 0: no header. */
  readonly hstsMaxAgeSec: number;
  /** A second, plain-HTTP listener on server.host (e.g. for an in-cluster ingress); null: none. */
  readonly plainPort: number | null;
}

export interface UpstreamTlsSettings {
  /** CA certificates trusted for this upstream on top of the default roots (never instead of them). */
  readonly caFile: string | null;
  /** The gateway's client certificate for mTLS; null: none. */
  readonly clientCert: Omit<KeyPairFiles, "caFile"> | null;
  /** The name sent as SNI and checked against the upstream's certificate; null: the target's host. */
  readonly servername: string | null;
}

/** A certificate chain and its key, read from disk and checked to belong together. */
export interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The CA bundle of KeyPairFiles.caFile, when there is one. */
  readonly ca: Buffer | null;
  /** The leaf certificate's serial number (hex, upper case, as X509Certificate gives it). */
  readonly serial: string;
  readonly notAfter: Date;
  /** sha256 over the three files' bytes: tells a real change from an event that changed nothing. */
  readonly digest: string;
}

export type KeyPairResult = { readonly ok: true; readonly pair: KeyPair } | { readonly ok: false; readonly error: string };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks a certificate and its key: both parse, the key is the
 * certificate's, the certificate has not expired, the CA bundle holds
 * certificates. Errors name the file and never quote the key.
 */
export function readKeyPair(files: KeyPairFiles, now: number = Date.now()): KeyPairResult {
  const cert = readBytes(files.certFile);
  if (typeof cert === "string") return { ok: false, error: cert };
  const key = readBytes(files.keyFile);
  if (typeof key === "string") return { ok: false, error: key };
  let ca: Buffer | null = null;
  if (files.caFile !== null) {
    const c = readCaBundle(files.caFile);
    if (typeof c === "string") return { ok: false, error: c };
    ca = c;
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    return { ok: false, error: `${files.certFile} holds no PEM certificate` };
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    // OpenSSL's reason (e.g. "bad decrypt", an encrypted key) names no key material.
    return { ok: false, error: `${files.keyFile} is not a readable, unencrypted PEM private key (${oneLine((err as Error).message)})` };
  }
  if (!leaf.checkPrivateKey(keyObject)) return { ok: false, error: `${files.keyFile} does not match the certificate in ${files.certFile}` };
  const notAfter = new Date(leaf.validTo);
  if (!(notAfter.getTime() > now)) return { ok: false, error: `${files.certFile} expired on ${notAfter.toISOString()}` };
  try {
    // Whatever else OpenSSL refuses (an unsupported key type, a broken chain file) refuses here, not at the first handshake.
    createSecureContext({ cert, key, ...(ca === null ? {} : { ca }) });
  } catch (err) {
    return { ok: false, error: `${files.certFile} / ${files.keyFile}: ${oneLine((err as Error).message)}` };
  }
  const digest = createHash("sha256").update(cert).update("\0").update(key).update("\0").update(ca ?? "").digest("hex");
  return { ok: true, pair: { cert, key, ca, serial: leaf.serialNumber, notAfter, digest } };
}

/** The certificates of a PEM bundle, or a message naming the file. */
export function readCaBundle(file: string): Buffer | string {
  const bytes = readBytes(file);
  if (typeof bytes === "string") return bytes;
  const blocks = bytes.toString("latin1").match(PEM_CERT) ?? [];
  if (blocks.length === 0) return `${file} holds no PEM certificate`;
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      return `${file} holds a certificate that does not parse`;
    }
  }
  return bytes;
}

function readBytes(file: string): Buffer | string {
  try {
    return readFileSync(file);
  } catch (err) {
    return `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

const CLIENT_AUTH: readonly ClientAuth[] = ["none", "optional", "require"];
const MIN_VERSIONS: readonly TlsMinVersion[] = ["TLSv1.2", "TLSv1.3"];
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `server.tls`: null (plain HTTP) unless cert_file is set; the files are read and checked now. */
export function parseServerTls(c: Checker, raw: unknown, dir: string, serverPort: number): ServerTlsSettings | null {
  const t = c.obj(raw, "server.tls", ["cert_file", "key_file", "min_version", "client_auth", "client_ca_file", "http2", "hsts_max_age", "plain_port"]);
  const certFile = filePath(c, t.cert_file, "server.tls.cert_file", dir);
  const keyFile = filePath(c, t.key_file, "server.tls.key_file", dir);
  const caFile = filePath(c, t.client_ca_file, "server.tls.client_ca_file", dir);
  if (certFile === null) {
    if (keyFile !== null) c.fail("server.tls.key_file", "is set but server.tls.cert_file is not (both turn HTTPS on)");
    if (caFile !== null) c.fail("server.tls.client_ca_file", "needs server.tls.cert_file (client certificates are an HTTPS feature)");
    return null;
  }
  if (keyFile === null) {
    c.fail("server.tls.key_file", "is required with server.tls.cert_file");
    return null;
  }
  const minVersion = oneOf(c, t.min_version, "server.tls.min_version", MIN_VERSIONS, "TLSv1.2");
  const clientAuth = oneOf(c, t.client_auth, "server.tls.client_auth", CLIENT_AUTH, "none");
  if (clientAuth !== "none" && caFile === null) c.fail("server.tls.client_ca_file", `is required with server.tls.client_auth: ${clientAuth} (the CA client certificates must chain to)`);
  if (clientAuth === "none" && caFile !== null) c.fail("server.tls.client_ca_file", "has no effect with server.tls.client_auth: none; set client_auth to optional or require");
  const hsts = c.str(t.hsts_max_age, "server.tls.hsts_max_age", "").trim();
  const plain = c.str(t.plain_port, "server.tls.plain_port", "").trim();
  const plainPort = plain === "" ? null : c.int(plain, "server.tls.plain_port", 0, 1, 65535);
  if (plainPort !== null && plainPort === serverPort) c.fail("server.tls.plain_port", "must differ from server.port");
  const r = readKeyPair({ certFile, keyFile, caFile: clientAuth === "none" ? null : caFile });
  if (!r.ok) c.fail("server.tls", r.error);
  return {
    certFile,
    keyFile,
    caFile: clientAuth === "none" ? null : caFile,
    minVersion,
    clientAuth,
    http2: c.bool(t.http2, "server.tls.http2", false),
    hstsMaxAgeSec: hsts === "" ? 0 : Math.floor(c.duration(hsts, "server.tls.hsts_max_age", "1s") / 1000),
    plainPort,
  };
}

/** `upstreams.<id>.tls`: extra trust, a client certificate and SNI for the upstream's https targets. */
export function parseUpstreamTls(c: Checker, raw: unknown, at: string, dir: string, opts: { readonly https: boolean; readonly verify: boolean }): UpstreamTlsSettings {
  const t = c.obj(raw, `${at}.tls`, ["ca_file", "cert_file", "key_file", "servername"]);
  const caFile = filePath(c, t.ca_file, `${at}.tls.ca_file`, dir);
  const certFile = filePath(c, t.cert_file, `${at}.tls.cert_file`, dir);
  const keyFile = filePath(c, t.key_file, `${at}.tls.key_file`, dir);
  const name = c.str(t.servername, `${at}.tls.servername`, "").trim();
  const none = caFile === null && certFile === null && keyFile === null && name === "";
  if (!none && !opts.https) c.fail(`${at}.tls`, "applies to https:// targets only, and this upstream has none");
  if (caFile !== null) {
    if (!opts.verify) c.fail(`${at}.tls.ca_file`, "has no effect with tls_verify: false");
    const ca = readCaBundle(caFile);
    if (typeof ca === "string") c.fail(`${at}.tls.ca_file`, ca);
  }
  let clientCert: UpstreamTlsSettings["clientCert"] = null;
  if ((certFile === null) !== (keyFile === null)) c.fail(`${at}.tls`, "cert_file and key_file go together (the gateway's client certificate and its key)");
  else if (certFile !== null && keyFile !== null) {
    clientCert = { certFile, keyFile };
    const r = readKeyPair({ certFile, keyFile, caFile: null });
    if (!r.ok) c.fail(`${at}.tls`, r.error);
  }
  if (name !== "" && !HOSTNAME.test(name)) c.fail(`${at}.tls.servername`, `"${name}" is not a host name`);
  return { caFile, clientCert, servername: name === "" ? null : name };
}

function filePath(c: Checker, v: unknown, at: string, dir: string): string | null {
  const text = c.str(v, at, "").trim();
  return text === "" ? null : path.resolve(dir, text);
}

function oneOf<T extends string>(c: Checker, v: unknown, at: string, allowed: readonly T[], def: T): T {
  const text = c.str(v, at, "").trim();
  if (text === "") return def;
  if ((allowed as readonly string[]).includes(text)) return text as T;
  c.fail(at, `must be one of ${allowed.join(", ")} (got "${text}")`);
  return def;
}
