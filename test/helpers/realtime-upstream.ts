/**
 * A fake OpenAI Realtime upstream for tests: a WebSocket server on a free
 * port that records every handshake (URL, headers, offered subprotocols) and
 * every client event, and answers like the Realtime API does: `session.created`
 * on open, `session.updated` for a `session.update`, and for a
 * `response.create` a short text response ending in `response.done` with usage.
 * A test can flood a session (to see backpressure) or close it with a code.
 */
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";

export interface Handshake {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The Sec-WebSocket-Protocol values offered, split. */
  readonly protocols: readonly string[];
  /** Every raw header line, for "never sees the PAT" checks. */
  readonly raw: string;
}

export interface FakeSession {
  readonly handshake: Handshake;
  readonly socket: WebSocket;
  /** Client events received, parsed. */
  readonly events: Array<Record<string, unknown>>;
  /** Resolves with the close code the gateway sent. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

export interface RealtimeUpstream {
  readonly url: string;
  readonly sessions: FakeSession[];
  /** The next session to open (or the last one, if it opened already and was not taken). */
  nextSession(): Promise<FakeSession>;
  /** Output tokens each response.done reports (input tokens: 7). */
  outputTokens: number;
  /** How long the upstream takes to accept a handshake (a slow upstream: the gateway queues client frames meanwhile). */
  acceptDelayMs: number;
  /** Sends `total` bytes in `frame`-byte text events as fast as the socket takes them (no regard for its buffer); resolves the bytes the upstream's own socket still holds at the end. */
  flood(s: FakeSession, total: number, frame: number): Promise<number>;
  close(): Promise<void>;
}

/** `tls`: serve wss:// with this certificate and key (PEM files), as an https upstream. */
export async function startRealtimeUpstream(opts: { tls?: { cert: string; key: string } } = {}): Promise<RealtimeUpstream> {
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse): void => void res.writeHead(426).end();
  const server = opts.tls === undefined ? http.createServer(answer) : https.createServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, answer);
  const wss = new WebSocketServer({
    server,
    handleProtocols: (p) => (p.has("realtime") ? "realtime" : false),
    verifyClient: (_info, cb) => {
      if (up.acceptDelayMs <= 0) cb(true);
      else setTimeout(() => cb(true), up.acceptDelayMs);
    },
  });
  const sessions: FakeSession[] = [];
  const waiting: Array<(s: FakeSession) => void> = [];
  let taken = 0;
  const up: RealtimeUpstream = {
    url: "",
    sessions,
    outputTokens: 5,
    acceptDelayMs: 0,
    nextSession() {
      const ready = sessions[taken];
      if (ready !== undefined) {
        taken++;
        return Promise.resolve(ready);
      }
      return new Promise((resolve) => waiting.push((s) => resolve(s)));
    },
    async flood(s, total, frame) {
      const chunk = JSON.stringify({ type: "response.output_audio.delta", delta: "A".repeat(frame) });
      let sent = 0;
      while (sent < total && s.socket.readyState === WebSocket.OPEN) {
        s.socket.send(chunk);
        sent += chunk.length;
        // Yield now and then so the gateway (same process) runs too.
        if (sent % (frame * 16) < chunk.length) await new Promise((r) => setImmediate(r));
      }
      return s.socket.bufferedAmount;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  wss.on("connection", (socket, req) => {
    const raw: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    const offered = req.headers["sec-websocket-protocol"];
    const handshake: Handshake = { url: req.url ?? "", headers: req.headers, protocols: offered === undefined ? [] : offered.split(",").map((p) => p.trim()), raw: raw.join("\n") };
    const events: Array<Record<string, unknown>> = [];
    const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    const s: FakeSession = { handshake, socket, events, closed };
    socket.on("message", (data: Buffer) => {
      const e = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      events.push(e);
      const send = (o: Record<string, unknown>): void => socket.send(JSON.stringify(o));
      if (e["type"] === "session.update") send({ type: "session.updated", event_id: "evt_u", session: e["session"] });
      if (e["type"] === "response.create") {
        send({ type: "response.created", event_id: "evt_c", response: { id: "resp_1", status: "in_progress" } });
        send({ type: "response.output_text.delta", event_id: "evt_d", response_id: "resp_1", delta: "Hello" });
        send({ type: "response.done", event_id: "evt_e", response: { id: "resp_1", status: "completed", usage: { total_tokens: 7 + up.outputTokens, input_tokens: 7, output_tokens: up.outputTokens, input_token_details: { cached_tokens: 2 } } } });
      }
      if (e["type"] === "test.close") socket.close(Number(e["code"]), typeof e["reason"] === "string" ? e["reason"] : "");
    });
    socket.send(JSON.stringify({ type: "session.created", event_id: "evt_0", session: { id: "sess_1", model: new URL(req.url ?? "/", "http://x").searchParams.get("model") } }));
    const w = waiting.shift();
    if (w !== undefined) {
      taken++;
      sessions.push(s);
      w(s);
    } else {
      sessions.push(s);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(up, { url: opts.tls === undefined ? `http://127.0.0.1:${port}` : `https://localhost:${port}` });
}
