/**
 * nginx as a baseline: `proxy_pass` to the fake upstream with upstream
 * keep-alive, one single-process nginx (`master_process off`, `daemon off`)
 * run as our child from a generated config in a temp dir.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pinned, stopProcess } from "./proc.ts";

export interface Nginx {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly version: string;
  stop(): Promise<void>;
}

/** The nginx binary and its version, or null when nginx is not installed. */
export function findNginx(): { bin: string; version: string } | null {
  for (const bin of ["nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx"]) {
    // `nginx -v` prints to stderr.
    const r = spawnSync(bin, ["-v"], { encoding: "utf8" });
    if (r.error !== undefined) continue;
    const text = `${r.stderr}${r.stdout}`.trim();
    if (text.startsWith("nginx version")) return { bin, version: text.replace(/^nginx version: /, "") };
  }
  return null;
}

/** A port that was free a moment ago (nginx cannot report the port it picked). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const sock = net.connect({ host: "127.0.0.1", port }, () => {
        sock.destroy();
        resolve();
      });
      sock.once("error", () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nginx did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * Starts nginx proxying everything to `upstreamPort`. Buffering is off both
 * ways, as an LLM gateway in front of streaming backends must run it; the
 * request body buffer is large enough that a 64 KB body never goes to disk.
 */
export async function startNginx(bin: string, version: string, upstreamPort: number, cpus: string | null, keepalive: number): Promise<Nginx> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "patgate-bench-nginx-"));
  await mkdir(path.join(dir, "logs"));
  const port = await freePort();
  const t = (name: string): string => path.join(dir, name);
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${t("nginx.pid")};
error_log ${t("logs/error.log")} warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${t("client_body")};
  proxy_temp_path ${t("proxy")};
  fastcgi_temp_path ${t("fastcgi")};
  uwsgi_temp_path ${t("uwsgi")};
  scgi_temp_path ${t("scgi")};
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  upstream fake { server 127.0.0.1:${upstreamPort}; keepalive ${keepalive}; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    client_max_body_size 10m;
    client_body_buffer_size 128k;
    location / {
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`;
  const file = t("nginx.conf");
  await writeFile(file, conf);
  const [cmd, args] = pinned(cpus, bin, ["-p", dir, "-c", file, "-e", t("logs/error.log")]);
  const proc = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`nginx exited with ${code}: ${stderr}`))));
  exited.catch(() => undefined);
  await Promise.race([waitForPort(port, 10_000), exited]);
  return {
    proc,
    pid: proc.pid ?? 0,
    port,
    version,
    async stop() {
      await stopProcess(proc, 3000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
