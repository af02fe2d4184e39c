// The tests `npm run mutation` (StrykerJS) runs against each mutant: the unit
// and security tests of the mutated modules, and the integration tests of PAT
// ownership. No log-leak global setup: mutants are meant to misbehave.
//
// MUTATION_GROUP=<group> narrows the set to one module's own tests (with
// `stryker run --mutate <its files>`): a static mutant (a module-level constant)
// runs every test in the set, which with all of them takes about a minute per
// mutant; with one module's tests, seconds. Fewer tests can only kill fewer
// mutants, so a group's score is a lower bound of the full set's.
import { defineConfig } from "vitest/config";

const GROUPS: Readonly<Record<string, readonly string[]>> = {
  // src/scopes/scope.ts
  scopes: ["test/unit/scope.test.ts", "test/unit/scope-rules.test.ts", "test/unit/rights.test.ts", "test/security/scope-domain-binding.test.ts"],
  // src/tokens/format.ts
  tokens: ["test/unit/tokens.test.ts", "test/unit/pat-format-rules.test.ts", "test/security/whole-keyed-hash-compared.test.ts"],
  // src/upstream/headers.ts
  headers: ["test/unit/header-policy.test.ts", "test/unit/header-policy-rules.test.ts", "test/security/header-tricks.test.ts", "test/security/upstream-never-sees-client-credentials.test.ts"],
  // src/routing/entity.ts, entity-id.ts, multipart.ts
  entity: ["test/unit/routing-entity.test.ts", "test/unit/entity-rules.test.ts", "test/unit/multipart-rules.test.ts", "test/unit/json-scan.test.ts", "test/security/model-allowlist-bypass.test.ts", "test/security/ollama-second-model-field.test.ts"],
  // src/admin/pats.ts
  pats: ["test/integration/admin-pats.test.ts", "test/integration/admin-pats-ownership.test.ts", "test/integration/admin-audit.test.ts", "test/security/cross-user-pat-access.test.ts", "test/security/secret-hash-never-returned.test.ts"],
};

const ALL = [
  "test/unit/routing-entity.test.ts",
  "test/unit/entity-rules.test.ts",
  "test/unit/multipart-rules.test.ts",
  "test/unit/json-scan.test.ts",
  "test/unit/tokens.test.ts",
  "test/unit/pat-format-rules.test.ts",
  "test/unit/verifier.test.ts",
  "test/unit/header-policy.test.ts",
  "test/unit/header-policy-rules.test.ts",
  "test/unit/scope.test.ts",
  "test/unit/scope-rules.test.ts",
  "test/unit/rights.test.ts",
  "test/security/*.test.ts",
  "test/integration/admin-pats.test.ts",
  "test/integration/admin-pats-ownership.test.ts",
  "test/integration/admin-audit.test.ts",
  "test/integration/auth.test.ts",
];

function include(): string[] {
  const group = process.env["MUTATION_GROUP"];
  if (group === undefined || group === "") return ALL;
  const files = GROUPS[group];
  if (files === undefined) throw new Error(`MUTATION_GROUP must be one of ${Object.keys(GROUPS).join(", ")}`);
  return [...files];
}

export default defineConfig({
  test: {
    include: include(),
    // The child-process memory test measures RSS, not logic; the multipart differential (3000 generated
    // bodies through four parsers) would run for every multipart mutant: routing-entity.test.ts covers them.
    exclude: ["test/security/buffered-bodies-unbounded.test.ts", "test/security/multipart-parameter-forms.test.ts"],
    // Instrumented code is several times slower (the 10k-token test in tokens.test.ts).
    testTimeout: 120_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
