// What the operator CLIs share: SQL against the Worker's D1 through `wrangler d1 execute`, so no admin
// endpoint exists on the Worker. Which database: the local one (the default, what `npm run dev` uses),
// or a deployed environment's: `--env staging`, `--env production`, or `--remote` (production). A CLI
// built on this file acts on that environment's resources only: its D1 here, its bucket via bucket().
import { configOf, envFlag, envOf, jsonOf, PRODUCTION, wrangler } from "./wrangler.mjs";

/**
 * Where this run acts. `env`: the deployed environment (undefined when local); `remote`: whether it
 * is a deployed one; `label`: how to name it to the operator; `flags`: the CLI's own flags that name
 * it again (for a hint to run another command on the same target).
 */
export const target = (() => {
  try {
    return targetOf(process.argv.slice(2));
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
})();

/** For the CLIs that know only this much (a deployed database or the local one). */
export const remote = target.remote;

export function targetOf(args) {
  const named = envOf(args);
  const local = args.includes("--local");
  if (local && (named !== undefined || args.includes("--remote")))
    throw new Error("--local names the local database: it goes with neither --env nor --remote");
  if (local || (named === undefined && !args.includes("--remote")))
    return { env: undefined, remote: false, label: "local", flags: "" };
  const env = named ?? PRODUCTION;
  return { env, remote: true, label: env, flags: ` --env ${env}` };
}

/** The flags that point any `wrangler d1 …` or `wrangler r2 object …` command at the target. */
export const targetArgs = (t = target) => (t.remote ? ["--remote", "--env", envFlag(t.env)] : ["--local"]);

/** A SQL string literal. */
export const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** Now as the database keeps times: microseconds since the epoch, UTC. */
export const now = () => Date.now() * 1000;

/** What a failed wrangler said: with --json its error comes as {"error": {"text"}} on stdout. */
function failure(r) {
  try {
    return jsonOf(r.stdout).error?.text ?? r.stdout.trim();
  } catch {
    return (r.stderr.trim() || r.stdout.trim()).split("\n").slice(0, 12).join("\n");
  }
}

/** Runs SQL on the target's database and returns the rows of every statement. */
export function d1(sql) {
  const r = wrangler(["d1", "execute", "DB", ...targetArgs(), "--json", "--command", sql]);
  if (r.status !== 0) throw new Error(`wrangler d1 execute on the ${target.label} database failed:\n${failure(r)}`);
  return jsonOf(r.stdout).flatMap((x) => x.results ?? []);
}

/**
 * The bucket a binding (ARCHIVE by default) names in the target's environment, as wrangler.toml
 * declares it: for `wrangler r2 object … <bucket>/<key>` with targetArgs(), which take the bucket
 * from the path and not from --env. Locally, the top level's.
 */
export async function bucket(binding = "ARCHIVE", t = target) {
  const env = t.env ?? PRODUCTION;
  const found = (await configOf(env)).r2_buckets.find((b) => b.binding === binding);
  if (!found) throw new Error(`wrangler.toml declares no R2 binding ${binding} for ${env}`);
  return found.bucket_name;
}

/** The value after a flag (`--app x`), or undefined. */
export function flag(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Runs `commands[argv command]` with the other positional arguments, or prints the usage and exits 1.
 * `--env` always takes a value; `valueFlags` are the CLI's own that do.
 */
export async function run(commands, usage, valueFlags = []) {
  const args = process.argv.slice(2);
  const takesValue = ["--env", ...valueFlags];
  const positional = args.filter((a, i) => !a.startsWith("--") && !(i > 0 && takesValue.includes(args[i - 1])));
  const [command, ...rest] = positional;
  try {
    if (!commands[command]) throw new Error(usage);
    await commands[command](rest, args);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
