/**
 * A throwaway PKI for TLS tests, made with the openssl command line: a CA,
 * and certificates it signs (server or client, any validity, expired ones
 * included), each as PEM files in a temp directory. EC P-256 keeps it fast.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** A certificate and its key on disk. */
export interface IssuedCert {
  readonly cert: string;
  readonly key: string;
  /** Serial number as X509Certificate.serialNumber gives it (hex, upper case). */
  readonly serial: string;
}

export interface IssueOptions {
  /** subjectAltName entries (default: DNS:localhost, IP:127.0.0.1). */
  readonly sans?: readonly string[];
  readonly days?: number;
  /** Valid only in 2020: expired now. */
  readonly expired?: boolean;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** A CA in a temp directory that issues certificates into it. */
export class TestCa {
  readonly dir: string;
  readonly name: string;
  /** The CA certificate (PEM file). */
  readonly cert: string;
  readonly #key: string;
  #n = 0;

  constructor(name: string, dir: string = mkdtempSync(path.join(os.tmpdir(), "patgate-pki-"))) {
    this.name = name;
    this.dir = dir;
    const home = path.join(dir, `ca-${name}`);
    mkdirSync(path.join(home, "new"), { recursive: true });
    writeFileSync(path.join(home, "index.txt"), "");
    writeFileSync(path.join(home, "serial"), `${randomBytes(8).toString("hex")}\n`);
    writeFileSync(
      path.join(home, "ca.cnf"),
      [
        "[ca]", "default_ca = d", "[d]", `dir = ${home}`, "database = $dir/index.txt", "new_certs_dir = $dir/new", "serial = $dir/serial",
        "default_md = sha256", "policy = any", "unique_subject = no", "email_in_dn = no", "[any]", "commonName = supplied", "",
      ].join("\n"),
    );
    this.cert = path.join(home, "ca.crt");
    this.#key = path.join(home, "ca.key");
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", this.#key, "-out", this.cert, "-days", "30", "-subj", `/CN=patgate test CA ${name}`], home);
  }

  /** Issues a certificate for `cn` (server and client use), written as `<file>.crt` / `<file>.key` in `into` (default: this CA's temp dir). */
  issue(cn: string, opts: IssueOptions = {}, into: string = this.dir, file = `${cn.replace(/[^A-Za-z0-9.-]/g, "_")}-${++this.#n}`): IssuedCert {
    const home = path.join(this.dir, `ca-${this.name}`);
    mkdirSync(into, { recursive: true });
    const key = path.join(into, `${file}.key`);
    const cert = path.join(into, `${file}.crt`);
    const csr = path.join(home, `${file}.csr`);
    const ext = path.join(home, `${file}.ext`);
    const sans = opts.sans ?? ["DNS:localhost", "IP:127.0.0.1"];
    writeFileSync(ext, [`subjectAltName = ${sans.join(",")}`, "basicConstraints = CA:FALSE", "extendedKeyUsage = serverAuth,clientAuth", ""].join("\n"));
    openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", `/CN=${cn}`], home);
    const validity = opts.expired === true ? ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] : ["-days", String(opts.days ?? 2)];
    openssl(["ca", "-batch", "-config", path.join(home, "ca.cnf"), "-cert", this.cert, "-keyfile", this.#key, "-in", csr, "-out", cert, "-notext", "-extfile", ext, ...validity], home);
    return { cert, key, serial: new X509Certificate(readFileSync(cert)).serialNumber };
  }

  /** Removes the CA's directory and everything issued into it. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A directory laid out the way the kubelet mounts a Secret: `tls.crt` and
 * `tls.key` are symlinks into `..data`, itself a symlink to a timestamped
 * directory; an update writes a new directory and renames a new `..data`
 * over the old one (one atomic step), then removes the old directory.
 */
export class SecretMount {
  readonly dir: string;
  #generation = 0;
  #current: string | null = null;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  get certFile(): string {
    return path.join(this.dir, "tls.crt");
  }

  get keyFile(): string {
    return path.join(this.dir, "tls.key");
  }

  /** Publishes a pair as the kubelet's AtomicWriter does. */
  publish(pair: { readonly cert: string; readonly key: string }): void {
    const gen = `..2026_01_01_00_00_${String(++this.#generation).padStart(2, "0")}.${randomBytes(4).toString("hex")}`;
    const genDir = path.join(this.dir, gen);
    mkdirSync(genDir);
    writeFileSync(path.join(genDir, "tls.crt"), readFileSync(pair.cert));
    writeFileSync(path.join(genDir, "tls.key"), readFileSync(pair.key), { mode: 0o600 });
    const tmp = path.join(this.dir, "..data_tmp");
    symlinkSync(gen, tmp);
    renameSync(tmp, path.join(this.dir, "..data"));
    if (this.#current === null) {
      symlinkSync("..data/tls.crt", this.certFile);
      symlinkSync("..data/tls.key", this.keyFile);
    } else {
      rmSync(path.join(this.dir, this.#current), { recursive: true, force: true });
    }
    this.#current = gen;
  }
}
