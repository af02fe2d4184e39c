// Bodies.read takes a body that arrived with its headers (the usual small
// request) whole, a microtask after the headers, without listeners or a
// timer: the limit, the shared budget and the budget's release must hold on
// that path as on the chunk-by-chunk one. Real sockets: the client writes the
// headers and the body in one write, or the body later.
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Bodies } from "../../src/http/bodies.ts";
import { Denial } from "../../src/errors.ts";

const servers: http.Server[] = [];
/** Requests the servers saw close (a request that never ends is never closed, and its parser keeps it). */
let closed = 0;

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/**
 * A server whose handler reads the body through `bodies` and answers what it
 * got; `late`: it reads after a turn of the event loop (as after a store
 * lookup), when a body that came with the headers is complete.
 */
async function serve(bodies: Bodies, limit: number, late = false): Promise<number> {
  const server = http.createServer((req, res) => {
    req.once("close", () => closed++);
    const read = late ? new Promise<void>((r) => setImmediate(r)).then(() => bodies.read(req, res, limit)) : bodies.read(req, res, limit);
    void read.then((got) => {
      const answer = got instanceof Denial ? { denied: got.error } : { bytes: got.length, text: got.toString("latin1"), heldWhileRead: bodies.held };
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(answer));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

/**
 * Sends `head` and then `body` (in the same write unless `laterMs`: then the
 * first `early` characters of the body with the head, the rest that much
 * later), returns the response's JSON.
 */
function send(port: number, head: string, body: string, laterMs = -1, early = 0): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      const at = got.indexOf("\r\n\r\n");
      const m = /content-length: (\d+)/i.exec(got);
      if (at >= 0 && m !== null && got.length >= at + 4 + Number(m[1])) {
        s.end();
        resolve(JSON.parse(got.slice(at + 4)) as Record<string, unknown>);
      }
    });
    s.on("error", reject);
    if (laterMs < 0) s.write(head + body);
    else {
      s.write(head + body.slice(0, early));
      setTimeout(() => s.write(body.slice(early)), laterMs);
    }
  });
}

const chunked = (text: string): string => `${text.length.toString(16)}\r\n${text}\r\n0\r\n\r\n`;
const HEAD_CHUNKED = "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
const headLength = (n: number): string => `POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${n}\r\n\r\n`;

function bodies(budgetBytes: number): Bodies {
  return new Bodies({ readTimeoutMs: 5000, idleTimeoutMs: 5000, streamTimeoutMs: 5000, budgetBytes });
}

async function heldSettles(b: Bodies): Promise<number> {
  // The share comes back when the response closes, just after the client has the answer.
  for (let i = 0; i < 50 && b.held !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  return b.held;
}

describe("Bodies.read, a body that came with its headers", () => {
  it("is the body, counted against the budget while it is held, and given back after", async () => {
    const b = bodies(1000);
    const port = await serve(b, 500);
    const text = '{"model":"m","x":"' + "y".repeat(100) + '"}';
    expect(await send(port, HEAD_CHUNKED, chunked(text))).toEqual({ bytes: text.length, text, heldWhileRead: text.length });
    expect(await send(port, headLength(text.length), text)).toEqual({ bytes: text.length, text, heldWhileRead: text.length });
    expect(await heldSettles(b)).toBe(0);
  });

  it("ends and closes the request after taking its body, as reading it chunk by chunk does", async () => {
    const b = bodies(1000);
    const port = await serve(b, 500);
    const before = closed;
    await send(port, headLength(5), "hello");
    await send(port, HEAD_CHUNKED, chunked("hello"));
    for (let i = 0; i < 50 && closed < before + 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(closed - before).toBe(2);
  });

  it("an undeclared (chunked) body, read once complete, is the body, or refused busy over the budget, and its share given back", async () => {
    const b = bodies(100);
    const port = await serve(b, 500, true);
    expect(await send(port, HEAD_CHUNKED, chunked("z".repeat(90)))).toEqual({ bytes: 90, text: "z".repeat(90), heldWhileRead: 90 });
    expect(await send(port, HEAD_CHUNKED, chunked("z".repeat(150)))).toEqual({ denied: "busy_bodies" });
    expect(await heldSettles(b)).toBe(0);
  });

  it("an undeclared body over the route's limit is refused too large, read at once or once complete", async () => {
    const b = bodies(10_000);
    for (const late of [false, true]) {
      const port = await serve(b, 50, late);
      expect(await send(port, HEAD_CHUNKED, chunked("z".repeat(51)))).toEqual({ denied: "body_too_large" });
    }
    expect(await heldSettles(b)).toBe(0);
  });

  it("an empty body is an empty buffer", async () => {
    const b = bodies(100);
    const port = await serve(b, 50);
    expect(await send(port, headLength(0), "")).toEqual({ bytes: 0, text: "", heldWhileRead: 0 });
  });
});

describe("Bodies.read, a body that comes after its headers", () => {
  it("is not taken before its declared length is there", async () => {
    const b = bodies(1000);
    const port = await serve(b, 500);
    const text = "first part, " + "then the rest".repeat(5);
    expect(await send(port, headLength(text.length), text, 50, 12)).toEqual({ bytes: text.length, text, heldWhileRead: text.length });
  });

  it("is read as its chunks come, under the same budget", async () => {
    const b = bodies(100);
    const port = await serve(b, 500);
    expect(await send(port, HEAD_CHUNKED, chunked("later"), 50)).toEqual({ bytes: 5, text: "later", heldWhileRead: 5 });
    expect(await send(port, HEAD_CHUNKED, chunked("w".repeat(150)), 50)).toEqual({ denied: "busy_bodies" });
    expect(await heldSettles(b)).toBe(0);
  });
});
