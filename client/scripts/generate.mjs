// Writes src/generated/server.ts from the server's own code: the zod schemas of src/schemas.ts
// (through zod's z.toJSONSchema, input side: what goes on the wire) and the limits that
// src/config.ts reads from wrangler.toml's [vars]. Nothing in it is copied by hand.
//   node scripts/generate.mjs           rewrite the file
//   node scripts/generate.mjs --check   exit 1 when the file is not what the server's code gives
// Needs the repository's own install (npm ci at the root): the server's zod, and wrangler's
// reader of wrangler.toml, come from there.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const clientDir = path.resolve(here, "..");
const serverDir = path.resolve(clientDir, "..");
export const OUTPUT = path.join(clientDir, "src/generated/server.ts");

/**
 * What each z.custom of the server's schemas accepts. JSON Schema cannot describe a custom
 * check (zod emits `{}` for it), so it is said here, by path, and test/generated.test.ts proves
 * each entry against the server's own validator. A new custom without an entry stops the build.
 */
const CUSTOM = {
  "eventInput/properties/data": { type: "object", additionalProperties: {} },
};

/** The server's schemas, config and zod, bundled from the server's sources and imported. */
export async function loadServer() {
  const entry = [
    'export { eventContext, eventInput, eventQuery, queueMessage, MAX_LIMIT } from "./src/schemas.ts";',
    'export { limitsFrom } from "./src/config.ts";',
    'export { toJSONSchema } from "zod/mini";',
  ].join("\n");
  const out = await build({
    stdin: { contents: entry, resolveDir: serverDir, loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
    logLevel: "error",
  });
  // Fully bundled (zod included), so it imports from anywhere; a file keeps stack traces readable.
  const file = path.join(mkdtempSync(path.join(tmpdir(), "eye-client-generate-")), "server.mjs");
  writeFileSync(file, out.outputFiles[0].text);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

/** wrangler.toml's [vars], read by the repository's own wrangler. */
async function serverVars() {
  const require = createRequire(path.join(serverDir, "package.json"));
  const wrangler = await import(pathToFileURL(require.resolve("wrangler")).href);
  return wrangler.unstable_readConfig({ config: path.join(serverDir, "wrangler.toml") }).vars;
}

function jsonSchemaOf(server, name, schema) {
  return server.toJSONSchema(schema, {
    io: "input",
    // A custom check has no JSON Schema ("any" gives `{}` for it, and the override below fills it
    // in); anything else that comes out empty is refused by tsType rather than typed `unknown`.
    unrepresentable: "any",
    override(ctx) {
      if (ctx.zodSchema._zod.def.type !== "custom") return;
      const at = [name, ...ctx.path].join("/");
      const known = CUSTOM[at];
      if (!known) throw new Error(`${at} is a z.custom in the server's schema: say what it accepts in CUSTOM (scripts/generate.mjs)`);
      Object.assign(ctx.jsonSchema, known);
    },
  });
}

/** The schema's description and the constraints a TypeScript type cannot say, as a doc comment line. */
function constraints(s) {
  const parts = s.description ? [s.description] : [];
  for (const key of ["pattern", "minLength", "maxLength", "format"]) if (s[key] !== undefined) parts.push(`${key}: ${s[key]}`);
  return parts.join(", ").replaceAll("*/", "*\\/");
}

/** A JSON Schema (the subset zod emits for these schemas) as a TypeScript type. */
function tsType(s, indent) {
  if (s.anyOf) return s.anyOf.map((x) => tsType(x, indent)).join(" | ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (Array.isArray(s.type)) return s.type.map((t) => tsType({ ...s, type: t }, indent)).join(" | ");
  switch (s.type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array":
      return `Array<${tsType(s.items ?? {}, indent)}>`;
    case "object": {
      if (!s.properties) {
        const values = s.additionalProperties;
        return `{ [key: string]: ${values && Object.keys(values).length > 0 ? tsType(values, indent) : "unknown"} }`;
      }
      return `{\n${members(s, indent + "  ")}${indent}}`;
    }
  }
  throw new Error(`no TypeScript type for the JSON Schema ${JSON.stringify(s)}`);
}

function members(s, indent) {
  const required = new Set(s.required ?? []);
  let text = "";
  for (const [key, value] of Object.entries(s.properties)) {
    const note = constraints({ description: value.description, ...(value.anyOf?.find((x) => x.type === "string") ?? value) });
    if (note) text += `${indent}/** ${note} */\n`;
    text += `${indent}${key}${required.has(key) ? "" : "?"}: ${tsType(value, indent)};\n`;
  }
  return text;
}

const iface = (doc, name, schema) => `/** ${doc} */\nexport interface ${name} {\n${members(schema, "  ")}}\n`;

export async function generate() {
  const server = await loadServer();
  const vars = await serverVars();
  const limits = server.limitsFrom(vars);
  const invalid = server.queueMessage.def.options.find((o) => o.shape.kind.def.values.includes("invalid"));
  const reason = invalid.shape.items.def.element.shape.reasons.def.element;
  const sections = [
    "// Generated by client/scripts/generate.mjs from the server's own code. Do not edit: run",
    "// `npm run generate --prefix client`. test/generated.test.ts fails when this drifts from the server.",
    "// Types: src/schemas.ts through z.toJSONSchema (input side). Limits: src/config.ts over wrangler.toml [vars].",
    "",
    iface("An event as POST /api/event/ takes it (src/schemas.ts `eventInput`).", "EventInput", jsonSchemaOf(server, "eventInput", server.eventInput)),
    iface("The query string of GET /api/event/, every value a string (src/schemas.ts `eventQuery`).", "EventQuery", jsonSchemaOf(server, "eventQuery", server.eventQuery)),
    iface(
      "Where and on what a stored event happened, as the Worker saw its request (src/schemas.ts `eventContext`): a stored event's `context`.",
      "EventContext",
      jsonSchemaOf(server, "eventContext", server.eventContext),
    ),
    iface(
      "Why an event was refused: an item of the `errors` of a 202 or 400 (src/schemas.ts, the reasons a queue message carries to the error log).",
      "FieldError",
      jsonSchemaOf(server, "reason", reason),
    ),
    "/** The server's limits as deployed from this repository. */",
    "export const SERVER_LIMITS = {",
    "  /** Events in one POST (MAX_EVENTS_PER_REQUEST). */",
    `  maxEventsPerRequest: ${limits.maxEventsPerRequest},`,
    "  /** Bytes of one POST body, also once inflated (MAX_BODY_BYTES). */",
    `  maxBodyBytes: ${limits.maxBodyBytes},`,
    "  /** Bytes of one event's `data`, serialized as JSON (MAX_DATA_BYTES). */",
    `  maxDataBytes: ${limits.maxDataBytes},`,
    "  /** Largest `limit` of a GET page (MAX_LIMIT). */",
    `  maxPageSize: ${server.MAX_LIMIT},`,
    "} as const;",
    "",
  ];
  return sections.join("\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = await generate();
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(OUTPUT, "utf8");
    } catch {}
    if (current !== text) {
      console.error(`${path.relative(process.cwd(), OUTPUT)} is not what the server's schemas give: run npm run generate --prefix client`);
      process.exit(1);
    }
  } else {
    writeFileSync(OUTPUT, text);
    console.log(`wrote ${path.relative(process.cwd(), OUTPUT)}`);
  }
}
