// `patgate me` and `patgate grantable` against a gateway on a real socket, as a user (OIDC JWT).
import { afterAll, beforeAll, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { startAdminFixture, type AdminFixture } from "../helpers/admin.ts";
import { ensureMember } from "../helpers/gateway.ts";

let fx: AdminFixture;
let env: Record<string, string>;

beforeAll(async () => {
  fx = await startAdminFixture();
  await ensureMember(fx.gw.store, "demo", "alice", "developer");
  env = { PATGATE_URL: fx.gw.url, PATGATE_TOKEN: await fx.idp.token("alice", { expiresIn: 3600 }) };
});
afterAll(async () => {
  await fx.close();
});

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), env, now: Date.now });
  return { code, stdout, stderr };
}

it("patgate me: the user, their domains, roles and operations", async () => {
  const r = await cli(["me"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/kind\s+user/);
  expect(r.stdout).toMatch(/user\s+alice/);
  expect(r.stdout).toMatch(/demo\s+developer\s+.*llm_chat_completions/);
  const json = JSON.parse((await cli(["me", "--json"])).stdout) as { user_id: string };
  expect(json.user_id).toBe("alice");
});

it("patgate grantable: the upstream's models and the operations held", async () => {
  const r = await cli(["grantable", "demo", "models"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/operations\s+.*llm_chat_completions/);
  expect(r.stdout).not.toContain("llm_delete");
  expect(r.stdout).toMatch(/fake-model\s+upstream/);
  const refused = await cli(["grantable", "elsewhere", "models"]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain("domain_not_found");
});
