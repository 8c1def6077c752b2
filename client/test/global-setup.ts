// Starts the repository's Worker as `npm run dev` would, but on a free port with its own state:
// migrations and the dev seed applied to a temporary --persist-to directory, then `wrangler dev`
// with ENVIRONMENT=development (so the documented dev keys work). Tests get its URL by inject("eyeUrl").
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { freePort } from "./helpers/ports.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** The repository's Node 22 (wrangler needs it) when the tests themselves run under another. */
const NODE = existsSync(path.join(ROOT, "node_modules/.bin/node")) ? path.join(ROOT, "node_modules/.bin/node") : process.execPath;
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const ENV = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

function wrangler(args: string[]): void {
  const r = spawnSync(NODE, [WRANGLER, ...args], { cwd: ROOT, env: ENV, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (r.status !== 0) throw new Error(`wrangler ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
}

export default async function setup(project: TestProject) {
  const persist = mkdtempSync(path.join(tmpdir(), "eye-client-test-"));
  wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]);
  wrangler(["d1", "execute", "DB", "--local", "--persist-to", persist, "--file", "scripts/dev-seed.sql"]);

  const port = await freePort();
  const inspectorPort = await freePort();
  let log = "";
  // Its own process group, so teardown ends wrangler and the workerd processes it started.
  const child: ChildProcess = spawn(
    NODE,
    [WRANGLER, "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", persist,
      "--var", "ENVIRONMENT:development", "--show-interactive-dev-session=false"],
    { cwd: ROOT, env: ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout!.on("data", (chunk: Buffer) => (log += chunk));
  child.stderr!.on("data", (chunk: Buffer) => (log += chunk));
  const url = `http://127.0.0.1:${port}`;

  const stop = async () => {
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve)));
    rmSync(persist, { recursive: true, force: true });
  };

  const until = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${log}`);
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      await stop();
      throw new Error(`wrangler dev did not answer in 120 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  project.provide("eyeUrl", url);
  return stop;
}

declare module "vitest" {
  interface ProvidedContext {
    eyeUrl: string;
  }
}
