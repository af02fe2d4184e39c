// `patgate usage` (text, --json, --csv) and `patgate limits`, and a PAT's own
// limits from `patgate pat create/rotate`, against a gateway on a real socket.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { startAdminFixture, type AdminFixture } from "../helpers/admin.ts";

let fx: AdminFixture;
let env: Record<string, string>;

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), env, now: Date.now });
  return { code, stdout, stderr };
}

describe("patgate usage and limits", () => {
  let patId = "";
  beforeAll(async () => {
    fx = await startAdminFixture({
      patch: (cfg) => {
        cfg["limits"] = { policies: [{ name: "per-pat", subject: "pat", requests_per_minute: 100 }] };
        cfg["usage"] = { flush_interval: "1s" };
      },
    });
    env = { PATGATE_URL: fx.gw.url, PATGATE_TOKEN: fx.gw.adminKey ?? "" };
    await fx.ops.put("/domains/d1", { name: "d1" }).catch(() => undefined);
    const { token, record } = await fx.gw.issue({ userId: "alice", scopes: [{ entityType: "domains", entityId: "d1", operation: "llm_chat_completions" }] });
    patId = record.id;
    for (let i = 0; i < 3; i++) expect(await fx.chat(token)).toBe(200);
    await new Promise((r) => setTimeout(r, 1300));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("prints usage per bucket for people, as JSON and as CSV", async () => {
    const text = await cli(["usage", "--from", "1d", "--group-by", "api_key_id,model"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/bucket\s+api_key_id\s+model\s+requests\s+input\s+output/);
    expect(text.stdout).toContain(`${patId}  llama3`);
    const json = JSON.parse((await cli(["usage", "--from", "1d", "--width", "1h", "--json"])).stdout) as { object: string; data: { results: { num_model_requests: number; input_tokens: number }[] }[] };
    expect(json.object).toBe("page");
    const all = json.data.flatMap((b) => b.results);
    expect(all.reduce((a, r) => a + r.num_model_requests, 0)).toBe(3);
    expect(all.reduce((a, r) => a + r.input_tokens, 0)).toBe(36);
    const csv = (await cli(["usage", "--from", "1d", "--group-by", "api_key_id", "--csv"])).stdout.trim().split("\n");
    expect(csv[0]).toBe("start_time,end_time,api_key_id,user_id,model,operation,domain_id,num_model_requests,input_tokens,output_tokens,input_cached_tokens,estimated_requests,estimated_input_tokens,estimated_output_tokens");
    expect(csv.slice(1).some((l) => l.includes(`,${patId},,,,,3,36,21,0,0,0,0`))).toBe(true);
    const bad = await cli(["usage", "--width", "5m"]);
    expect(bad.code).toBe(2);
  });

  it("limits shows current use; pat create/rotate set and remove a PAT's own limits", async () => {
    const out = await cli(["limits", "--user", "alice"]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/per-pat\s+\S+\s+enforce\s+requests_per_minute\s+3 \/ 100/);
    const made = await cli(["pat", "create", "--user", "alice", "--name", "capped", "--duration", "1d", "--scope", "d1:domains:d1:llm_chat_completions", "--rpm", "5", "--json"]);
    expect(made.code).toBe(0);
    const p = JSON.parse(made.stdout) as { id: string; limits: Record<string, number> };
    expect(p.limits).toEqual({ requests_per_minute: 5 });
    const loose = await cli(["pat", "create", "--user", "alice", "--name", "loose", "--duration", "1d", "--scope", "d1:domains:d1:llm_chat_completions", "--rpm", "500"]);
    expect(loose.code).toBe(1);
    expect(loose.stderr).toContain("per-pat");
    const rotated = await cli(["pat", "rotate", p.id, "--user", "alice", "--duration", "1d", "--no-limits", "--json"]);
    expect(rotated.code).toBe(0);
    expect((JSON.parse(rotated.stdout) as { limits: unknown }).limits).toBeNull();
  });
});
