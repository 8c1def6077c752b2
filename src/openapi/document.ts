import { version } from "../../package.json";
import { errorResponses, statusName } from "./error-responses";
import { type DocLimits, type JsonSchema, jsonSchemaOf } from "./json-schema";
import { componentSchemas, ref } from "./responses";
import { type Auth, PARAMS, type Route, routes } from "./routes";
import { POSTHOG_TAG, SEGMENT_TAG } from "./sdk-schemas";

/** The original README's event, as a batch of one. */
const EXAMPLE = [
  {
    session_id: "e2085be5-9137-4e4e-80b5-f1ffddc25423",
    category: "page interaction",
    name: "cta click",
    data: { host: "www.xxxxx.com", path: "/", element: "chat bubble" },
    timestamp: "2021-01-01 09:15:27.243860",
  },
];

const SECURITY: Record<Auth, Record<string, string[]>[]> = {
  write: [{ writeKey: [] }, { writeKeyInQuery: [] }],
  read: [{ readKey: [] }],
  "read-optional": [{}, { readKey: [] }],
  none: [],
  // Segment's libraries: Basic (analytics-node, analytics.js) or writeKey in the body; PostHog's: the body.
  segment: [{ writeKeyBasic: [] }, { writeKey: [] }, { writeKeyInQuery: [] }, {}],
  posthog: [{ writeKey: [] }, { writeKeyInQuery: [] }, {}],
};

function operation(r: Route, limits: DocLimits) {
  const parameters: Record<string, unknown>[] = [];
  for (const [name, p] of Object.entries(r.pathParams ?? {})) {
    parameters.push({
      name,
      in: "path",
      required: true,
      description: p.description,
      schema: jsonSchemaOf(p.schema, limits),
    });
  }
  if (r.query) {
    const json = jsonSchemaOf(r.query, limits) as { properties: Record<string, JsonSchema>; required?: string[] };
    for (const [name, schema] of Object.entries(json.properties)) {
      const { description: _, ...rest } = schema;
      parameters.push({
        name,
        in: "query",
        required: json.required?.includes(name) ?? false,
        description: r.notes?.[name] ?? PARAMS[name],
        schema: rest,
      });
    }
  }
  if (r.bookmark) parameters.push({ $ref: "#/components/parameters/XD1Bookmark" });
  if (r.events || r.body) parameters.push({ $ref: "#/components/parameters/ContentEncoding" });

  const responses: Record<string, unknown> = {};
  for (const [status, ok] of Object.entries(r.ok)) {
    const headers: Record<string, unknown> = r.asset
      ? {}
      : { "X-Request-Id": { $ref: "#/components/headers/XRequestId" } };
    for (const h of ok.headers ?? []) headers[h] = { $ref: `#/components/headers/${h.replace(/-/g, "")}` };
    const schema = ok.schema ? ref(ok.schema) : { type: "string", description: ok.text };
    responses[status] = {
      description: ok.description,
      headers,
      content: { [ok.media ?? "application/json"]: { schema } },
    };
  }
  for (const status of r.errors) responses[String(status)] = { $ref: `#/components/responses/${statusName(status)}` };

  return {
    tags: [r.tag],
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    operationId: `${r.method}${r.path.replace(/\{([^}]+)\}/g, "by_$1").replace(/[^a-zA-Z0-9]+(.)?/g, (_, ch?: string) => (ch ? ch.toUpperCase() : ""))}`,
    security: SECURITY[r.auth],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(r.events
      ? {
          requestBody: {
            required: true,
            description:
              "an event or an array of events; text/plain is read as JSON (no CORS preflight from a page); optionally gzip-encoded",
            content: {
              "application/json": { schema: ref("EventBatch"), example: EXAMPLE },
              "text/plain": { schema: ref("EventBatch"), example: EXAMPLE },
            },
          },
        }
      : {}),
    ...(r.body
      ? {
          requestBody: {
            required: true,
            description: `${r.body.description}; JSON as application/json or text/plain, optionally gzip (declared or not), or a form whose data= is the JSON or its base64`,
            content: Object.fromEntries(r.body.media.map((m) => [m, { schema: ref(r.body!.schema) }])),
          },
        }
      : {}),
    responses,
  };
}

const DESCRIPTION = `User-behaviour events in, queried out. Keys travel in \`Authorization: Bearer <key>\`: a **write key** sends
events for its application (it may also be \`?key=\` on POST, for \`navigator.sendBeacon\`); a **read key** queries, for one
application or for all (never in the URL).

Every response of the Worker carries \`X-Request-Id\` (the static files, this document and /docs, do not). Every error is one
JSON shape (\`Error\`: \`success: false\`, \`code\`, \`message\`, \`request_id\`, and \`errors\` naming fields where there are some).
Any unknown path answers 404 \`not_found\`, and a known path asked with another method 405 \`method_not_allowed\` with \`Allow\`.
Every GET also answers HEAD. CORS: POSTs to /api/event/ from any origin (the application's origin list applies); reads only from
READ_CORS_ORIGINS; preflights are answered at once.

Segment's HTTP Tracking API (\`/v1/…\`) and PostHog's capture API (\`/e/\`, \`/batch/\` …) are served too, at the root, as their libraries
send them: POST /v1/batch and POST /batch/ say how each message becomes an event (docs/sdks.md in full). Their POSTs from any origin, as ingestion's.`;

/** The whole document for these limits. */
export function openApiDocument(limits: DocLimits) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes(limits)) {
    paths[r.path] ??= {};
    paths[r.path]![r.method] = operation(r, limits);
  }
  return {
    openapi: "3.1.0",
    info: { title: "The Eye", version, description: DESCRIPTION },
    servers: [{ url: "/" }],
    tags: [
      { name: "ingestion", description: "sending events (write key)" },
      { name: "events", description: "reading events (read key)" },
      { name: "monitoring", description: "what was refused or failed, and how often (read key)" },
      { name: "service", description: "what this is, whether it is up, this document" },
      { name: "segment", description: SEGMENT_TAG },
      { name: "posthog", description: POSTHOG_TAG },
    ],
    paths,
    components: {
      schemas: componentSchemas(limits),
      responses: errorResponses(),
      parameters: {
        XD1Bookmark: {
          name: "X-D1-Bookmark",
          in: "header",
          required: false,
          description:
            "the bookmark of an earlier response: this read sees a database state at least that new (pages of one walk never step back in time)",
          schema: { type: "string", pattern: "^[0-9a-fA-F]{1,32}(-[0-9a-fA-F]{1,32}){0,7}$" },
        },
        ContentEncoding: {
          name: "Content-Encoding",
          in: "header",
          required: false,
          description: "`gzip` for a compressed body (the size limit applies on the wire and once inflated)",
          schema: { type: "string", enum: ["gzip", "identity"] },
        },
      },
      headers: {
        XRequestId: {
          description: "this request's id; error bodies carry it as request_id",
          schema: { type: "string", format: "uuid" },
        },
        XD1Bookmark: {
          description: "the database state this read saw: send it back as X-D1-Bookmark to read one at least as new",
          schema: { type: "string" },
        },
        RetryAfter: { description: "seconds to wait before retrying", schema: { type: "integer", minimum: 0 } },
        Allow: { description: "the methods this path serves", schema: { type: "string" } },
        WWWAuthenticate: { description: "`Bearer`", schema: { type: "string" } },
        XArchiveWatermark: {
          description: "the highest event id read from the archive; events above it came from D1",
          schema: { type: "integer" },
        },
      },
      securitySchemes: {
        writeKey: {
          type: "http",
          scheme: "bearer",
          description: "a write key: sends events for its application; public by design (pages embed it)",
        },
        writeKeyBasic: {
          type: "http",
          scheme: "basic",
          description:
            "a write key as the user name, the password empty (base64 of `<key>:`): how Segment's libraries send it; on the Segment routes only",
        },
        writeKeyInQuery: {
          type: "apiKey",
          in: "query",
          name: "key",
          description: "a write key in the URL, for navigator.sendBeacon (which cannot set headers); POST only",
        },
        readKey: {
          type: "http",
          scheme: "bearer",
          description:
            "a read key: queries one application's events, or every application's; secret, refused in the URL",
        },
      },
    },
  };
}
