// Starts the repository's Worker under `wrangler dev` (the repository's test/dev-worker.ts: a free
// port, its own migrated and dev-seeded state, the documented dev keys) once for every test file;
// tests get its URL by inject("eyeUrl").
import type { TestProject } from "vitest/node";
import { startDevWorker } from "../../test/helpers/dev-worker.js";

export default async function setup(project: TestProject) {
  const { url, stop } = await startDevWorker("eye-client-test-");
  project.provide("eyeUrl", url);
  return stop;
}

declare module "vitest" {
  interface ProvidedContext {
    eyeUrl: string;
  }
}
