// The contract, in one place: the event a client sends, the queue message, the query string.
// Request, message and query types are inferred from these schemas.
// zod/mini: the same validator as zod, tree-shakable (about 15 KB in the bundle instead of 780 KB,
// which every cold isolate would parse), with English messages loaded explicitly.
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { formatTimestamp, parseTimestamp } from "./timestamp";

z.config(en());

/** Length in characters (code points), as the original's Python counted them. */
const codePoints = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** A required 1–150 character string, well-formed Unicode. */
export const label = z
  .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a string") })
  .check((ctx) => {
    const s = ctx.value;
    const message =
      s.length === 0
        ? "must not be empty"
        : s.length > 150 && codePoints(s) > 150
          ? "must be at most 150 characters"
          : !s.isWellFormed()
            ? "must be valid Unicode (it has a lone surrogate)"
            : null;
    if (message) ctx.issues.push({ code: "custom", message, input: s });
  });

/** The earliest event timestamp: integer microseconds a double holds exactly, before 1970. */
const EARLIEST = formatTimestamp(Number.MIN_SAFE_INTEGER);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The event as a client sends it (the original's shape, plus an optional event_id). */
export const eventInput = z.object({
  session_id: label,
  category: label,
  name: label,
  data: z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), {
    error: (iss) => (iss.input === undefined ? "is required" : "must be a JSON object"),
  }),
  timestamp: z.pipe(
    z.string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a string") }),
    z.transform((s: string, ctx) => {
      const parsed = parseTimestamp(s);
      // Microseconds must be a safe integer, as the queue message (preparedEvent) requires: an
      // earlier event would be accepted here and its whole queue message dropped by the consumer.
      // (Past the other end, 2255, it is refused as in the future.)
      if (parsed.ok && parsed.micros >= Number.MIN_SAFE_INTEGER) return parsed.micros;
      const message = parsed.ok ? `must not be earlier than ${EARLIEST}` : parsed.message;
      ctx.issues.push({ code: "custom", message, input: s });
      return z.NEVER;
    }),
  ),
  event_id: z.nullish(
    z.pipe(
      z.string({ error: "must be a UUID string" }).check(z.regex(UUID, "must be a UUID")),
      z.transform((s: string) => s.toLowerCase()),
    ),
  ),
});
export type EventInput = z.input<typeof eventInput>;

/** True when `s` is the JSON text of an object: query responses splice stored `data` in as is. */
function isJsonObjectText(s: string): boolean {
  try {
    const value: unknown = JSON.parse(s);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** An event once validated: what travels through the queue and becomes a row. */
const nonEmpty = () => z.string().check(z.minLength(1));

export const preparedEvent = z.object({
  event_id: z.string().check(z.regex(UUID)),
  session_id: nonEmpty(),
  category: nonEmpty(),
  name: nonEmpty(),
  data: z.string().check(z.refine(isJsonObjectText, "must be the JSON text of an object")), // serialized once at the edge
  timestamp: z.int(),
});
export type PreparedEvent = z.infer<typeof preparedEvent>;

/**
 * Where and on what an event happened, as the Worker saw the request that sent it (context.ts):
 * stored beside the event, never inside its data, and returned as `context`. Every field is
 * optional: absent when unknown, or when its application coarsened or turned context off.
 */
export const eventContext = z.object({
  country: z.optional(z.string()),
  continent: z.optional(z.string()),
  region: z.optional(z.string()),
  city: z.optional(z.string()),
  timezone: z.optional(z.string()),
  asn: z.optional(z.int()),
  browser: z.optional(z.string()),
  os: z.optional(z.string()),
  device: z.optional(z.string()),
  referrer_host: z.optional(z.string()),
  utm_source: z.optional(z.string()),
  utm_medium: z.optional(z.string()),
  utm_campaign: z.optional(z.string()),
  utm_term: z.optional(z.string()),
  utm_content: z.optional(z.string()),
});
export type EventContext = z.infer<typeof eventContext>;

// rule: what the value broke (errors.ts FieldError), absent in messages queued before it existed.
const reason = z.object({
  index: z.optional(z.int()),
  field: z.nullable(z.string()),
  message: z.string(),
  rule: z.optional(z.string()),
});

/** Queue messages: a pack of accepted events, or refused ones bound for the error log. */
// held: how many times the consumer has put the message back because D1 was full (consumer.ts).
export const queueMessage = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("events"),
    app: z.nullable(z.string()),
    received_at: z.int(),
    events: z.array(preparedEvent).check(z.minLength(1)),
    // The sending request's context, once for all its events (absent before context existed).
    context: z.optional(z.nullable(eventContext)),
    held: z.optional(z.int()),
  }),
  z.object({
    kind: z.literal("invalid"),
    app: z.nullable(z.string()),
    received_at: z.int(),
    request_id: z.string(),
    held: z.optional(z.int()),
    // index: the event's position in its request; category, name: the refused event's type when it
    // sent strings there, cut to 150 characters (each absent in messages queued before it existed).
    items: z
      .array(
        z.object({
          index: z.optional(z.int()),
          payload: z.string(),
          reasons: z.array(reason),
          category: z.optional(z.string()),
          name: z.optional(z.string()),
        }),
      )
      .check(z.minLength(1)),
  }),
]);
export type QueueMessage = z.infer<typeof queueMessage>;
export type EventsMessage = Extract<QueueMessage, { kind: "events" }>;

const digits = (field: string, min: number, max: number) =>
  z.pipe(
    z.string().check(z.regex(/^\d+$/, `${field} must be a whole number`)),
    z.transform(Number).check(
      z.refine((n: number) => n >= min, `${field} must be at least ${min}`),
      z.refine((n: number) => n <= max, `${field} must be at most ${max}`),
    ),
  );

const bound = z.pipe(
  z.string(),
  z.transform((s: string, ctx) => {
    const parsed = parseTimestamp(s, true);
    if (parsed.ok) return parsed.micros;
    ctx.issues.push({ code: "custom", message: parsed.message, input: s });
    return z.NEVER;
  }),
);

export const MAX_LIMIT = 1000;
export const MAX_OFFSET = 100_000;

/** An empty filter (`?category=`) means no filter, as django-filter treated it in the original. */
const filter = <T extends z.ZodMiniType>(schema: T) =>
  z.pipe(
    z.transform((v: unknown) => (v === "" ? undefined : v)),
    z.optional(schema),
  );

/** A country filter: an ISO 3166-1 alpha-2 code as Cloudflare reports it (XX unknown, T1 Tor), any case. */
const country = z.pipe(
  z.string().check(z.regex(/^[A-Za-z][A-Za-z0-9]$/, "country must be a two-letter country code")),
  z.transform((s: string) => s.toUpperCase()),
);

/** A device filter: the device types context.ts stores. */
export const DEVICE_TYPES = ["desktop", "mobile", "tablet", "tv", "bot", "other"] as const;
const device = z.enum(DEVICE_TYPES, { error: `device must be one of ${DEVICE_TYPES.join(", ")}` });

/** POST /api/event/ query string: the page the events happened on, for their context (both optional). */
export const ingestQuery = z.object({
  page: z.optional(z.string().check(z.maxLength(4096, "page must be at most 4096 characters"))),
  referrer: z.optional(z.string().check(z.maxLength(4096, "referrer must be at most 4096 characters"))),
});

/** `?dry_run=1` (or `true`) on an SDK route: validate and answer per message, store and log nothing. */
const dryRun = z.optional(z.enum(["1", "true", "0", "false"], { error: "dry_run must be 1, true, 0 or false" }));

/** The query string of Segment's event routes (POST /v1/track … /v1/batch); the SDKs send none. */
export const segmentQuery = z.object({ dry_run: dryRun });

/**
 * The query string of PostHog's capture routes. posthog-js adds others (`retry_count`, `ver`, `_`),
 * ignored; `compression` is checked where the body is read (sdk-body.ts: a 415 for one it cannot read).
 */
export const posthogQuery = z.object({
  dry_run: dryRun,
  compression: z.optional(z.string().check(z.maxLength(20, "compression must be gzip-js, gzip or base64"))),
});

/** GET /api/event/ query string. Unknown parameters are ignored, as the original did. */

export const eventQuery = z.object({
  session_id: filter(label),
  category: filter(label),
  name: filter(label),
  country: filter(country),
  device: filter(device),
  timestamp_after: filter(bound),
  timestamp_before: filter(bound),
  timestamp_start: filter(bound),
  timestamp_end: filter(bound),
  limit: z.optional(digits("limit", 1, MAX_LIMIT)),
  offset: z.optional(digits("offset", 0, MAX_OFFSET)),
  pagination: z.optional(z.enum(["offset", "cursor"], { error: "pagination must be offset or cursor" })),
  cursor: z.optional(z.string().check(z.maxLength(200, "cursor is not one this server issued"))),
});
export type EventQuery = z.output<typeof eventQuery>;

/** GET /api/export query string: the event filters; the handler requires a time range. */
export const exportQuery = z.object({
  session_id: eventQuery.shape.session_id,
  category: eventQuery.shape.category,
  name: eventQuery.shape.name,
  timestamp_after: eventQuery.shape.timestamp_after,
  timestamp_before: eventQuery.shape.timestamp_before,
  timestamp_start: eventQuery.shape.timestamp_start,
  timestamp_end: eventQuery.shape.timestamp_end,
  country: eventQuery.shape.country,
  device: eventQuery.shape.device,
});

/** An event id in a path: a UUID, compared in lower case as stored. */
export const eventId = z.pipe(
  z.string().check(z.regex(UUID, "must be a UUID")),
  z.transform((s: string) => s.toLowerCase()),
);

const errorKind = z.optional(
  z.enum(["invalid_event", "malformed_message", "consumer_failure", "dead_letter"], {
    error: "kind must be invalid_event, malformed_message, consumer_failure or dead_letter",
  }),
);

/** A reason's field (`timestamp`, `data/price`) or rule (`future`, `minimum`) to filter by. */
const reasonPart = filter(z.string().check(z.maxLength(150, "must be at most 150 characters")));

/** GET /api/errors/ query string. */
export const errorQuery = z.object({
  kind: errorKind,
  app_id: filter(label),
  category: filter(label),
  name: filter(label),
  field: reasonPart,
  rule: reasonPart,
  occurred_after: filter(bound),
  occurred_before: filter(bound),
  limit: eventQuery.shape.limit,
  offset: eventQuery.shape.offset,
});
export type ErrorQuery = z.output<typeof errorQuery>;

/** GET /api/event/{event_id} query string: which application's event, for a key that reads all. */
export const receiptQuery = z.object({ app_id: filter(label) });

/** GET /api/errors/summary query string. */
export const errorSummaryQuery = z.object({
  after: filter(bound),
  before: filter(bound),
  app_id: filter(label),
  kind: errorKind,
  limit: eventQuery.shape.limit,
});

/** Series a stats response carries at most (the rest are summed into `other`). */
export const MAX_STATS_SERIES = 100;

/** GET /api/stats/counts query string: the window and filters of GET /api/event/, counted per hour or day. */
export const statsQuery = z.object({
  interval: z.optional(z.enum(["hour", "day"], { error: "interval must be hour or day" })),
  by: z.optional(z.enum(["category", "name"], { error: "by must be category or name" })),
  category: eventQuery.shape.category,
  name: eventQuery.shape.name,
  country: eventQuery.shape.country,
  device: eventQuery.shape.device,
  timestamp_after: eventQuery.shape.timestamp_after,
  timestamp_before: eventQuery.shape.timestamp_before,
  app_id: filter(label),
  limit: z.optional(digits("limit", 1, MAX_STATS_SERIES)),
});
export type StatsQuery = z.output<typeof statsQuery>;
