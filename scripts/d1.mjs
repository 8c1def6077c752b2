// What the operator CLIs share: SQL against the Worker's D1 through `wrangler d1 execute`, on the
// local database (default) or production (--remote), so no admin endpoint exists on the Worker.
import { execFileSync } from "node:child_process";

export const remote = process.argv.includes("--remote");

/** A SQL string literal. */
export const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** Now as the database keeps times: microseconds since the epoch, UTC. */
export const now = () => Date.now() * 1000;

/** Runs SQL and returns the rows of every statement. */
export function d1(sql) {
  const out = execFileSync(
    "wrangler",
    ["d1", "execute", "DB", remote ? "--remote" : "--local", "--json", "--command", sql],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(out).flatMap((r) => r.results ?? []);
}

/** The value after a flag (`--app x`), or undefined. */
export function flag(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Runs `commands[argv command]` with the other positional arguments, or prints the usage and exits 1. */
export async function run(commands, usage, valueFlags = []) {
  const args = process.argv.slice(2);
  const positional = args.filter((a, i) => !a.startsWith("--") && !(i > 0 && valueFlags.includes(args[i - 1])));
  const [command, ...rest] = positional;
  try {
    if (!commands[command]) throw new Error(usage);
    await commands[command](rest, args);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
