// The browser tests (npm run test:browser): the events explorer in headless Chromium against
// `wrangler dev`, which test/browser/global-setup.ts starts once, with its own state, for every file.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    globalSetup: ["./test/browser/global-setup.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
