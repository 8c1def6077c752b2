// The client's tests under Node. test/global-setup.ts starts the repository's Worker under
// `wrangler dev` (local D1 and Queue, dev keys) once for every file; files run one at a time, as
// they share that Worker, its rate limit and a 2-core machine.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
