// What the gateway reads in Realtime frames and upgrade requests: the models a session.update names
// (with the body rules on duplicates and spellings), response.done usage, the key subprotocol, and the
// query's model.
import { describe, expect, it } from "vitest";
import { Denial } from "../../src/errors.ts";
import { NO_MODELS, clientEventId, errorEvent, responseDoneUsage, sessionModels } from "../../src/realtime/events.ts";
import { offeredProtocols, upgradeToken } from "../../src/tokens/bearer.ts";
import { entityFromQuery } from "../../src/routing/entity.ts";

const frame = (v: unknown): Buffer => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));
const code = (r: unknown): string | null => (r instanceof Denial ? r.error : null);

describe("sessionModels", () => {
  it("names nothing for frames that are not session updates", () => {
    expect(sessionModels(frame({ type: "input_audio_buffer.append", audio: "AAAA" }))).toBe(NO_MODELS);
    expect(sessionModels(frame({ type: "response.create", response: { model: "x" } }))).toBe(NO_MODELS);
    expect(sessionModels(frame({ type: "session.update", session: { instructions: "hi" } }))).toBe(NO_MODELS);
    expect(sessionModels(frame({ type: "session.update", session: { model: null } }))).toBe(NO_MODELS);
  });

  it("reads the session model and the transcription model (GA and beta shapes)", () => {
    expect(sessionModels(frame({ type: "session.update", session: { model: "gpt-realtime" } }))).toEqual({ model: "gpt-realtime", transcription: null });
    expect(sessionModels(frame({ type: "session.update", session: { audio: { input: { transcription: { model: "whisper-1" } } } } }))).toEqual({ model: null, transcription: { id: "whisper-1", field: "session.audio.input.transcription.model" } });
    expect(sessionModels(frame({ type: "transcription_session.update", session: { input_audio_transcription: { model: "gpt-4o-transcribe" } } }))).toEqual({ model: null, transcription: { id: "gpt-4o-transcribe", field: "session.input_audio_transcription.model" } });
  });

  it("refuses what an upstream could read otherwise: duplicates, other spellings, escapes, two transcription models", () => {
    expect(code(sessionModels(frame('{"type":"session.update","session":{"model":"a","model":"b"}}')))).toBe("entity_ambiguous");
    expect(code(sessionModels(frame('{"type":"session.update","session":{"Model":"b"}}')))).toBe("entity_ambiguous");
    // One escaped key is the key, as every JSON parser reads it; beside the plain one it is a duplicate.
    expect(sessionModels(frame('{"type":"session.update","session":{"mod\\u0065l":"b"}}'))).toEqual({ model: "b", transcription: null });
    expect(code(sessionModels(frame('{"type":"session.update","session":{"model":"a","mod\\u0065l":"b"}}')))).toBe("entity_ambiguous");
    expect(code(sessionModels(frame('{"type":"session.update","Session":{"model":"b"}}')))).toBe("entity_ambiguous");
    expect(code(sessionModels(frame('{"type":"x","TYPE":"session.update","session":{"model":"b"}}')))).toBe("entity_ambiguous");
    expect(sessionModels(frame('{"type":"session\\u002eupdate","session":{"model":"b"}}'))).toEqual({ model: "b", transcription: null });
    expect(code(sessionModels(frame({ type: "session.update", session: { audio: { input: { transcription: { model: "a" } } }, input_audio_transcription: { model: "b" } } })))).toBe("entity_ambiguous");
    expect(code(sessionModels(frame({ type: "session.update", session: { model: 7 } })))).toBe("entity_invalid");
    expect(code(sessionModels(frame("{not json")))).toBe("bad_json");
    expect(code(sessionModels(Buffer.from([0x7b, 0xff, 0x7d])))).toBe("bad_json");
  });
});

describe("responseDoneUsage", () => {
  it("reads usage from response.done only", () => {
    expect(responseDoneUsage(frame({ type: "response.done", response: { usage: { input_tokens: 10, output_tokens: 4, input_token_details: { cached_tokens: 3 } } } }))).toEqual({ inputTokens: 10, outputTokens: 4, cachedTokens: 3 });
    expect(responseDoneUsage(frame({ type: "response.output_text.delta", delta: '"response.done"' }))).toBeNull();
    expect(responseDoneUsage(frame({ type: "response.done", response: {} }))).toBeNull();
  });
});

describe("the error event and the client's event id", () => {
  it("has the Realtime error shape", () => {
    const e = JSON.parse(errorEvent("stream_revoked", undefined, null, "evt_1")) as Record<string, unknown>;
    expect(e).toMatchObject({ type: "error", error: { type: "invalid_request_error", code: "stream_revoked", param: null, event_id: "evt_1" } });
    expect(clientEventId(frame({ type: "x", event_id: "evt_9" }))).toBe("evt_9");
    expect(clientEventId(frame({ type: "x" }))).toBeNull();
  });
});

describe("the upgrade's token", () => {
  const pat = "pat_abc_def";
  it("comes from Bearer or the key subprotocol, never both different; credential subprotocols are not passed on", () => {
    const offered = offeredProtocols(`realtime, openai-insecure-api-key.${pat}, openai-organization.org_1, openai-beta.realtime-v1`);
    expect(offered).toEqual({ token: pat, others: ["realtime", "openai-beta.realtime-v1"] });
    expect(upgradeToken(undefined, offered)).toBe(pat);
    expect(upgradeToken(`Bearer ${pat}`, offered)).toBe(pat);
    expect(code(upgradeToken("Bearer pat_other_x", offered))).toBe("ambiguous_header");
    expect(code(upgradeToken(undefined, offeredProtocols(`openai-insecure-api-key.${pat}, openai-insecure-api-key.${pat}`)))).toBe("ambiguous_header");
    expect(code(upgradeToken(undefined, offeredProtocols("realtime")))).toBe("missing_token");
  });
});

describe("entityFromQuery", () => {
  it("takes the parameter exactly once and spelled exactly", () => {
    expect(entityFromQuery("?model=gpt-realtime", "model")).toEqual({ ok: true, id: "gpt-realtime" });
    expect(entityFromQuery("?model=a%2Fb&x=1", "model")).toEqual({ ok: true, id: "a/b" });
    expect(entityFromQuery("?model=a%3Bb", "model")).toEqual({ ok: true, id: "a;b" });
    for (const q of ["?model=a&model=b", "?model=a&Model=b", "?model=a&model[]=b", "?model=a;model=b", "?model=a;b", "?x=1;model=a", "?MODEL=a"]) expect(entityFromQuery(q, "model"), q).toMatchObject({ ok: false, code: "entity_ambiguous" });
    expect(entityFromQuery("?intent=transcription", "model")).toMatchObject({ ok: false, code: "entity_missing" });
    expect(entityFromQuery("?model=", "model")).toMatchObject({ ok: false, code: "entity_invalid" });
  });
});
