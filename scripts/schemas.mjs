#!/usr/bin/env node
// Operator CLI for payload schemas: one JSON Schema per event type (category, name), for every
// application or for one. A schema is checked here before it is stored (payload-schema-rules.ts):
// the Worker only compiles what this CLI let through.
import { readFileSync } from "node:fs";
import { d1, flag, now, quote, run, target } from "./d1.mjs";
import { MAX_SCHEMA_BYTES, schemaProblems } from "./payload-schema-rules.ts";

const USAGE = `usage: npm run schemas -- <command> [--app <app_id>] [--env production|staging]
  set <category> <name> <file|->   register or replace the type's schema (- reads stdin); with --app,
                                   for that application only (it takes precedence over the one for all)
  check <file|->                   check a schema without storing it
  list                             registered schemas (type, application, size, when)
  show <category> <name>           print one schema
  delete <category> <name>         remove one; its events are no longer checked
Changes take effect within PAYLOAD_SCHEMA_CACHE_SECONDS (60 s by default) in each Worker isolate.
where: the local database (default); --env production or --env staging: that deployed environment's
(--remote alone: production)`;

const appOf = (args) => flag(args, "--app") ?? "";
const where = (category, name, app) =>
  `category = ${quote(category)} AND name = ${quote(name)} AND app_id = ${quote(app)}`;
const label = (category, name, app) => `${category}/${name} (${app ? `application ${app}` : "every application"})`;

function readSchema(path) {
  if (!path) throw new Error("a schema file (or - for stdin) is required");
  const text = readFileSync(path === "-" ? 0 : path, "utf8");
  const problems = schemaProblems(text);
  if (problems.length > 0) throw new Error(`the schema is refused:\n  ${problems.join("\n  ")}`);
  // Stored compact: the Worker parses it on every cache fill.
  return JSON.stringify(JSON.parse(text));
}

function requireType(category, name) {
  for (const [what, value] of [
    ["category", category],
    ["name", name],
  ]) {
    if (!value || value.length > 150) throw new Error(`${what} must be 1–150 characters`);
  }
}

await run(
  {
    set([category, name, path], args) {
      requireType(category, name);
      const app = appOf(args);
      if (app && d1(`SELECT id FROM applications WHERE id = ${quote(app)}`).length === 0)
        throw new Error(`no application ${app}`);
      const schema = readSchema(path);
      d1(
        `INSERT INTO payload_schemas (category, name, app_id, schema, updated_at) VALUES (${quote(category)}, ${quote(name)}, ${quote(app)}, ${quote(schema)}, ${now()}) ` +
          `ON CONFLICT (category, name, app_id) DO UPDATE SET schema = excluded.schema, updated_at = excluded.updated_at`,
      );
      console.log(`schema of ${label(category, name, app)} stored (${target.label}); in effect within 60 s`);
    },
    check([path]) {
      readSchema(path);
      console.log(`the schema can be registered (≤ ${MAX_SCHEMA_BYTES} bytes, every rule checked)`);
    },
    list(_, args) {
      const app = flag(args, "--app");
      console.table(
        d1(
          `SELECT category, name, CASE app_id WHEN '' THEN '(all)' ELSE app_id END AS application, length(schema) AS bytes, ` +
            `datetime(updated_at / 1000000, 'unixepoch') AS updated FROM payload_schemas` +
            (app !== undefined ? ` WHERE app_id IN ('', ${quote(app)})` : "") +
            " ORDER BY category, name, app_id",
        ),
      );
    },
    show([category, name], args) {
      requireType(category, name);
      const [row] = d1(`SELECT schema FROM payload_schemas WHERE ${where(category, name, appOf(args))}`);
      if (!row) throw new Error(`no schema for ${label(category, name, appOf(args))}`);
      console.log(JSON.stringify(JSON.parse(row.schema), null, 2));
    },
    delete([category, name], args) {
      requireType(category, name);
      const rows = d1(`DELETE FROM payload_schemas WHERE ${where(category, name, appOf(args))} RETURNING category`);
      if (rows.length === 0) throw new Error(`no schema for ${label(category, name, appOf(args))}`);
      console.log(`schema of ${label(category, name, appOf(args))} deleted; its events pass unchecked within 60 s`);
    },
  },
  USAGE,
  ["--app"],
);
