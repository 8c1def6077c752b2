#!/usr/bin/env node
// Operator CLI for applications and keys. It runs `wrangler d1 execute` against the local
// database (default) or a deployed environment's (--env production|staging; --remote: production),
// so it needs no admin endpoint on the Worker.
// Keys are generated here, printed once, and only their SHA-256 is stored.
import { createHash, randomBytes } from "node:crypto";
import { d1, flag as flagOf, now, quote, run } from "./d1.mjs";

const USAGE = `usage: npm run keys -- <command> [--env production|staging]
  create-app <name> [--origins https://a.example,https://b.example]
                               new application and its first write key
  create-write-key <app_id>    another write key for an application (rotation)
  create-read-key [<app_id>]   a read key for one application, or for all when omitted
  set-origins <app_id> [origins]
                               origins allowed to send with the app's write keys (none = any)
  set-context <app_id> on|country|off
                               context stored with its events: all of it (on, the default), location
                               coarsened to the country (country), or none (off); effective within 60 s
  list                         applications and keys (never the keys themselves)
  revoke <key_id>              stops the key; effective within 60 s (the Worker's key cache TTL)
where: the local database (default); --env production or --env staging: that deployed environment's
(--remote alone: production)`;

const flag = (name) => flagOf(process.argv.slice(2), name);
const id = (prefix) => `${prefix}_${randomBytes(8).toString("hex")}`;

function origins(list) {
  const values = (list ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  for (const o of values) {
    if (new URL(o).origin !== o) throw new Error(`not an origin (scheme://host[:port]): ${o}`);
  }
  return JSON.stringify(values);
}

function newKey(kind, appId) {
  const key = `eye_${kind === "write" ? "w" : "r"}_${randomBytes(32).toString("base64url")}`;
  const hash = createHash("sha256").update(key).digest("hex");
  const keyId = id("key");
  d1(
    `INSERT INTO api_keys (id, hash, kind, app_id, prefix, created_at) VALUES ` +
      `(${quote(keyId)}, ${quote(hash)}, ${quote(kind)}, ${appId ? quote(appId) : "NULL"}, ${quote(key.slice(0, 10))}, ${now()})`,
  );
  console.log(
    `${kind} key ${keyId}${appId ? ` for ${appId}` : " for all applications"}:\n  ${key}\n(shown once: store it now)`,
  );
}

function requireApp(appId) {
  if (!appId) throw new Error("an application id is required");
  if (d1(`SELECT id FROM applications WHERE id = ${quote(appId)}`).length === 0)
    throw new Error(`no application ${appId}`);
}

const commands = {
  "create-app"([name]) {
    if (!name) throw new Error("a name is required");
    const appId = id("app");
    d1(
      `INSERT INTO applications (id, name, allowed_origins, created_at) VALUES (${quote(appId)}, ${quote(name)}, ${quote(origins(flag("--origins")))}, ${now()})`,
    );
    console.log(`application ${appId} (${name})`);
    newKey("write", appId);
  },
  "create-write-key"([appId]) {
    requireApp(appId);
    newKey("write", appId);
  },
  "create-read-key"([appId]) {
    if (appId) requireApp(appId);
    newKey("read", appId);
  },
  "set-origins"([appId, list]) {
    requireApp(appId);
    d1(`UPDATE applications SET allowed_origins = ${quote(origins(list))} WHERE id = ${quote(appId)}`);
    console.log(`origins of ${appId}: ${origins(list)}`);
  },
  "set-context"([appId, mode]) {
    requireApp(appId);
    if (!["on", "country", "off"].includes(mode)) throw new Error("the context mode must be on, country or off");
    d1(`UPDATE applications SET context = ${quote(mode)} WHERE id = ${quote(appId)}`);
    console.log(
      `context of ${appId}: ${mode}; the Worker applies it within 60 s (the key cache's TTL), to events sent from then on`,
    );
  },
  list() {
    console.table(d1("SELECT id, name, allowed_origins, context, created_at FROM applications ORDER BY created_at"));
    console.table(d1("SELECT id, kind, app_id, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at"));
  },
  revoke([keyId]) {
    const rows = d1(
      `UPDATE api_keys SET revoked_at = ${now()} WHERE id = ${quote(keyId)} AND revoked_at IS NULL RETURNING id`,
    );
    if (rows.length === 0) throw new Error(`no active key ${keyId}`);
    console.log(`revoked ${keyId}; the Worker stops accepting it within 60 s`);
  },
};

await run(commands, USAGE, ["--origins"]);
