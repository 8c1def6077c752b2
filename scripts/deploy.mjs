#!/usr/bin/env node
// `npm run deploy [-- --env staging] [--location weur]`: one environment of The Eye from nothing to
// running, and safe to run again. It looks up every resource wrangler.toml names for the environment
// and creates only what is missing — the D1 database, the queues (with their retention), the R2
// bucket — then applies the migrations, deploys the Worker (its consumers, cron and observability come
// with it) with the secrets of .secrets/<env>.env if that file exists, and turns D1 read replication
// on where the API allows (otherwise it prints the one command that does). Nothing is written back to
// wrangler.toml: each resource is found by its name. docs/deploy.md says what each step does.
import { existsSync } from "node:fs";
import path from "node:path";
import { configOf, envFlag, envOf, jsonOf, PRODUCTION, ROOT, wrangler } from "./wrangler.mjs";

const USAGE = `usage: npm run deploy [-- --env production|staging] [--location weur|eeur|apac|oc|wnam|enam]
  --env       the environment of wrangler.toml to deploy (default: production, the top level)
  --location  where a database or bucket this run creates is placed (a hint; ignored for existing ones)
Logged in first: \`npx wrangler login\`, or CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID) in CI.`;

/** 14 days, the longest a queue keeps a message (Workers Paid): how long an event waits for a consumer that does not run. */
const RETENTION_SECONDS = 14 * 24 * 3600;
const LOCATIONS = ["weur", "eeur", "apac", "oc", "wnam", "enam"];
const API = process.env.EYE_CLOUDFLARE_API ?? "https://api.cloudflare.com/client/v4";

const step = (what) => console.log(`\n▸ ${what}`);
const note = (what) => console.log(`  ${what}`);
const warnings = [];
const warn = (what) => {
  warnings.push(what);
  console.warn(`  ⚠ ${what}`);
};

class Refusal extends Error {}

/** wrangler's own error text (its stderr, else its stdout), trimmed for a message. */
const errorOf = (r) => (r.stderr.trim() || r.stdout.trim()).split("\n").slice(0, 12).join("\n");

function main(args) {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return;
  }
  // Anything else is refused rather than ignored: `npm run deploy staging` must not deploy production.
  const valued = ["--env", "--location"];
  const unknown = args.find((a, i) => !valued.includes(a) && !a.startsWith("--env=") && !valued.includes(args[i - 1]));
  if (unknown !== undefined) throw new Refusal(`unknown argument ${JSON.stringify(unknown)}\n${USAGE}`);
  let env;
  try {
    env = envOf(args) ?? PRODUCTION;
  } catch (err) {
    throw new Refusal(err.message);
  }
  const location = valueAfter(args, "--location");
  if (location !== undefined && !LOCATIONS.includes(location))
    throw new Refusal(`--location must be one of ${LOCATIONS.join(", ")}`);
  return deploy(env, location);
}

function valueAfter(args, name) {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith("-")) throw new Refusal(`${name} needs a value`);
  return value;
}

async function deploy(env, location) {
  const config = await configOf(env).catch((err) => {
    throw new Refusal(err.message);
  });
  const e = ["--env", envFlag(env)];
  console.log(`Deploying The Eye's ${env} environment: Worker ${config.name}`);

  step("Cloudflare account");
  const childEnv = { ...process.env, ...account(config) };
  const run = (args, options) => wrangler(args, { env: childEnv, ...options });

  const db = config.d1_databases.find((d) => d.binding === "DB");
  if (!db?.database_name) throw new Refusal(`wrangler.toml declares no D1 binding DB with a database_name for ${env}`);
  step(`D1 database ${db.database_name}`);
  let info = databaseInfo(run, e);
  if (!info) {
    const created = run(["d1", "create", db.database_name, ...(location ? ["--location", location] : []), ...e]);
    if (created.status !== 0)
      throw new Refusal(`creating D1 database ${db.database_name} failed:\n${errorOf(created)}`);
    info = databaseInfo(run, e);
    if (!info) throw new Refusal(`D1 database ${db.database_name} was created but cannot be found by its name`);
    note(`created (${info.uuid})`);
  } else {
    note(`exists (${info.uuid})`);
  }

  const queues = [
    ...new Set([...(config.queues.producers ?? []), ...(config.queues.consumers ?? [])].map((q) => q.queue)),
  ];
  for (const queue of queues) {
    step(`Queue ${queue}`);
    ensureQueue(run, queue, e);
  }

  for (const { bucket_name: bucket } of config.r2_buckets) {
    step(`R2 bucket ${bucket}`);
    ensureBucket(run, bucket, location, e);
  }

  step("Migrations");
  // stdin closed: wrangler takes its default answer (apply) instead of asking.
  const migrated = run(["d1", "migrations", "apply", "DB", "--remote", ...e], { inherit: true });
  if (migrated.status !== 0) throw new Refusal("the migrations failed (above); nothing was deployed");

  step(`Worker ${config.name}`);
  const secrets = path.join(ROOT, ".secrets", `${env}.env`);
  const withSecrets = existsSync(secrets) ? ["--secrets-file", secrets] : [];
  note(
    withSecrets.length > 0
      ? `with the secrets of ${path.relative(ROOT, secrets)}`
      : `no ${path.relative(ROOT, secrets)}: secrets stay as they are (wrangler secret put SENTRY_DSN${env === PRODUCTION ? ' --env ""' : ` --env ${env}`})`,
  );
  // Interactive when the terminal is: a first deploy on a new account asks for a workers.dev subdomain.
  const deployed = run(["deploy", ...e, ...withSecrets], { inherit: true, interactive: true });
  if (deployed.status !== 0) throw new Refusal("wrangler deploy failed (above)");

  step("D1 read replication");
  await readReplication(run, info, childEnv);

  console.log(`\nDone: ${env} is deployed${warnings.length > 0 ? `, with ${warnings.length} warning(s):` : "."}`);
  for (const w of warnings) console.log(`  ⚠ ${w}`);
  console.log(
    `First time? An application and its write key: npm run keys -- create-app "My site" --origins https://my.site --env ${env}`,
  );
}

/**
 * Who runs this, and on which account: wrangler's login (or CLOUDFLARE_API_TOKEN). The account is
 * CLOUDFLARE_ACCOUNT_ID, or wrangler.toml's account_id, or the login's only account; with several,
 * the operator chooses. Returns what the other commands need in their environment.
 */
function account(config) {
  const r = wrangler(["whoami", "--json"]);
  let who;
  try {
    who = jsonOf(r.stdout);
  } catch {
    who = { loggedIn: false };
  }
  if (r.status !== 0 || !who.loggedIn)
    throw new Refusal(
      "not logged in to Cloudflare: run `npx wrangler login` (in CI: set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID)",
    );
  const accounts = who.accounts ?? [];
  const id =
    process.env.CLOUDFLARE_ACCOUNT_ID ??
    config.account_id ??
    (accounts.length === 1 ? accounts[0].id : undefined) ??
    (() => {
      throw new Refusal(
        accounts.length === 0
          ? "the login lists no account: set CLOUDFLARE_ACCOUNT_ID"
          : `the login reaches ${accounts.length} accounts: choose one with CLOUDFLARE_ACCOUNT_ID=<id>\n${accounts.map((a) => `  ${a.id}  ${a.name}`).join("\n")}`,
      );
    })();
  const name = accounts.find((a) => a.id === id)?.name;
  note(`${who.email ?? who.authType ?? "logged in"}, account ${id}${name ? ` (${name})` : ""}`);
  return { CLOUDFLARE_ACCOUNT_ID: id };
}

/** The environment's database as `wrangler d1 info` reports it, or undefined when none has its name. */
function databaseInfo(run, e) {
  const r = run(["d1", "info", "DB", ...e, "--json"]);
  if (r.status === 0) return jsonOf(r.stdout);
  if (/Couldn't find a D1 DB/i.test(r.stderr + r.stdout)) return undefined;
  throw new Refusal(`looking up the D1 database failed:\n${errorOf(r)}`);
}

/** Retention a queue setting may not take on Workers Free (fixed at 24 h there). */
const SETTINGS_REFUSED = /100128|queue settings are invalid/i;

function ensureQueue(run, queue, e) {
  const retention = ["--message-retention-period-secs", String(RETENTION_SECONDS)];
  const info = run(["queues", "info", queue, ...e]);
  if (info.status !== 0 && !/does not exist/i.test(info.stderr + info.stdout))
    throw new Refusal(`looking up queue ${queue} failed:\n${errorOf(info)}`);
  const exists = info.status === 0;
  const r = run(
    exists ? ["queues", "update", queue, ...retention, ...e] : ["queues", "create", queue, ...retention, ...e],
  );
  if (r.status === 0) {
    note(`${exists ? "exists" : "created"}; keeps a message ${RETENTION_SECONDS / 86400} days`);
    return;
  }
  if (!SETTINGS_REFUSED.test(r.stderr + r.stdout))
    throw new Refusal(`${exists ? "updating" : "creating"} queue ${queue} failed:\n${errorOf(r)}`);
  // Workers Free: retention is fixed at 24 h, and a queue is created without the setting.
  if (!exists) {
    const plain = run(["queues", "create", queue, ...e]);
    if (plain.status !== 0) throw new Refusal(`creating queue ${queue} failed:\n${errorOf(plain)}`);
  }
  note(exists ? "exists" : "created");
  warn(
    `queue ${queue} keeps a message 24 h, not ${RETENTION_SECONDS / 86400} days: the account refused the longer retention (Workers Free?)`,
  );
}

function ensureBucket(run, bucket, location, e) {
  const info = run(["r2", "bucket", "info", bucket, ...e]);
  if (info.status === 0) {
    note("exists");
    return;
  }
  const text = info.stderr + info.stdout;
  if (/10042|enable R2/i.test(text))
    throw new Refusal(
      "R2 is not enabled on this account: enable it once in the dashboard (R2 Object Storage), then run this again",
    );
  if (!/10006|bucket does not exist/i.test(text))
    throw new Refusal(`looking up bucket ${bucket} failed:\n${errorOf(info)}`);
  const r = run(["r2", "bucket", "create", bucket, ...(location ? ["--location", location] : []), ...e]);
  if (r.status !== 0) throw new Refusal(`creating bucket ${bucket} failed:\n${errorOf(r)}`);
  note("created");
}

/**
 * D1 read replication has no wrangler command: it is one call to the REST API with the login's
 * token. When that cannot be made, the command to run by hand is printed instead.
 */
async function readReplication(run, info, childEnv) {
  if (info.read_replication?.mode === "auto") {
    note("on (auto)");
    return;
  }
  const url = `${API}/accounts/${childEnv.CLOUDFLARE_ACCOUNT_ID}/d1/database/${info.uuid}`;
  const body = JSON.stringify({ read_replication: { mode: "auto" } });
  const byHand = `curl -X PUT "${url}" -H "Authorization: Bearer $CLOUDFLARE_API_TOKEN" -H "Content-Type: application/json" --data '${body}'`;
  const headers = authHeaders(run);
  if (!headers) {
    warn(`read replication is off; turn it on with an API token that may edit D1 (D1:Edit):\n    ${byHand}`);
    return;
  }
  try {
    const res = await fetch(url, { method: "PUT", headers: { ...headers, "Content-Type": "application/json" }, body });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok || answer.success === false)
      throw new Error(`${res.status} ${JSON.stringify(answer.errors ?? answer).slice(0, 300)}`);
    note(`turned on (auto): reads go to the replica nearest each request`);
  } catch (err) {
    warn(
      `read replication is off (${err.message}); turn it on with an API token that may edit D1 (D1:Edit):\n    ${byHand}`,
    );
  }
}

/** The login's credentials as API headers: CLOUDFLARE_API_TOKEN, else what `wrangler auth token` gives. */
function authHeaders(run) {
  if (process.env.CLOUDFLARE_API_TOKEN) return { Authorization: `Bearer ${process.env.CLOUDFLARE_API_TOKEN}` };
  const r = run(["auth", "token", "--json"]);
  if (r.status !== 0) return undefined;
  try {
    const auth = jsonOf(r.stdout);
    if (auth.token) return { Authorization: `Bearer ${auth.token}` };
    if (auth.key && auth.email) return { "X-Auth-Key": auth.key, "X-Auth-Email": auth.email };
  } catch {}
  return undefined;
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  // A refusal says what to do; anything else is a bug, shown whole.
  console.error(`\n✘ ${err instanceof Refusal ? err.message : (err?.stack ?? err)}`);
  process.exit(1);
}
