// SPEC §8: "realtime sessions authorized only at connect". A session allowed for one model must not
// switch to another by a session.update, and must not outlive its grant: without the frame check the
// upstream would receive the second model's update; without the re-check the socket would stay open.
import { afterAll, beforeAll, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRealtimeUpstream, type RealtimeUpstream } from "../helpers/realtime-upstream.ts";

let upstream: RealtimeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startRealtimeUpstream();
  gw = await startGateway({ upstreamUrl: upstream.url });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

it("a session cannot switch to a model its PAT lacks, and ends when its scope is removed", async () => {
  const issued = await gw.issue({ userId: "switcher", scopes: [{ entityType: "models", entityId: "cheap-realtime", operation: "llm_realtime" }] });
  const ws = new WebSocket(`${gw.url}/proxy/d1/v1/realtime?model=cheap-realtime`, { headers: { authorization: `Bearer ${issued.token}` } });
  const events: Array<Record<string, unknown>> = [];
  ws.on("message", (d: Buffer) => events.push(JSON.parse(d.toString("utf8")) as Record<string, unknown>));
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  await new Promise((resolve) => ws.once("open", resolve));
  const fake = await upstream.nextSession();

  ws.send(JSON.stringify({ type: "session.update", session: { model: "expensive-realtime" } }));
  ws.send(JSON.stringify({ type: "session.update", session: { model: "expensive-realtime", "MODEL": "cheap-realtime" } }));
  ws.send(JSON.stringify({ type: "input_audio_buffer.clear" }));
  for (let i = 0; i < 100 && fake.events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(fake.events).toEqual([{ type: "input_audio_buffer.clear" }]);
  expect(events.filter((e) => e["type"] === "error").map((e) => (e["error"] as { code: string }).code)).toEqual(["insufficient_scope", "entity_ambiguous"]);

  expect(await gw.store.replacePat({ ...issued.record, scopes: [], updatedAt: Date.now() }, issued.record.version)).toBe("ok");
  expect(await closed).toBe(1008);
  expect((await fake.closed).code).toBe(1000);
});
