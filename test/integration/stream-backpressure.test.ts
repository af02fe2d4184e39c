// Backpressure (issue 18): a client that stops reading a stream pauses the
// gateway's read of the upstream, so the upstream's writes block instead of the
// gateway buffering the response without bound; once the client reads again,
// every byte arrives, in order.
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

/** What the flooding upstream sends: SSE frames of 64 KiB, each numbered, as fast as the connection takes them. */
const FRAME = 64 * 1024;
const TOTAL_FRAMES = 4096; // 256 MiB: far more than any socket buffers hold
function frame(i: number): Buffer {
  const head = `data: ${String(i).padStart(8, "0")} `;
  return Buffer.from(head + "x".repeat(FRAME - head.length - 2) + "\n\n");
}

interface Flood {
  /** Bytes the upstream's writes have handed to its socket so far. */
  written: number;
  /** Set while a write is waiting for 'drain'. */
  blocked: boolean;
  /** Set once every frame was handed over (nothing held the upstream back). */
  finished: boolean;
  done: Promise<void>;
}

/** Reads a chunked response body and checks, frame by frame, that every numbered frame comes once and in order. */
class Dechunked {
  frames = 0;
  #raw: Buffer = Buffer.alloc(0);
  /** Data bytes still due in the current chunk; -1: a size line is next; -2: the CRLF after a chunk's data. */
  #need = -1;
  #body: Buffer = Buffer.alloc(0);

  /** True once the last chunk came. */
  push(chunk: Buffer): boolean {
    this.#raw = this.#raw.length === 0 ? chunk : Buffer.concat([this.#raw, chunk]);
    for (;;) {
      if (this.#need === -1) {
        const eol = this.#raw.indexOf("\r\n");
        if (eol === -1) return false;
        const size = parseInt(this.#raw.subarray(0, eol).toString("latin1"), 16);
        if (!Number.isFinite(size)) throw new Error("a chunk size line was garbled");
        this.#raw = this.#raw.subarray(eol + 2);
        if (size === 0) return true;
        this.#need = size;
      } else if (this.#need === -2) {
        if (this.#raw.length < 2) return false;
        if (this.#raw[0] !== 0x0d || this.#raw[1] !== 0x0a) throw new Error("a chunk did not end with CRLF");
        this.#raw = this.#raw.subarray(2);
        this.#need = -1;
      } else {
        if (this.#raw.length === 0) return false;
        const n = Math.min(this.#need, this.#raw.length);
        this.#data(this.#raw.subarray(0, n));
        this.#raw = this.#raw.subarray(n);
        this.#need -= n;
        if (this.#need === 0) this.#need = -2;
      }
    }
  }

  #data(d: Buffer): void {
    this.#body = this.#body.length === 0 ? Buffer.from(d) : Buffer.concat([this.#body, d]);
    while (this.#body.length >= FRAME) {
      const head = this.#body.subarray(0, 15).toString("latin1");
      const want = `data: ${String(this.frames).padStart(8, "0")} `;
      if (head !== want) throw new Error(`"${head}" came where "${want}" was due`);
      this.frames++;
      this.#body = this.#body.subarray(FRAME);
    }
  }
}

describe("stream backpressure", () => {
  let upstream: http.Server;
  let gw: TestGateway;
  let token: string;
  let floods: Flood[] = [];
  let frames = TOTAL_FRAMES;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      const f: Flood = { written: 0, blocked: false, finished: false, done: Promise.resolve() };
      floods.push(f);
      res.writeHead(200, { "content-type": "text/event-stream" });
      f.done = (async () => {
        for (let i = 0; i < frames && !res.destroyed; i++) {
          const b = frame(i);
          const ok = res.write(b);
          f.written += b.length;
          if (!ok) {
            f.blocked = true;
            await Promise.race([once(res, "drain"), once(res, "close")]);
            f.blocked = false;
          }
        }
        f.finished = !res.destroyed;
        res.end();
      })();
    });
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    gw = await startGateway({ upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
    ({ token } = await gw.issue({ scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_chat_completions" }] }));
  });
  afterAll(async () => {
    await gw?.close();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  /** A raw client that sends one streaming request and reads only when told to. */
  async function pausedClient(): Promise<{ socket: net.Socket; headers: string; rest: Buffer }> {
    const u = new URL(gw.url);
    const socket = net.connect(Number(u.port), u.hostname);
    await once(socket, "connect");
    const body = '{"model":"llama3","stream":true,"messages":[]}';
    socket.write(`POST /proxy/d1/v1/chat/completions HTTP/1.1\r\nhost: ${u.host}\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    let got = Buffer.alloc(0);
    while (got.indexOf("\r\n\r\n") === -1) got = Buffer.concat([got, (await once(socket, "data"))[0] as Buffer]);
    socket.pause();
    const end = got.indexOf("\r\n\r\n");
    return { socket, headers: got.subarray(0, end).toString("latin1"), rest: got.subarray(end + 4) };
  }

  /** Waits until the upstream has been blocked on its write, with nothing written, for `quietMs` (or wrote everything: nothing held it back). */
  async function untilStalled(f: Flood, quietMs: number): Promise<void> {
    let last = -1;
    let since = Date.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      if (f.finished) return;
      if (f.written !== last) {
        last = f.written;
        since = Date.now();
      } else if (f.blocked && Date.now() - since >= quietMs) return;
    }
  }

  it("a client that stops reading stops the upstream's writes; reading again delivers every frame in order", async () => {
    floods = [];
    frames = TOTAL_FRAMES;
    const { socket, headers, rest } = await pausedClient();
    expect(headers).toMatch(/^HTTP\/1\.1 200/);
    const f = floods[0]!;
    await untilStalled(f, 500);
    // Socket buffers on both sides of the gateway plus its own high-water marks: a few MiB. Buffering in the gateway would let the upstream write all 256 MiB.
    expect(f.written).toBeLessThan(48 * 1024 * 1024);
    expect(f.written).toBeLessThan(TOTAL_FRAMES * FRAME);

    // Read again: the upstream resumes, and the client gets every frame, numbered in order, then the end.
    const body = new Dechunked();
    body.push(rest);
    const ended = new Promise<void>((resolve, reject) => {
      socket.on("data", (chunk: Buffer) => {
        try {
          if (body.push(chunk)) resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      socket.on("error", reject);
    });
    socket.resume();
    await ended;
    await f.done;
    expect(body.frames).toBe(TOTAL_FRAMES);
    expect(f.written).toBe(TOTAL_FRAMES * FRAME);
    socket.destroy();
  });

  it("a paused client that leaves releases the upstream: its request is aborted, not left blocked", async () => {
    floods = [];
    frames = TOTAL_FRAMES;
    const { socket } = await pausedClient();
    const f = floods[0]!;
    await untilStalled(f, 300);
    socket.destroy();
    // The gateway aborts the upstream request: the upstream's response closes and its loop ends without writing it all.
    await f.done;
    expect(f.written).toBeLessThan(TOTAL_FRAMES * FRAME);
  });
});
