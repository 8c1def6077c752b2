// Test-only bindings, set in vitest.config.ts.
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** scripts/dev-seed.sql: the dev application and its keys. */
    TEST_DEV_SEED: string;
    /** The loopback Sentry stand-in's base URL (GET lists what it received). */
    SENTRY_RECEIVER: string;
  }
}
