// A stand-in for wrangler (EYE_WRANGLER) that records each call and answers like the real one (4.156)
// for an account held in a JSON file: a fresh account has nothing, and what a call creates is there
// on the next. Only what scripts/deploy.mjs and scripts/d1.mjs run is known; anything else fails.
//   FAKE_WRANGLER_STATE  the account: { loggedIn, accounts, freePlan, databases: { "<--env>": name },
//                        d1: { name: { uuid, mode } }, queues: { name: { retention } }, buckets: { name: {} } }
//   FAKE_WRANGLER_LOG    one JSON line per call: { args, accountId }
import { randomUUID } from "node:crypto";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";

const args = process.argv.slice(2);
const statePath = process.env.FAKE_WRANGLER_STATE;
const state = JSON.parse(readFileSync(statePath, "utf8"));
appendFileSync(
  process.env.FAKE_WRANGLER_LOG,
  `${JSON.stringify({ args, accountId: process.env.CLOUDFLARE_ACCOUNT_ID ?? null })}\n`,
);

const save = () => writeFileSync(statePath, JSON.stringify(state, null, 2));
const flagValue = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const env = flagValue("--env") ?? "";
const apiError = (path, message, code) =>
  fail(
    `✘ [ERROR] A request to the Cloudflare API (/accounts/${state.accounts[0]?.id}${path}) failed.\n\n  ${message} [code: ${code}]\n`,
  );
function fail(text) {
  process.stderr.write(`\n${text}\n`);
  process.exit(1);
}
function out(text) {
  process.stdout.write(`${text}\n`);
  process.exit(0);
}

const [a, b, c, d] = args;
if (a === "whoami") {
  if (!state.loggedIn) {
    process.stdout.write('\n{"loggedIn":false}\n');
    process.exit(1);
  }
  out(
    JSON.stringify({
      loggedIn: true,
      authType: "OAuth Token",
      email: "ops@example.com",
      accounts: state.accounts,
      tokenPermissions: [],
    }),
  );
}
if (!state.loggedIn) fail("✘ [ERROR] In a non-interactive environment, it's necessary to set a CLOUDFLARE_API_TOKEN");

const database = () => {
  const name = state.databases[env];
  if (!name) fail(`✘ [ERROR] No environment found in configuration with name "${env}".`);
  const db = state.d1[name];
  if (!db)
    fail(
      `✘ [ERROR] Couldn't find a D1 DB named '${name}' (bound as 'DB') in the API. Run 'wrangler d1 create ${name}' to create it.`,
    );
  return { name, db };
};

if (a === "d1" && b === "info") {
  const { name, db } = database();
  out(
    `\n${JSON.stringify({ uuid: db.uuid, name, created_at: "2026-12-01T00:00:00Z", num_tables: 0, running_in_region: "WEUR", read_replication: { mode: db.mode } }, null, 2)}`,
  );
}
if (a === "d1" && b === "create") {
  if (state.d1[c]) apiError("/d1/database", "A database with that name already exists", 7502);
  state.d1[c] = { uuid: randomUUID(), mode: "disabled" };
  save();
  out(`✅ Successfully created DB '${c}'`);
}
if (a === "d1" && b === "migrations" && c === "apply") {
  database();
  out("✅ No migrations to apply!");
}
if (a === "d1" && b === "execute") {
  // A row for a lookup by id or an INSERT … RETURNING (what the CLIs check and print), none for a listing.
  const sql = flagValue("--command") ?? "";
  const rows = /WHERE id =|RETURNING/i.test(sql) ? [{ id: 1 }] : [];
  out(JSON.stringify([{ results: rows, success: true, meta: {} }]));
}

if (a === "queues") {
  const retention = flagValue("--message-retention-period-secs");
  const refused = () => apiError("/queues", "The specified queue settings are invalid.", 100128);
  if (b === "info") {
    if (!state.queues[c]) fail(`✘ [ERROR] Queue "${c}" does not exist. To create it, run: wrangler queues create ${c}`);
    out(`Queue Name: ${c}\nQueue ID: ${c}-id\nNumber of Producers: 0\nNumber of Consumers: 0`);
  }
  if (b === "create") {
    if (state.queues[c]) apiError("/queues", "A queue with this name already exists", 11009);
    if (state.freePlan && retention !== undefined && Number(retention) > 86400) refused();
    state.queues[c] = { retention: Number(retention ?? (state.freePlan ? 86400 : 345600)) };
    save();
    out(`✅ Created queue ${c}.`);
  }
  if (b === "update") {
    if (!state.queues[c]) fail(`✘ [ERROR] Queue "${c}" does not exist. To create it, run: wrangler queues create ${c}`);
    if (state.freePlan && retention !== undefined) refused();
    if (retention !== undefined) state.queues[c].retention = Number(retention);
    save();
    out(`✅ Updated queue ${c}.`);
  }
}

if (a === "r2" && b === "bucket") {
  if (state.r2Disabled) apiError("/r2/buckets", "Please enable R2 through the Cloudflare Dashboard.", 10042);
  if (c === "info") {
    if (!state.buckets[d]) apiError(`/r2/buckets/${d}`, "The specified bucket does not exist.", 10006);
    out(`name: ${d}\ncreated: 2026-12-01T00:00:00.000Z\nlocation: WEUR`);
  }
  if (c === "create") {
    if (state.buckets[d]) apiError("/r2/buckets", "The bucket you tried to create already exists.", 10004);
    state.buckets[d] = {};
    save();
    out(`✅ Created bucket '${d}' with default storage class of Standard.`);
  }
}

if (a === "deploy") out(`Uploaded ${env ? `the-eye-${env}` : "the-eye"}\nDeployed triggers`);
if (a === "auth" && b === "token") out(JSON.stringify({ type: "oauth", token: "fake-oauth-token" }));

fail(`fake wrangler: unknown command ${JSON.stringify(args)}`);
