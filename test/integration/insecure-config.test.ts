// Insecure settings refuse start, each with a message that names the key and
// what to do; the gateway never starts open or half-protected.
import { describe, expect, it } from "vitest";
import { runMain, writeConfig, type TestConfig } from "../helpers/gateway.ts";

const cases: Array<[string, (cfg: TestConfig) => void, RegExp]> = [
  [
    "Redis without a pepper",
    (cfg) => {
      cfg.store.redis_url = "redis://127.0.0.1:1";
      cfg.security.pepper = "";
    },
    /security\.pepper: is required with Redis/,
  ],
  ["a pepper shorter than 32 bytes", (cfg) => (cfg.security.pepper = "00ff00ff"), /security\.pepper: must be at least 32 bytes/],
  [
    "TLS verification off without the explicit flag",
    (cfg) => {
      cfg.upstreams.default = { targets: ["https://llm.example.internal"], tls_verify: false };
    },
    /upstreams\.default\.tls_verify: false turns off certificate checks; set security\.allow_insecure_upstream_tls/,
  ],
  [
    "an upstream credential over plain http to another host",
    (cfg) => {
      cfg.upstreams.default = { targets: ["http://llm.example.internal:8000"], credential: { header: "authorization", value: "Bearer sk-x" } };
    },
    /upstreams\.default\.credential: would be sent in clear text to http:\/\/llm\.example\.internal:8000/,
  ],
  [
    "an OIDC key set fetched over plain http from another host",
    (cfg) => {
      cfg.auth = { oidc: { issuer: "https://idp.example", audience: "patgate", jwks_url: "http://idp.example/jwks" } };
    },
    /auth\.oidc\.jwks_url/,
  ],
  ["an empty listen address (every interface by accident)", (cfg) => (cfg.server.host = ""), /server\.host: must not be empty/],
];

describe("insecure settings refuse start", () => {
  it.each(cases)("%s", async (_name, patch, message) => {
    const { file } = await writeConfig({ upstreamUrl: "http://127.0.0.1:9", patch });
    const { code, stderr } = await runMain(file);
    expect(code).toBe(1);
    expect(stderr).toMatch(/refusing to start/);
    expect(stderr).toMatch(message);
  });

  it("the explicit flags make the same settings acceptable", async () => {
    const { loadSettings } = await import("../../src/config/config.ts");
    const { file } = await writeConfig({
      upstreamUrl: "http://127.0.0.1:9",
      patch: (cfg) => {
        cfg.security.allow_insecure_upstream_tls = true;
        cfg.security.allow_plaintext_credentials = true;
        cfg.upstreams.default = { targets: ["https://llm.example.internal"], tls_verify: false };
        cfg.upstreams.plain = { targets: ["http://llm.example.internal:8000"], credential: { header: "authorization", value: "Bearer sk-x" } };
      },
    });
    const s = loadSettings(file);
    expect(s.upstreams.get("default")?.tlsVerify).toBe(false);
  });
});
