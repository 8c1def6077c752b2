// `npm run deploy` (scripts/deploy.mjs) against a stand-in wrangler (test/node/fake-wrangler.mjs, in
// EYE_WRANGLER) that answers like the real one for an account kept in a file, and a stand-in of the
// Cloudflare API for the one REST call (read replication). On a fresh account it creates each missing
// resource before the migrations and the deploy, in that order; run again, it creates nothing; with
// --env staging it touches staging's resources only.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const FAKE = path.join(import.meta.dirname, "fake-wrangler.mjs");
const dir = mkdtempSync(path.join(tmpdir(), "eye-deploy-"));
const statePath = path.join(dir, "account.json");
const logPath = path.join(dir, "calls.jsonl");
const RETENTION = String(14 * 24 * 3600);

interface Account {
  loggedIn: boolean;
  accounts: { id: string; name: string }[];
  freePlan?: boolean;
  databases: Record<string, string>;
  d1: Record<string, { uuid: string; mode: string }>;
  queues: Record<string, { retention: number }>;
  buckets: Record<string, object>;
}

const fresh = (over: Partial<Account> = {}): Account => ({
  loggedIn: true,
  accounts: [{ id: "acc1", name: "The Eye's account" }],
  // What `--env X` resolves the binding DB to (wrangler.toml's database_name of each environment).
  databases: { "": "the-eye", staging: "the-eye-staging" },
  d1: {},
  queues: {},
  buckets: {},
  ...over,
});
const account = (): Account => JSON.parse(readFileSync(statePath, "utf8"));

// The Cloudflare API stand-in: a PUT on a database turns its read replication to what the body says.
let api: Server;
let apiUrl = "";
const apiCalls: { method: string; url: string; auth: string | undefined; body: string }[] = [];
beforeAll(async () => {
  api = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      apiCalls.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const uuid = req.url!.split("/").at(-1);
      const state = account();
      for (const db of Object.values(state.d1)) if (db.uuid === uuid) db.mode = JSON.parse(body).read_replication.mode;
      writeFileSync(statePath, JSON.stringify(state));
      res.writeHead(200, { "content-type": "application/json" }).end('{"success":true,"errors":[],"result":{}}');
    });
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}/client/v4`;
});
afterAll(async () => {
  await new Promise((resolve) => api.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the deploy script as `npm run deploy -- ...args` would, with the stand-ins; its calls to wrangler in order. */
function deploy(args: string[] = [], extraEnv: Record<string, string> = {}) {
  writeFileSync(logPath, "");
  apiCalls.length = 0;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EYE_WRANGLER: FAKE,
    FAKE_WRANGLER_STATE: statePath,
    FAKE_WRANGLER_LOG: logPath,
    EYE_CLOUDFLARE_API: apiUrl,
    ...extraEnv,
  };
  if (!("CLOUDFLARE_ACCOUNT_ID" in extraEnv)) delete env.CLOUDFLARE_ACCOUNT_ID;
  delete env.CLOUDFLARE_API_TOKEN;
  // Asynchronous: the API stand-in answers from this process while the script runs.
  const child = spawn(process.execPath, [path.join(ROOT, "scripts/deploy.mjs"), ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c) => (output += c));
  child.stderr.on("data", (c) => (output += c));
  return new Promise<{ status: number | null; output: string; calls: string[][]; accountIds: (string | null)[] }>(
    (resolve) =>
      child.on("close", (status) => {
        const lines = readFileSync(logPath, "utf8").trim().split("\n").filter(Boolean);
        const logged = lines.map((l) => JSON.parse(l) as { args: string[]; accountId: string | null });
        resolve({ status, output, calls: logged.map((l) => l.args), accountIds: logged.map((l) => l.accountId) });
      }),
  );
}

const CREATING = (call: string[]) => call.includes("create");
const TWO_ACCOUNTS = [
  { id: "acc1", name: "one" },
  { id: "acc2", name: "two" },
];

describe("npm run deploy (production)", () => {
  it("on a fresh account creates the database, the queues with their retention and the bucket, then migrates, deploys and turns read replication on", async () => {
    writeFileSync(statePath, JSON.stringify(fresh()));
    const run = await deploy();
    expect(run.status, run.output).toBe(0);
    const p = ["--env", ""];
    expect(run.calls).toEqual([
      ["whoami", "--json"],
      ["d1", "info", "DB", ...p, "--json"],
      ["d1", "create", "the-eye", ...p],
      ["d1", "info", "DB", ...p, "--json"],
      ["queues", "info", "the-eye-events", ...p],
      ["queues", "create", "the-eye-events", "--message-retention-period-secs", RETENTION, ...p],
      ["queues", "info", "the-eye-events-dlq", ...p],
      ["queues", "create", "the-eye-events-dlq", "--message-retention-period-secs", RETENTION, ...p],
      ["r2", "bucket", "info", "the-eye-archive", ...p],
      ["r2", "bucket", "create", "the-eye-archive", ...p],
      ["d1", "migrations", "apply", "DB", "--remote", ...p],
      ["deploy", ...p],
      ["auth", "token", "--json"],
    ]);
    // The login's only account is the one every later command acts on.
    expect(run.accountIds.slice(1).every((id) => id === "acc1")).toBe(true);
    const { d1, queues, buckets } = account();
    expect(Object.keys(d1)).toEqual(["the-eye"]);
    expect(queues).toEqual({
      "the-eye-events": { retention: 1209600 },
      "the-eye-events-dlq": { retention: 1209600 },
    });
    expect(Object.keys(buckets)).toEqual(["the-eye-archive"]);
    expect(apiCalls).toEqual([
      {
        method: "PUT",
        url: `/client/v4/accounts/acc1/d1/database/${d1["the-eye"]!.uuid}`,
        auth: "Bearer fake-oauth-token",
        body: '{"read_replication":{"mode":"auto"}}',
      },
    ]);
    expect(d1["the-eye"]!.mode).toBe("auto");
  }, 60_000);

  it("run again (--env production names the top level too), creates nothing and repeats only what is idempotent", async () => {
    const before = account();
    const run = await deploy(["--env", "production"]);
    expect(run.status, run.output).toBe(0);
    const p = ["--env", ""];
    expect(run.calls).toEqual([
      ["whoami", "--json"],
      ["d1", "info", "DB", ...p, "--json"],
      ["queues", "info", "the-eye-events", ...p],
      ["queues", "update", "the-eye-events", "--message-retention-period-secs", RETENTION, ...p],
      ["queues", "info", "the-eye-events-dlq", ...p],
      ["queues", "update", "the-eye-events-dlq", "--message-retention-period-secs", RETENTION, ...p],
      ["r2", "bucket", "info", "the-eye-archive", ...p],
      ["d1", "migrations", "apply", "DB", "--remote", ...p],
      ["deploy", ...p],
    ]);
    expect(run.calls.filter(CREATING)).toEqual([]);
    expect(apiCalls).toEqual([]);
    expect(account()).toEqual(before);
  }, 60_000);
});

describe("npm run deploy -- --env staging", () => {
  it("creates and deploys staging's own resources beside production's, and none of production's", async () => {
    const production = account();
    const run = await deploy(["--env", "staging"]);
    expect(run.status, run.output).toBe(0);
    expect(run.calls.filter(CREATING)).toEqual([
      ["d1", "create", "the-eye-staging", "--env", "staging"],
      ["queues", "create", "the-eye-staging-events", "--message-retention-period-secs", RETENTION, "--env", "staging"],
      [
        "queues",
        "create",
        "the-eye-staging-events-dlq",
        "--message-retention-period-secs",
        RETENTION,
        "--env",
        "staging",
      ],
      ["r2", "bucket", "create", "the-eye-staging-archive", "--env", "staging"],
    ]);
    // Every call names staging (whoami and auth token act on no environment).
    const namesStaging = (call: string[]) => call.some((arg, i) => arg === "--env" && call[i + 1] === "staging");
    expect(run.calls.filter((c) => c[0] !== "whoami" && c[0] !== "auth" && !namesStaging(c))).toEqual([]);
    expect(run.calls).toContainEqual(["d1", "migrations", "apply", "DB", "--remote", "--env", "staging"]);
    expect(run.calls).toContainEqual(["deploy", "--env", "staging"]);
    const after = account();
    expect(after.d1["the-eye"]).toEqual(production.d1["the-eye"]);
    expect(after.d1["the-eye-staging"]?.mode).toBe("auto");
    expect(apiCalls.map((c) => c.url)).toEqual([
      `/client/v4/accounts/acc1/d1/database/${after.d1["the-eye-staging"]!.uuid}`,
    ]);

    const again = await deploy(["--env", "staging"]);
    expect(again.status, again.output).toBe(0);
    expect(again.calls.filter(CREATING)).toEqual([]);
  }, 60_000);
});

describe("npm run deploy refuses, saying what to do", () => {
  it("when nobody is logged in: no other call", async () => {
    writeFileSync(statePath, JSON.stringify(fresh({ loggedIn: false })));
    const run = await deploy();
    expect(run.status).toBe(1);
    expect(run.output).toContain("npx wrangler login");
    expect(run.calls).toEqual([["whoami", "--json"]]);
  }, 60_000);

  it("when the login reaches several accounts and CLOUDFLARE_ACCOUNT_ID chooses none", async () => {
    writeFileSync(statePath, JSON.stringify(fresh({ accounts: TWO_ACCOUNTS })));
    const refused = await deploy();
    expect(refused.status).toBe(1);
    expect(refused.output).toContain("CLOUDFLARE_ACCOUNT_ID=<id>");
    expect(refused.calls).toEqual([["whoami", "--json"]]);
  }, 60_000);

  it("an environment wrangler.toml does not have, or an argument it does not know (staging without --env)", async () => {
    writeFileSync(statePath, JSON.stringify(fresh()));
    const run = await deploy(["--env", "qa"]);
    expect(run.status).toBe(1);
    expect(run.output).toMatch(/qa/);
    expect(run.calls).toEqual([]);
    const bare = await deploy(["staging"]);
    expect(bare.status).toBe(1);
    expect(bare.output).toContain('unknown argument "staging"');
    expect(bare.calls).toEqual([]);
  }, 60_000);
});

it("on Workers Free (no 14-day retention) creates the queues with the plan's 24 h, and says so", async () => {
  // Also: of several accounts, the one CLOUDFLARE_ACCOUNT_ID names is the one acted on.
  writeFileSync(statePath, JSON.stringify(fresh({ freePlan: true, accounts: TWO_ACCOUNTS })));
  const run = await deploy([], { CLOUDFLARE_ACCOUNT_ID: "acc2" });
  expect(run.status, run.output).toBe(0);
  expect(run.accountIds.slice(1).every((id) => id === "acc2")).toBe(true);
  expect(run.calls).toContainEqual(["queues", "create", "the-eye-events", "--env", ""]);
  expect(account().queues["the-eye-events"]).toEqual({ retention: 86400 });
  expect(run.output).toMatch(/keeps a message 24 h/);

  const again = await deploy([], { CLOUDFLARE_ACCOUNT_ID: "acc2" });
  expect(again.status, again.output).toBe(0);
  expect(again.calls.filter(CREATING)).toEqual([]);
  expect(again.output).toMatch(/keeps a message 24 h/);
}, 60_000);
