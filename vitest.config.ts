// Tests run inside workerd with the Worker's real D1 and Queue bindings (from wrangler.toml).
// Migrations are read here and applied in test/apply-migrations.ts; a loopback Sentry stand-in
// started by test/global-setup.ts receives what toucan-js sends.
import { readFileSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest(async ({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          TEST_MIGRATIONS: await readD1Migrations(path.join(import.meta.dirname, "migrations")),
          TEST_DEV_SEED: readFileSync(path.join(import.meta.dirname, "scripts/dev-seed.sql"), "utf8"),
          ENVIRONMENT: "development",
          KEY_CACHE_SECONDS: "1",
          SENTRY_DSN: `http://public@127.0.0.1:${inject<number>("sentryPort")}/1`,
          SENTRY_RECEIVER: `http://127.0.0.1:${inject<number>("sentryPort")}`,
        },
      },
    })),
  ],
  test: {
    globalSetup: ["./test/global-setup.ts"],
    setupFiles: ["./test/apply-migrations.ts"],
    testTimeout: 30_000,
  },
});
