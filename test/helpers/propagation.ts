import { expect, it } from "vitest";
import type { TestGateway } from "./gateway.ts";

/** The 100 ms goal of SPEC §5, measured in each case. */
export const BOUND_MS = 100;

const CHAT = { entityType: "models", entityId: "llama3", operation: "llm_chat_completions" };

/**
 * The cross-process cases, shared by every store mode: a change committed through
 * gateway A (in this process) is enforced by gateway B (another process) within
 * BOUND_MS. `gateways()` is read when a case runs, after the caller's beforeAll.
 */
export function propagationCases(gateways: () => { a: TestGateway; bUrl: string }): void {
  const chatOnB = (token: string): Promise<number> =>
    fetch(`${gateways().bUrl}/proxy/d1/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '{"model":"llama3","messages":[]}',
    }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });

  /** Polls B until it answers `status`; returns the ms from `since` to the first such answer. */
  async function until(token: string, status: number, since: number): Promise<number> {
    for (;;) {
      const s = await chatOnB(token);
      const t = performance.now() - since;
      if (s === status) return t;
      if (t > 5_000) throw new Error(`still ${s} after 5 s`);
    }
  }

  async function warm(): Promise<Awaited<ReturnType<TestGateway["issue"]>>> {
    const issued = await gateways().a.issue({ userId: `u${Math.random()}`, scopes: [CHAT] });
    // Twice: B has the PAT and membership cached before the change.
    expect(await chatOnB(issued.token)).toBe(200);
    expect(await chatOnB(issued.token)).toBe(200);
    return issued;
  }

  it("a revoke through process A is refused by process B within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    expect(await gateways().a.store.replacePat({ ...record, revoked: true, revokedAt: Date.now() }, record.version)).toBe("ok");
    expect(await until(token, 401, t0)).toBeLessThan(BOUND_MS);
  });

  it("a delete is refused within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    expect(await gateways().a.store.deletePat(record.id)).toBe(true);
    expect(await until(token, 401, t0)).toBeLessThan(BOUND_MS);
  });

  it("a scope removal is refused within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    const other = { domainId: "d1", entityType: "models", entityId: "other", operation: "llm_chat_completions" };
    expect(await gateways().a.store.replacePat({ ...record, scopes: [other] }, record.version)).toBe("ok");
    expect(await until(token, 403, t0)).toBeLessThan(BOUND_MS);
  });

  it("a membership removal is refused within 100 ms", async () => {
    const { token, record } = await warm();
    const t0 = performance.now();
    expect(await gateways().a.store.deleteMembership("d1", record.userId)).toBe(true);
    expect(await until(token, 403, t0)).toBeLessThan(BOUND_MS);
  });

  it("a token created after B cached its id as unknown works at once", async () => {
    const issued = await gateways().a.issue({ userId: "late", scopes: [CHAT] });
    expect(await chatOnB(issued.token)).toBe(200);
  });
}
