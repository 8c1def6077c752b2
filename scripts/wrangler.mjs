// How the scripts reach Cloudflare: through the project's own wrangler (or EYE_WRANGLER, a stand-in
// the tests put there), for the environment named by --env, with wrangler.toml as wrangler reads it.
// Shared by the deploy (scripts/deploy.mjs) and the operator CLIs (scripts/d1.mjs and those on it).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CONFIG = path.join(ROOT, "wrangler.toml");

/** The environment wrangler.toml's top level is: production has no [env.production] section. */
export const PRODUCTION = "production";

/**
 * The environment named on the command line (`--env NAME` or `--env=NAME`), or undefined.
 * "production" and "" both name the top level.
 */
export function envOf(args) {
  for (const [i, a] of args.entries()) {
    if (a === "--env") {
      const value = args[i + 1];
      if (value === undefined || value.startsWith("-")) throw new Error("--env needs a name (production, staging)");
      return value === "" ? PRODUCTION : value;
    }
    if (a.startsWith("--env=")) return a.slice("--env=".length) || PRODUCTION;
  }
  return undefined;
}

/** What wrangler's --env takes for an environment: "" for the top level (production). */
export const envFlag = (env) => (env === PRODUCTION ? "" : env);

/** The command that runs wrangler: EYE_WRANGLER when set (an executable), else the project's own. */
function command() {
  const standIn = process.env.EYE_WRANGLER;
  if (standIn) return /\.[cm]?js$/.test(standIn) ? [process.execPath, standIn] : [standIn];
  return [process.execPath, path.join(ROOT, "node_modules/wrangler/bin/wrangler.js")];
}

/**
 * Runs `wrangler ...args` in the project's root and returns { status, stdout, stderr }. With
 * `inherit` its output goes to the terminal as it comes (stdin stays closed, so wrangler never waits
 * on a prompt unless `interactive`); otherwise both streams are captured.
 */
export function wrangler(args, { inherit = false, interactive = false, env = process.env } = {}) {
  const [cmd, ...pre] = command();
  const r = spawnSync(cmd, [...pre, ...args], {
    cwd: ROOT,
    env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: [interactive ? "inherit" : "ignore", inherit ? "inherit" : "pipe", inherit ? "inherit" : "pipe"],
  });
  if (r.error) throw new Error(`cannot run wrangler (${[cmd, ...pre].join(" ")}): ${r.error.message}`);
  return { status: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** The JSON a `wrangler … --json` command printed (it may lead with a blank line or a banner). */
export function jsonOf(stdout) {
  const start = stdout.search(/[[{]/);
  if (start < 0) throw new Error(`no JSON in wrangler's output: ${stdout.slice(0, 200)}`);
  return JSON.parse(stdout.slice(start));
}

/** wrangler.toml resolved for `env` by wrangler itself (inheritance included), without its warnings. */
export async function configOf(env = PRODUCTION) {
  const require = createRequire(path.join(ROOT, "package.json"));
  const { unstable_readConfig } = await import(pathToFileURL(require.resolve("wrangler")).href);
  return unstable_readConfig({ config: CONFIG, env: envFlag(env) || undefined }, { hideWarnings: true });
}
