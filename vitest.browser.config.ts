// The tests against a real `wrangler dev` (npm run test:browser), which test/browser/global-setup.ts
// starts once, with its own state, for every file: the events explorer in headless Chromium
// (test/browser/), and the real Segment and PostHog SDKs, from Node and in Chromium (test/sdks/).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts", "test/sdks/**/*.test.ts"],
    globalSetup: ["./test/browser/global-setup.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
