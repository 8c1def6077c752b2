// The repository's Worker under a real `wrangler dev`, for the tests that need one (the explorer's
// browser tests, the client library's tests, the full-database test): as `npm run dev` runs it,
// static assets included, but on a port of its own with its own state — migrations and the dev seed
// applied to a --persist-to directory, ENVIRONMENT=development so the documented dev keys work.
// Node only. The port is the one the system gives wrangler (`--port 0`), read from what wrangler
// prints once it listens: no port is picked first and bound later, so no other process can take it
// in between.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** The project's Node 22 (wrangler needs it) when the tests run under another. */
const NODE = existsSync(path.join(ROOT, "node_modules/.bin/node"))
  ? path.join(ROOT, "node_modules/.bin/node")
  : process.execPath;
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const ENV = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

/** What wrangler dev prints once it listens. */
const READY = /Ready on (http:\/\/127\.0\.0\.1:\d+)/;

function wrangler(args: string[]): void {
  const r = spawnSync(NODE, [WRANGLER, ...args], {
    cwd: ROOT,
    env: ENV,
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`wrangler ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
}

export interface DevWorker {
  url: string;
  /** Its --persist-to directory (migrated, dev-seeded). */
  persist: string;
  /** Everything wrangler and the Worker printed so far. */
  output: () => string;
  /** Ends wrangler and the workerd processes it started, and removes the state it made. */
  stop: () => Promise<void>;
}

export interface DevWorkerOptions {
  /** State directory to use (and keep); by default a fresh temporary one, removed by stop(). */
  persistTo?: string;
  /** More `--var`s (ENVIRONMENT is always development). */
  vars?: Record<string, string>;
  /** wrangler's --log-level; "info" also prints each queue batch (`QUEUE the-eye-events 3/3`). */
  logLevel?: "debug" | "info" | "log" | "warn" | "error";
  /** `--test-scheduled`: GET /__scheduled runs the cron handler. */
  testScheduled?: boolean;
  /** Echo wrangler's output while the tests run (debugging). */
  echo?: boolean;
}

/** Starts the Worker and resolves once every path of `readyPaths` answers 2xx (within 120 s). */
export async function startDevWorker(
  statePrefix: string,
  readyPaths: string[] = ["/api/health"],
  options: DevWorkerOptions = {},
): Promise<DevWorker> {
  const persist = options.persistTo ?? mkdtempSync(path.join(tmpdir(), statePrefix));
  wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]);
  wrangler(["d1", "execute", "DB", "--local", "--persist-to", persist, "--file", "scripts/dev-seed.sql"]);

  const vars = { ENVIRONMENT: "development", ...options.vars };
  let log = "";
  // Its own process group, so stop() ends wrangler and the workerd processes it started.
  const child: ChildProcess = spawn(
    NODE,
    [
      WRANGLER,
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      "0",
      "--inspector-port",
      "0",
      "--persist-to",
      persist,
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      "--show-interactive-dev-session=false",
      ...(options.logLevel ? ["--log-level", options.logLevel] : []),
      ...(options.testScheduled ? ["--test-scheduled"] : []),
    ],
    { cwd: ROOT, env: ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const collect = (chunk: Buffer) => {
    log += chunk;
    if (options.echo) process.stderr.write(chunk);
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);

  const stop = async () => {
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve)));
    if (!options.persistTo) rmSync(persist, { recursive: true, force: true });
  };

  const until = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${log}`);
    const url = READY.exec(log)?.[1];
    if (url) {
      try {
        const answers = await Promise.all(
          readyPaths.map((p) => fetch(`${url}${p}`, { signal: AbortSignal.timeout(2000) })),
        );
        await Promise.all(answers.map((a) => a.arrayBuffer()));
        if (answers.every((a) => a.ok)) return { url, persist, output: () => log, stop };
      } catch {
        // not answering yet
      }
    }
    if (Date.now() > until) {
      await stop();
      throw new Error(`wrangler dev did not answer in 120 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
