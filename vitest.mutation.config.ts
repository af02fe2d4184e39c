// The tests `npm run mutation` (StrykerJS) runs against each mutant: the unit
// and security tests of the mutated modules, and the integration tests of PAT
// ownership. No log-leak global setup: mutants are meant to misbehave.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "test/unit/routing-entity.test.ts",
      "test/unit/json-scan.test.ts",
      "test/unit/tokens.test.ts",
      "test/unit/verifier.test.ts",
      "test/unit/header-policy.test.ts",
      "test/unit/scope.test.ts",
      "test/unit/rights.test.ts",
      "test/security/*.test.ts",
      "test/integration/admin-pats.test.ts",
      "test/integration/auth.test.ts",
    ],
    // The child-process memory test measures RSS, not logic; the multipart differential (3000 generated
    // bodies through four parsers) would run for every multipart mutant: routing-entity.test.ts covers them.
    exclude: ["test/security/buffered-bodies-unbounded.test.ts", "test/security/multipart-parameter-forms.test.ts"],
    // Instrumented code is several times slower (the 10k-token test in tokens.test.ts).
    testTimeout: 120_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
