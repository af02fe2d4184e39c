// The limits: and usage: sections refuse start on anything unknown or wrong, naming the key.
import { describe, expect, it } from "vitest";
import { ConfigError, parseSettings } from "../../src/config/config.ts";

const FILE = "/etc/patgate/patgate.yaml";
const base = (extra: Record<string, unknown>): Record<string, unknown> => ({
  catalog: { operations: ["llm_read", "llm_chat_completions"], entity_types: { models: ["llm_read", "llm_chat_completions"] } },
  upstreams: { default: { targets: ["http://127.0.0.1:11434"] } },
  ...extra,
});
const problems = (extra: Record<string, unknown>): string[] => {
  try {
    parseSettings(base(extra), FILE);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message.split("\n");
  }
};
const policy = (p: Record<string, unknown>): Record<string, unknown> => ({ limits: { policies: [{ name: "p", subject: "pat", requests_per_minute: 10, ...p }] } });

describe("limits and usage config", () => {
  it("parses a policy with its defaults", () => {
    const s = parseSettings(base({ limits: { replicas: 3, policies: [{ name: "chat", subject: "domain_model", match: { models: ["llama3"], operations: ["llm_chat_completions"] }, tokens_per_minute: 1000, clamp_max_tokens: true }] } }), FILE);
    const p = s.limits.policies[0]!;
    expect(p).toMatchObject({ name: "chat", subject: "domain_model", tokensPerMinute: 1000, requestsPerMinute: 0, mode: "enforce", onStoreDown: "local", clampMaxTokens: true });
    expect([...p.models]).toEqual(["llama3"]);
    expect(s.limits).toMatchObject({ replicas: 3, defaultMaxTokens: 4096, leaseTtlMs: 30_000, redisUrl: null });
    expect(s.usage).toMatchObject({ enabled: true, flushIntervalMs: 5000, maxSeries: 10_000 });
  });

  it.each([
    [policy({ colour: "red" }), "limits.policies[0].colour: unknown key"],
    [policy({ subject: "header" }), "limits.policies[0].subject: must be one of pat, user, domain, domain_model, pat_model"],
    [policy({ mode: "loud" }), "limits.policies[0].mode: must be enforce or shadow"],
    [policy({ on_store_down: "open" }), "limits.policies[0].on_store_down: must be local"],
    [policy({ requests_per_minute: -1 }), "limits.policies[0].requests_per_minute: must be a whole number"],
    [policy({ requests_per_minute: 0 }), "limits.policies[0]: sets no limit"],
    [policy({ match: { models: ["x"], users: ["y"] } }), "limits.policies[0].match.users: unknown key"],
    [policy({ match: { operations: ["fly"] } }), 'limits.policies[0].match.operations: unknown operation "fly"'],
    [policy({ clamp_max_tokens: true }), "limits.policies[0].clamp_max_tokens: needs tokens_per_minute or tokens_per_day"],
    [policy({ name: "Bad Name" }), "limits.policies[0].name: is required"],
    [{ limits: { policies: [{ name: "a", subject: "pat", concurrent: 1 }, { name: "a", subject: "user", concurrent: 1 }] } }, 'limits.policies[1].name: "a" is used by another policy'],
    [{ limits: { lease_ttl: "500" } }, "limits.lease_ttl:"],
    [{ limits: { redis_url: "http://x" } }, "limits.redis_url: must be a redis://"],
    [{ limits: { policies: "none" } }, "limits.policies: must be a list"],
    [{ usage: { flush_interval: "10m" } }, "usage.flush_interval: must be from 1s to 1m"],
    [{ usage: { hourly_retention: "10m" } }, "usage.hourly_retention: must be at least 1h"],
    [{ usage: { speed: 1 } }, "usage.speed: unknown key"],
  ])("refuses start: %j", (extra, fragment) => {
    const p = problems(extra);
    expect(p.some((line) => line.includes(fragment)), p.join("\n")).toBe(true);
  });
});
