// Writes src/generated/server.ts from the server's own code: its zod schemas (src/shared/schemas.ts,
// and the responses of src/openapi/responses.ts) through the converter that writes the OpenAPI
// document (src/openapi/json-schema.ts: input side, what goes on the wire, with the annotations
// JSON Schema cannot read from a schema), and the limits that src/shared/config.ts reads from
// wrangler.toml's [vars]. Nothing in it is copied by hand.
//   node scripts/generate.mjs           rewrite the file
//   node scripts/generate.mjs --check   exit 1 when the file is not what the server's code gives
// Needs the repository's own install (npm ci at the root): the server's zod, and wrangler's
// reader of wrangler.toml, come from there.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { importBundled, wranglerVars, writeOrCheck } from "../../scripts/load-source.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const clientDir = path.resolve(here, "..");
export const OUTPUT = path.join(clientDir, "src/generated/server.ts");

/** The server's schemas, its converter and its limits, bundled from the server's sources and imported. */
export function loadServer() {
  const entry = [
    'export { eventContext, eventInput, eventQuery, MAX_LIMIT } from "./src/shared/schemas.ts";',
    'export { eventPage, fieldError, storedEvent } from "./src/openapi/responses.ts";',
    'export { docLimits, namedJsonSchemas } from "./src/openapi/json-schema.ts";',
  ].join("\n");
  return importBundled(entry, { prefix: "eye-client-generate-" });
}

/** The schema's description and the constraints a TypeScript type cannot say, as a doc comment line. */
function constraints(s) {
  const parts = s.description ? [s.description] : [];
  for (const key of ["pattern", "minLength", "maxLength", "format"])
    if (s[key] !== undefined) parts.push(`${key}: ${s[key]}`);
  return parts.join(", ").replaceAll("*/", "*\\/");
}

/** `$ref`s name the other generated types: the converter writes `uri(name)` for them. */
const uri = (name) => `#${name}`;

/**
 * A JSON Schema (the subset the converter emits for these schemas) as a TypeScript type. A schema
 * it does not know (an empty `{}` among them: what zod gives for a check it cannot describe) stops
 * the build rather than becoming `unknown`; `{}` as the values of a record is `unknown` on purpose.
 */
function tsType(s, indent) {
  if (s.$ref) return s.$ref.slice(uri("").length);
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
      return `{\n${members(s, `${indent}  `)}${indent}}`;
    }
  }
  throw new Error(`no TypeScript type for the JSON Schema ${JSON.stringify(s)}`);
}

function members(s, indent) {
  const required = new Set(s.required ?? []);
  let text = "";
  for (const [key, value] of Object.entries(s.properties)) {
    const note = constraints({
      description: value.description,
      ...(value.anyOf?.find((x) => x.type === "string") ?? value),
    });
    if (note) text += `${indent}/** ${note} */\n`;
    text += `${indent}${key}${required.has(key) ? "" : "?"}: ${tsType(value, indent)};\n`;
  }
  return text;
}

/** An object schema as an interface, any other (a union) as a type alias. */
const declaration = (doc, name, schema) =>
  schema.type === "object" && schema.properties
    ? `/** ${doc} */\nexport interface ${name} {\n${members(schema, "  ")}}\n`
    : `/** ${doc} */\nexport type ${name} = ${tsType(schema, "")};\n`;

export async function generate() {
  const server = await loadServer();
  const limits = server.docLimits(await wranglerVars());
  // GET /api/event/ answers offset pages (with `count`) or, with pagination=cursor, cursor pages.
  const offsetPage = server.eventPage.def.options.find((o) => "count" in o.shape);
  const cursorPage = server.eventPage.def.options.find((o) => !("count" in o.shape));
  /** The generated types: name, what it is, the server's schema. */
  const types = [
    ["EventInput", "An event as POST /api/event/ takes it (src/shared/schemas.ts `eventInput`).", server.eventInput],
    [
      "EventQuery",
      "The query string of GET /api/event/, every value a string (src/shared/schemas.ts `eventQuery`).",
      server.eventQuery,
    ],
    [
      "EventContext",
      "Where and on what a stored event happened, as the Worker saw its request (src/shared/schemas.ts `eventContext`): a stored event's `context`; null when its application turned context off.",
      server.eventContext,
    ],
    [
      "FieldError",
      "Why an event was refused: an item of the `errors` of a 202 or 400 (src/openapi/responses.ts `fieldError`).",
      server.fieldError,
    ],
    [
      "StoredEvent",
      "One stored event as GET /api/event/, GET /api/sessions/{id}/events and GET /api/event/{event_id} return it (src/openapi/responses.ts `storedEvent`).",
      server.storedEvent,
    ],
    [
      "OffsetPage",
      "A page of GET /api/event/ or GET /api/sessions/{id}/events in offset mode, the default: `next` and `previous` are URLs, null at either end (src/openapi/responses.ts `eventPage`).",
      offsetPage,
    ],
    [
      "CursorPage",
      "A page of GET /api/event/ or GET /api/sessions/{id}/events with pagination=cursor: `next` is the next page's URL, null on the last page (src/openapi/responses.ts `eventPage`).",
      cursorPage,
    ],
    ["EventPage", "A page of events, in either mode (src/openapi/responses.ts `eventPage`).", server.eventPage],
  ];
  const json = server.namedJsonSchemas(
    Object.fromEntries(types.map(([name, , schema]) => [name, schema])),
    limits,
    uri,
  );
  const sections = [
    "// Generated by client/scripts/generate.mjs from the server's own code. Do not edit: run",
    "// `npm run generate --prefix client`. test/generated.test.ts fails when this drifts from the server.",
    "// Types: the zod schemas of src/shared/schemas.ts and src/openapi/responses.ts through the OpenAPI document's",
    "// converter (src/openapi/json-schema.ts, input side). Limits: src/shared/config.ts over wrangler.toml [vars].",
    "",
    ...types.map(([name, doc]) => declaration(doc, name, json[name])),
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
  writeOrCheck(OUTPUT, await generate(), "npm run generate --prefix client");
}
