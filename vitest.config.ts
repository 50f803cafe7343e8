import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "api/**/*.test.ts", "broker/**/*.test.ts"],
    // In order: the tool check must come before anything spawns redis-server.
    globalSetup: ["test/setup/tools-check.ts", "test/setup/redis-server.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
