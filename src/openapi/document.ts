// The API as an OpenAPI 3.1 document, built from the zod schemas the routes validate with
// (z.toJSONSchema) and the shapes they answer with. Not part of the Worker: `npm run openapi`
// (scripts/openapi.mjs) writes it to public/api/openapi.json, a static asset served at
// GET /api/openapi.json and rendered by /docs, so no isolate parses zod's JSON Schema code (85 KB)
// for it; test/unit/openapi.test.ts fails when that file is not what this module makes.
import * as z from "zod/mini";
import { version } from "../../package.json";
import { MAX_DATA_DEPTH } from "../ingest/validate";
import { type Limits, limitsFrom, storageFrom } from "../shared/config";
import { type ErrorCode, STATUS } from "../shared/errors";
import {
  errorQuery,
  errorSummaryQuery,
  eventContext,
  eventId,
  eventInput,
  eventQuery,
  exportQuery,
  ingestQuery,
  label,
  MAX_LIMIT,
  MAX_OFFSET,
  MAX_STATS_SERIES,
  receiptQuery,
  statsQuery,
} from "../shared/schemas";

export type JsonSchema = Record<string, unknown>;

/** The limits the document states; they come from wrangler.toml [vars], as the routes read them. */
export interface DocLimits extends Limits {
  exportMaxDays: number;
}

export const docLimits = (env: Partial<Record<keyof Env, unknown>>): DocLimits => ({
  ...limitsFrom(env),
  exportMaxDays: storageFrom(env).exportMaxDays,
});

/**
 * What JSON Schema cannot read from a schema (a custom check, a refinement), said here by the
 * schema's identity. test/unit/openapi.test.ts proves each claim against the validator itself.
 */
function annotations(limits: DocLimits): Map<unknown, JsonSchema> {
  return new Map<unknown, JsonSchema>([
    [
      label,
      {
        minLength: 1,
        maxLength: 150,
        description: "1–150 characters (JSON Schema counts code points, as the server does), well-formed Unicode",
      },
    ],
    [
      eventInput.shape.data,
      {
        type: "object",
        description:
          `any JSON object ({} too): at most ${limits.maxDataBytes} bytes serialized, nested at most ${MAX_DATA_DEPTH} levels, ` +
          "no key twice in one object, numbers a double holds exactly (send others as strings)",
      },
    ],
    [
      eventInput.shape.timestamp,
      {
        description:
          "`YYYY-MM-DD HH:MM[:SS[.f…]]` or ISO 8601 with `T`; optional `Z` or `±HH:MM` (none means UTC); up to 9 fraction digits, kept to the " +
          `microsecond; from 1684-07-28T00:12:25.259009Z to ${limits.maxFutureMicros / 1_000_000} s after the server receives it`,
        examples: ["2021-01-01 09:15:27.243860", "2021-01-01T09:15:27Z"],
      },
    ],
    [
      eventInput.shape.event_id,
      {
        description:
          "optional; when absent the server derives one from the event's content, so a retried request stores nothing twice",
      },
    ],
    [eventId, { format: "uuid" }],
  ]);
}

/** A regex with the `i` flag as a JSON Schema pattern, which has no flags: its letter ranges in both cases. */
const caseless = (source: string) =>
  source.replace(/([a-z])-([a-z])/g, (_, a: string, b: string) => `${a}-${b}${a.toUpperCase()}-${b.toUpperCase()}`);

/** z.int()'s bounds (the safe integers), which every integer here has and no reader needs told. */
const SAFE = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];

/** The JSON Schema options every conversion uses: what goes on the wire (input), annotated. */
function conversion(limits: DocLimits) {
  const notes = annotations(limits);
  return {
    io: "input" as const,
    // A custom check has no JSON Schema ("any" gives `{}`); the override fills it in, or refuses.
    unrepresentable: "any" as const,
    override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema; path: (string | number)[] }) {
      const zod = (
        ctx.zodSchema as { _zod: { def: { type: string; checks?: { _zod: { def: { pattern?: unknown } } }[] } } }
      )._zod;
      const json = ctx.jsonSchema;
      for (const check of zod.def.checks ?? []) {
        const { pattern } = check._zod.def;
        if (pattern instanceof RegExp && pattern.flags.includes("i") && json.pattern === pattern.source)
          json.pattern = caseless(pattern.source);
      }
      if (json.type === "integer" && json.minimum === SAFE[0] && json.maximum === SAFE[1]) {
        delete json.minimum;
        delete json.maximum;
      }
      const note = notes.get(ctx.zodSchema);
      if (note) Object.assign(json, note);
      else if (zod.def.type === "custom")
        throw new Error(
          `a z.custom at ${ctx.path.join("/") || "the root"} has no JSON Schema: say what it accepts in annotations() (openapi.ts)`,
        );
    },
  };
}

/** One schema as JSON Schema, as the document writes it (no $schema: the document's dialect applies). */
export function jsonSchemaOf(schema: z.ZodMiniType, limits: DocLimits): JsonSchema {
  const { $schema: _, ...json } = z.toJSONSchema(schema, conversion(limits)) as JsonSchema;
  return json;
}

// ---- What the routes answer. The tests check real responses against these (and the document).

const int = () => z.int();
const text = () => z.string();
const nullableText = () => z.nullable(z.string());

export const fieldError = z.object({
  index: z.optional(int()),
  field: nullableText(),
  message: text(),
  rule: z.optional(text()),
});

export const errorResponse = z.strictObject({
  success: z.literal(false),
  code: z.enum(Object.keys(STATUS) as [ErrorCode, ...ErrorCode[]]),
  message: text(),
  request_id: text(),
  errors: z.optional(z.array(fieldError)),
  accepted: z.optional(int()),
});

export const storedEvent = z.strictObject({
  session_id: text(),
  timestamp: text(),
  category: text(),
  name: text(),
  data: z.record(z.string(), z.unknown()),
  event_id: text(),
  received_at: text(),
  application: nullableText(),
  context: z.nullable(eventContext),
});

export const ingestAccepted = z.union([
  z.strictObject({ success: z.literal(true), accepted: int() }),
  z.strictObject({ success: z.literal(false), accepted: int(), errors: z.array(fieldError) }),
]);

export const dryRun = z.strictObject({
  success: z.boolean(),
  accepted: int(),
  refused: int(),
  events: z.array(
    z.union([
      z.strictObject({ index: int(), accepted: z.literal(true), event_id: text() }),
      z.strictObject({ index: int(), accepted: z.literal(false), errors: z.array(fieldError) }),
    ]),
  ),
});

export const eventPage = z.union([
  z.strictObject({ count: int(), next: nullableText(), previous: nullableText(), results: z.array(storedEvent) }),
  z.strictObject({ next: nullableText(), previous: z.null(), results: z.array(storedEvent) }),
]);

const errorKind = z.enum(["invalid_event", "malformed_message", "consumer_failure", "dead_letter"]);

export const errorLogPage = z.strictObject({
  count: int(),
  next: nullableText(),
  previous: nullableText(),
  results: z.array(
    z.strictObject({
      id: int(),
      kind: errorKind,
      occurred_at: text(),
      application: nullableText(),
      category: nullableText(),
      name: nullableText(),
      field: nullableText(),
      rule: nullableText(),
      payload: text(),
      reasons: z.array(fieldError),
      source: nullableText(),
    }),
  ),
});

export const errorSummary = z.strictObject({
  window: z.strictObject({ after: text(), before: text(), hours: int() }),
  application: nullableText(),
  total: int(),
  totals: z.partialRecord(errorKind, int()),
  truncated: z.boolean(),
  results: z.array(
    z.strictObject({
      kind: errorKind,
      rule: nullableText(),
      category: nullableText(),
      name: nullableText(),
      field: nullableText(),
      count: int(),
    }),
  ),
});

export const statsCounts = z.strictObject({
  interval: z.enum(["hour", "day"]),
  by: z.enum(["category", "name"]),
  application: nullableText(),
  category: nullableText(),
  name: nullableText(),
  country: nullableText(),
  device: nullableText(),
  window: z.strictObject({ after: text(), before: text(), buckets: int() }),
  buckets: z.array(text()),
  total: int(),
  totals: z.array(int()),
  series: z.array(
    z.union([
      z.strictObject({ category: text(), total: int(), counts: z.array(int()) }),
      z.strictObject({ name: text(), total: int(), counts: z.array(int()) }),
    ]),
  ),
  other: z.nullable(z.array(int())),
});

const at = () => nullableText();

export const health = z.strictObject({
  status: z.enum(["ok", "degraded"]),
  service: text(),
  version: text(),
  database: z.enum(["ok", "unavailable"]),
  storage: z.optional(
    z.union([
      text(),
      z.strictObject({
        database: z.strictObject({ bytes: int() }),
        hot: z.strictObject({
          days: int(),
          oldest_event: at(),
          newest_event: at(),
          purged_before: at(),
          purged_at: at(),
        }),
        archive: z.strictObject({ watermark_id: int(), newest_id: int(), backlog_events: int(), archived_at: at() }),
        error_log: z.strictObject({ days: int() }),
      }),
    ]),
  ),
});

export const service = z.strictObject({
  service: text(),
  version: text(),
  api: text(),
  endpoints: z.array(z.strictObject({ method: text(), path: text(), key: text(), what: text() })),
  docs: text(),
  reference: text(),
  openapi: text(),
  explorer: text(),
});

/** The document's named schemas: components.schemas, in this order. */
function shapes(limits: DocLimits) {
  return {
    Event: eventInput,
    EventBatch: z.union([
      eventInput,
      z.array(eventInput).check(z.minLength(1), z.maxLength(limits.maxEventsPerRequest)),
    ]),
    FieldError: fieldError,
    Error: errorResponse,
    IngestAccepted: ingestAccepted,
    DryRun: dryRun,
    StoredEvent: storedEvent,
    EventPage: eventPage,
    ErrorLogPage: errorLogPage,
    ErrorSummary: errorSummary,
    StatsCounts: statsCounts,
    Health: health,
    Service: service,
  };
}

type SchemaName = keyof ReturnType<typeof shapes>;
const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });

/** The named schemas as JSON Schema, referring to one another by $ref where one holds another. */
function componentSchemas(limits: DocLimits): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(shapes(limits))) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    ...conversion(limits),
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, JsonSchema> };
  // Each comes with $schema and an $id; inside an OpenAPI document neither belongs.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _, $id: __, ...json }]) => [id, json]));
}

// ---- Errors: one shape, its codes by status.

/** When each code is answered. */
const WHEN: Record<ErrorCode, string> = {
  bad_request: "the body is not JSON, not UTF-8, not gzip, or empty; or X-D1-Bookmark is malformed",
  invalid_events: "no event is valid, or the body holds too many events (`errors` names each event's fields)",
  invalid_query: "a query or path parameter is invalid (`errors` names it)",
  unauthorized: "no key, or an unknown or revoked one, or a read key in the URL",
  forbidden:
    "the wrong kind of key for the route, an origin the application does not allow, or a scoped key naming another application",
  not_found: "no such route, or no such stored event",
  method_not_allowed: "the path does not serve this method (`Allow` lists those it does)",
  conflict: "several applications stored this event_id; add `?app_id=`",
  payload_too_large: "the body is over MAX_BODY_BYTES, on the wire or once inflated",
  unsupported_media_type:
    "a Content-Type other than application/json or text/plain, a charset other than UTF-8, or a Content-Encoding other than gzip",
  rate_limited:
    "too many requests from this client with this write key, or too many unknown keys from this address; wait `Retry-After` seconds",
  internal_error: "a bug: quote the request_id when reporting it",
  queue_unavailable:
    "the queue refused the events; `accepted` says how many it took (resending the same request is safe)",
};

const pascal = (code: string) => code.replace(/(^|_)([a-z])/g, (_, __, ch: string) => ch.toUpperCase());

/** Each status's response, named after its first code (BadRequest, Unauthorized, …). */
const statusName = (status: number) =>
  pascal(Object.keys(STATUS).find((code) => STATUS[code as ErrorCode] === status)!);

function errorResponses() {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, status] of Object.entries(STATUS) as [ErrorCode, number][])
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  const extra: Record<number, Record<string, unknown>> = {
    401: { "WWW-Authenticate": { $ref: "#/components/headers/WWWAuthenticate" } },
    405: { Allow: { $ref: "#/components/headers/Allow" } },
    429: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
    503: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
  };
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => [
      statusName(status),
      {
        description: codes.map((code) => `\`${code}\`: ${WHEN[code]}`).join("; "),
        headers: { "X-Request-Id": { $ref: "#/components/headers/XRequestId" }, ...extra[status] },
        content: { "application/json": { schema: { ...ref("Error"), properties: { code: { enum: codes } } } } },
      },
    ]),
  );
}

// ---- The routes.

type Auth = "write" | "read" | "read-optional" | "none";

interface Route {
  method: "get" | "post";
  path: string;
  tag: string;
  summary: string;
  description?: string;
  auth: Auth;
  query?: z.ZodMiniObject;
  /** What a parameter means on this route, where it differs from PARAMS. */
  notes?: Record<string, string>;
  pathParams?: Record<string, { schema: z.ZodMiniType; description: string }>;
  /** Takes the event batch (POST). */
  events?: boolean;
  /** Reads through a D1 session: X-D1-Bookmark in and out. */
  bookmark?: boolean;
  /** A static file (public/), served before the Worker: none of the Worker's headers. */
  asset?: boolean;
  ok: Record<string, { description: string; schema?: SchemaName; media?: string; text?: string; headers?: string[] }>;
  errors: number[];
}

const READ_ERRORS = [400, 401, 403, 429, 500];
const WRITE_ERRORS = [400, 401, 403, 413, 415, 429, 500];

/** What each query parameter means, wherever it appears. */
const PARAMS: Record<string, string> = {
  session_id: "only this session's events (exact)",
  category: "only this category (exact); an empty value means no filter",
  name: "only this name (exact); an empty value means no filter",
  timestamp_after: "events at or after this instant: a timestamp as events take them, or a date alone (midnight UTC)",
  timestamp_before: "events at or before this instant (inclusive), written as timestamp_after",
  timestamp_start: "alias of timestamp_after (when both are given, the later applies)",
  timestamp_end: "alias of timestamp_before (when both are given, the earlier applies)",
  limit: `rows per page, 1–${MAX_LIMIT}; default 100`,
  offset: `rows to skip, 0–${MAX_OFFSET}; offset pagination only (use the cursor beyond)`,
  pagination: "`cursor` for cursor pages (follow `next`), which never repeat or skip an event; default `offset`",
  cursor: "where the next page starts, from a cursor page's `next` link",
  kind: "`invalid_event` (refused at the edge), `malformed_message` (unreadable queue message), `consumer_failure` (a write being retried), `dead_letter` (given up)",
  app_id:
    "an application id: a key for every application reads that one; a scoped key may name only its own (else 403)",
  field: "the first reason's field (`timestamp`, `data/price`)",
  rule: "the first reason's rule (`future`, `minimum`, `invalid_type`)",
  occurred_after: "entries at or after this instant",
  occurred_before: "entries at or before this instant",
  after: "the window's start, widened to the whole hour (default: 23 hours before `before`'s hour)",
  before: "the window's end, widened to the end of its hour (default: now)",
  interval: "bucket width: `hour` (default) or `day` (UTC)",
  by: "split the series by `category` (default) or `name`",
  country:
    "only events from this country: an ISO 3166-1 alpha-2 code as Cloudflare reports it (`XX` unknown, `T1` Tor), any case; events without context never match",
  device: "only events from this device type (parsed from User-Agent); events without context never match",
  page: "the page the events happened on (`location.href`): its `utm_*` parameters go into each event's `context`; nothing else of it is kept",
  referrer:
    "the page's referrer (`document.referrer`): its host goes into each event's `context` as `referrer_host`; nothing else of it is kept",
};

function routes(limits: DocLimits): Route[] {
  const eventsPage = {
    "200": { description: "one page of events", schema: "EventPage" as const, headers: ["X-D1-Bookmark"] },
  };
  return [
    {
      method: "post",
      path: "/api/event/",
      tag: "ingestion",
      summary: "Send one event or a batch",
      description:
        `One event object, or an array of 1–${limits.maxEventsPerRequest}; body at most ${limits.maxBodyBytes} bytes (also once inflated). ` +
        "`text/plain` (what `navigator.sendBeacon` sends) is read as JSON; `Content-Encoding: gzip` is accepted. Valid events are queued and " +
        "stored within seconds; invalid ones are refused one by one (`errors`) and logged (GET /api/errors/). Each stored event gets the request's " +
        "`context` (country, region, city, timezone, continent, ASN; browser, OS, device type; with `page`/`referrer`, the referrer's host and UTM " +
        "parameters) unless its application turned context off; the client's IP address is never stored.",
      auth: "write",
      query: ingestQuery,
      events: true,
      ok: {
        "202": {
          description:
            "all events queued (`success: true`), or some, with why the others were refused (`success: false`)",
          schema: "IngestAccepted",
        },
      },
      errors: [...WRITE_ERRORS, 503],
    },
    {
      method: "post",
      path: "/api/event/validate",
      tag: "ingestion",
      summary: "Dry run: what would be accepted",
      description:
        "The same bodies and checks as POST /api/event/, answered per event (with the event_id each would be stored under); stores and logs nothing.",
      auth: "write",
      events: true,
      ok: {
        "200": { description: "each event, accepted (with its event_id) or refused (with why)", schema: "DryRun" },
      },
      errors: WRITE_ERRORS,
    },
    {
      method: "get",
      path: "/api/event/",
      tag: "events",
      summary: "Query events",
      description:
        "Newest first. Offset pages (`count`, `next`, `previous`, as the original's) or, with `pagination=cursor`, cursor pages (`next` only) that cost " +
        "the same however deep. `count` is exact. Each event carries its `context` (where and on what it happened, or null).",
      auth: "read",
      query: eventQuery,
      bookmark: true,
      ok: eventsPage,
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/event/{event_id}",
      tag: "events",
      summary: "Delivery receipt: one stored event",
      description: "The stored event, as one result of GET /api/event/, or 404 while it is not stored (yet).",
      auth: "read",
      query: receiptQuery,
      notes: {
        app_id:
          "the application whose event to read, when several stored this event_id (else 409); a scoped key may name only its own",
      },
      pathParams: { event_id: { schema: eventId, description: "the event's id (any case)" } },
      bookmark: true,
      ok: { "200": { description: "the stored event", schema: "StoredEvent", headers: ["X-D1-Bookmark"] } },
      errors: [...READ_ERRORS, 404, 409],
    },
    {
      method: "get",
      path: "/api/sessions/{session_id}/events",
      tag: "events",
      summary: "One session's events, oldest first",
      auth: "read",
      query: eventQuery,
      notes: { session_id: "ignored here: the path names the session" },
      pathParams: { session_id: { schema: label, description: "the session's id, as events carry it" } },
      bookmark: true,
      ok: eventsPage,
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/export",
      tag: "events",
      summary: "Export a time range as NDJSON",
      description:
        `Every event in a time range of at most ${limits.exportMaxDays} days (EXPORT_MAX_DAYS), from the R2 archive and D1, one JSON event per line ` +
        "(the shape of StoredEvent), by application and hour, not sorted. timestamp_after and timestamp_before (or their aliases) are required.",
      auth: "read",
      query: exportQuery,
      notes: {
        timestamp_after: "required (or timestamp_start): the range's start, inclusive",
        timestamp_before: "required (or timestamp_end): the range's end, inclusive",
      },
      bookmark: true,
      ok: {
        "200": {
          description: "the events, one JSON object (StoredEvent) per line",
          media: "application/x-ndjson",
          text: "lines of StoredEvent",
          headers: ["X-D1-Bookmark", "X-Archive-Watermark"],
        },
      },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/stats/counts",
      tag: "events",
      summary: "Events counted per hour or day, by category or name",
      description:
        "Counts from the hourly roll-ups (never the events), in whole buckets; the largest series first, the rest summed into `other`. " +
        "`country` or `device` (one of them) counts only events with that context, from the roll-ups by context.",
      auth: "read",
      query: statsQuery,
      notes: {
        limit: `series, 1–${MAX_STATS_SERIES}; default 10 (the rest are summed into \`other\`)`,
        timestamp_after: "the window's start, widened to its bucket (default: the last 24 hours, or 30 days by day)",
        timestamp_before: "the window's end, widened to its bucket (default: now)",
      },
      bookmark: true,
      ok: {
        "200": {
          description: "counts per bucket: totals and series",
          schema: "StatsCounts",
          headers: ["X-D1-Bookmark"],
        },
      },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/errors/",
      tag: "monitoring",
      summary: "The error log, newest first",
      description: "Refused events, malformed and dead-lettered messages, failed writes: why, and what was sent.",
      auth: "read",
      query: errorQuery,
      notes: { category: "the refused event's category (exact)", name: "the refused event's name (exact)" },
      bookmark: true,
      ok: { "200": { description: "one page of entries", schema: "ErrorLogPage", headers: ["X-D1-Bookmark"] } },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/errors/summary",
      tag: "monitoring",
      summary: "Error-log entries counted by kind, rule, type and field",
      description: "Sums hourly counts over whole hours (never the log itself), largest first, with totals per kind.",
      auth: "read",
      query: errorSummaryQuery,
      notes: { limit: `groups, 1–${MAX_LIMIT}; default 100 (\`truncated\` says whether there are more)` },
      bookmark: true,
      ok: { "200": { description: "the counts", schema: "ErrorSummary", headers: ["X-D1-Bookmark"] } },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/health",
      tag: "service",
      summary: "Liveness, version, storage",
      description:
        "No key needed; with a read key for every application also `storage` (database size, hot window, archive watermark and backlog).",
      auth: "read-optional",
      bookmark: true,
      ok: {
        "200": { description: "D1 answers", schema: "Health", headers: ["X-D1-Bookmark"] },
        "503": { description: "D1 does not answer (`status: degraded`)", schema: "Health" },
      },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/",
      tag: "service",
      summary: "The service, its version and endpoints",
      description: "JSON; a browser (Accept: text/html) gets the same as a small HTML page. Also at /api/.",
      auth: "none",
      ok: { "200": { description: "what this is and where the docs are", schema: "Service" } },
      errors: [],
    },
    {
      method: "get",
      path: "/api/",
      tag: "service",
      summary: "The same as GET /",
      auth: "none",
      ok: { "200": { description: "what this is and where the docs are", schema: "Service" } },
      errors: [],
    },
    {
      method: "get",
      path: "/api/openapi.json",
      tag: "service",
      summary: "This document",
      description:
        "A static file generated from the zod schemas the routes validate with (`npm run openapi`); the reference page at /docs renders it.",
      auth: "none",
      asset: true,
      ok: { "200": { description: "OpenAPI 3.1", media: "application/json", text: "an OpenAPI 3.1 document" } },
      errors: [],
    },
  ];
}

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
  if (r.events) parameters.push({ $ref: "#/components/parameters/ContentEncoding" });

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
READ_CORS_ORIGINS; preflights are answered at once.`;

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
