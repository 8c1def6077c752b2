// The tests against a real `wrangler dev` (npm run test:browser), two projects, each with a Worker of
// its own (test/browser/global-setup.ts starts it, with its own state, once for the project's files):
// the events explorer in headless Chromium (test/browser/), which counts every event it was given;
// and the real Segment and PostHog SDKs, from Node and in Chromium (test/sdks/), whose events must
// not show up among the explorer's. Files run one at a time.
import { defineConfig } from "vitest/config";

const shared = {
  globalSetup: ["./test/browser/global-setup.ts"],
  environment: "node",
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    fileParallelism: false,
    projects: [
      { test: { name: "explorer", include: ["test/browser/**/*.test.ts"], ...shared } },
      { test: { name: "sdks", include: ["test/sdks/**/*.test.ts"], ...shared } },
    ],
  },
});
