/**
 * Baseline: a plain http-proxy-3 proxy (`createProxyServer` with a keep-alive
 * agent), no auth, no logging.
 */
import http from "node:http";
import { parseArgs } from "node:util";
import { createProxyServer } from "http-proxy-3";
import { memoryReading } from "../lib/memory.ts";
import { announceReady, serveIpc } from "../lib/proc.ts";

const { values } = parseArgs({
  options: {
    upstream: { type: "string" },
    connections: { type: "string", default: "128" },
  },
});
if (values.upstream === undefined) throw new Error("--upstream is required");

const agent = new http.Agent({ keepAlive: true, maxSockets: Number(values.connections), keepAliveMsecs: 30_000 });
const proxy = createProxyServer({ target: values.upstream, agent });
proxy.on("error", (_err, _req, res) => {
  if (res instanceof http.ServerResponse) {
    if (res.headersSent) res.destroy();
    else {
      res.writeHead(502, { "content-length": "0" });
      res.end();
    }
  } else {
    res.destroy();
  }
});

const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  proxy.web(req, res);
});
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  announceReady(typeof addr === "object" && addr !== null ? addr.port : 0);
});
serveIpc((msg) => (msg["cmd"] === "memory" ? memoryReading(msg["gc"] === true) : "pong"));
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close();
  agent.destroy();
  process.exit(0);
});
