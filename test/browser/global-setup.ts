// Starts the Worker under `wrangler dev` (test/helpers/dev-worker.ts) once for every browser test file, and
// waits for the static assets too; the tests get its URL by inject("eyeUrl").
import type { TestProject } from "vitest/node";
import { startDevWorker } from "../helpers/dev-worker";

export default async function setup(project: TestProject) {
  const { url, stop } = await startDevWorker("eye-browser-test-", ["/api/health", "/explorer/", "/home/"]);
  project.provide("eyeUrl", url);
  return stop;
}

declare module "vitest" {
  interface ProvidedContext {
    eyeUrl: string;
  }
}
