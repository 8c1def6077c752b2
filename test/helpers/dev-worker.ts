// The repository's Worker under a real `wrangler dev`, for the tests that need one (the explorer's
// browser tests, the client library's tests): as `npm run dev` runs it, static assets included, but on
// a free port with its own state — migrations and the dev seed applied to a temporary --persist-to
// directory, ENVIRONMENT=development so the documented dev keys work. Node only.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** The project's Node 22 (wrangler needs it) when the tests run under another. */
const NODE = existsSync(path.join(ROOT, "node_modules/.bin/node"))
  ? path.join(ROOT, "node_modules/.bin/node")
  : process.execPath;
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const ENV = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

/** A free loopback port, never 8787 (wrangler dev's default) nor 8800–8899 (the benchmark's instances). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    if (port !== 8787 && (port < 8800 || port > 8899)) return port;
  }
}

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
  /** Ends wrangler and the workerd processes it started, and removes the state. */
  stop: () => Promise<void>;
}

/** Starts the Worker and resolves once every path of `readyPaths` answers 2xx (within 120 s). */
export async function startDevWorker(
  statePrefix: string,
  readyPaths: string[] = ["/api/health"],
  extraArgs: string[] = [],
): Promise<DevWorker> {
  const persist = mkdtempSync(path.join(tmpdir(), statePrefix));
  wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]);
  wrangler(["d1", "execute", "DB", "--local", "--persist-to", persist, "--file", "scripts/dev-seed.sql"]);

  const [port, inspectorPort] = [await freePort(), await freePort()];
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
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      persist,
      "--var",
      "ENVIRONMENT:development",
      "--show-interactive-dev-session=false",
      ...extraArgs,
    ],
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
      const answers = await Promise.all(
        readyPaths.map((p) => fetch(`${url}${p}`, { signal: AbortSignal.timeout(2000) })),
      );
      await Promise.all(answers.map((a) => a.arrayBuffer()));
      if (answers.every((a) => a.ok)) return { url, persist, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      await stop();
      throw new Error(`wrangler dev did not answer in 120 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
