// Two test projects. "workers": the Worker's tests inside workerd with its real D1 and Queue
// bindings (from wrangler.toml); migrations are read here and applied in
// test/helpers/apply-migrations.ts, and a loopback Sentry stand-in started by test/helpers/global-setup.ts
// receives what toucan-js sends. "node": pure modules that Node-side tools also run, tested
// under Node, where V8's clock advances during synchronous work (workerd's does not), so a
// test can catch code that is slow in time rather than wrong in result.
import { readFileSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(async ({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations(path.join(import.meta.dirname, "migrations")),
                TEST_DEV_SEED: readFileSync(path.join(import.meta.dirname, "scripts/dev-seed.sql"), "utf8"),
                ENVIRONMENT: "development",
                KEY_CACHE_SECONDS: "1",
                PAYLOAD_SCHEMA_CACHE_SECONDS: "1",
                SENTRY_DSN: `http://public@127.0.0.1:${inject<number>("sentryPort")}/1`,
                SENTRY_RECEIVER: `http://127.0.0.1:${inject<number>("sentryPort")}`,
              },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
          globalSetup: ["./test/helpers/global-setup.ts"],
          setupFiles: ["./test/helpers/apply-migrations.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
        },
      },
    ],
  },
});
