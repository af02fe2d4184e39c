import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Collects every gateway log line of the run and fails it if any holds a credential.
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Suites start real servers and a private redis-server; run files in
    // separate forks so one file's sockets never leak into another's.
    pool: "forks",
    reporters: ["default"],
  },
});
