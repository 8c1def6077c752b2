// The operator CLIs (npm run keys, schemas, erase: scripts/d1.mjs under each) act on the database of
// the environment they are given and no other: the local one by default, a deployed one with --env
// (or --remote, production). Run against the stand-in wrangler (test/node/fake-wrangler.mjs), which
// records each `wrangler d1 execute`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(path.join(tmpdir(), "eye-cli-"));
const statePath = path.join(dir, "account.json");
const logPath = path.join(dir, "calls.jsonl");
writeFileSync(
  statePath,
  JSON.stringify({
    loggedIn: true,
    accounts: [{ id: "acc1", name: "one" }],
    databases: { "": "the-eye", staging: "the-eye-staging" },
    d1: {},
    queues: {},
    buckets: {},
  }),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `npm run <cli> -- ...args`: its exit status, its output and the flags of each `wrangler d1 execute` it ran. */
function cli(script: string, args: string[]) {
  writeFileSync(logPath, "");
  const r = spawnSync(process.execPath, [path.join(ROOT, "scripts", script), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: {
      ...process.env,
      EYE_WRANGLER: path.join(import.meta.dirname, "fake-wrangler.mjs"),
      FAKE_WRANGLER_STATE: statePath,
      FAKE_WRANGLER_LOG: logPath,
    },
  });
  const calls = readFileSync(logPath, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { args: string[] }).args);
  for (const call of calls) expect(call.slice(0, 3)).toEqual(["d1", "execute", "DB"]);
  // What stands between "DB" and the SQL: where the statement runs.
  const targets = calls.map((call) => call.slice(3, call.indexOf("--json")));
  return { status: r.status, output: r.stdout + r.stderr, targets };
}

describe("the operator CLIs act on the environment they are given", () => {
  it.each([
    ["keys.mjs", ["list"]],
    ["schemas.mjs", ["list"]],
    ["erase.mjs", ["status"]],
  ])("%s %j: the local database", (script, args) => {
    const run = cli(script, args);
    expect(run.status, run.output).toBe(0);
    expect(run.targets.length).toBeGreaterThan(0);
    for (const t of run.targets) expect(t).toEqual(["--local"]);
  });

  it.each([
    ["keys.mjs", ["list", "--env", "staging"], "staging"],
    ["schemas.mjs", ["list", "--env=staging"], "staging"],
    ["erase.mjs", ["status", "--env", "staging"], "staging"],
    ["keys.mjs", ["list", "--env", "production"], ""],
    ["schemas.mjs", ["list", "--remote"], ""],
    ["erase.mjs", ["status", "--remote"], ""],
  ])("%s %j: that deployed environment's database", (script, args, env) => {
    const run = cli(script, args);
    expect(run.status, run.output).toBe(0);
    expect(run.targets.length).toBeGreaterThan(0);
    for (const t of run.targets) expect(t).toEqual(["--remote", "--env", env]);
  });

  it("a command's arguments are not taken for the environment's name, nor it for one of theirs", () => {
    const run = cli("erase.mjs", ["session", "--env", "staging", "app_1", "s-1"]);
    expect(run.status, run.output).toBe(0);
    for (const t of run.targets) expect(t).toEqual(["--remote", "--env", "staging"]);
    // The hint to follow the request up names the same environment.
    expect(run.output).toContain("npm run erase -- status 1 --env staging");
    expect(run.output).toContain("staging's maintenance carries it out");
  });

  it("refuses --local with --env, and --env without a name, before touching any database", () => {
    for (const args of [
      ["list", "--local", "--env", "staging"],
      ["list", "--env"],
    ]) {
      const run = cli("keys.mjs", args);
      expect(run.status).toBe(1);
      expect(run.targets).toEqual([]);
    }
  });

  it("names each environment's own bucket for a CLI that reads the archive", () => {
    const probe = path.join(dir, "bucket.mjs");
    writeFileSync(
      probe,
      `import { bucket, targetOf } from ${JSON.stringify(pathToFileURL(path.join(ROOT, "scripts/d1.mjs")).href)};
console.log(JSON.stringify([await bucket("ARCHIVE", targetOf([])), await bucket("ARCHIVE", targetOf(["--env", "staging"])), await bucket("ARCHIVE", targetOf(["--remote"]))]));`,
    );
    const r = spawnSync(process.execPath, [probe], { cwd: ROOT, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(["the-eye-archive", "the-eye-staging-archive", "the-eye-archive"]);
  }, 60_000);
});
