// The contract, in one place: the event a client sends, the queue message, the query string.
// Request, message and query types are inferred from these schemas.
import { z } from "zod";
import { formatTimestamp, parseTimestamp } from "./timestamp";

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
  data: z.custom<Record<string, unknown>>(
    (v) => typeof v === "object" && v !== null && !Array.isArray(v),
    { error: (iss) => (iss.input === undefined ? "is required" : "must be a JSON object") },
  ),
  timestamp: z
    .string({ error: (iss) => (iss.input === undefined ? "is required" : "must be a string") })
    .transform((s, ctx) => {
      const parsed = parseTimestamp(s);
      // Microseconds must be a safe integer, as the queue message (preparedEvent) requires: an
      // earlier event would be accepted here and its whole queue message dropped by the consumer.
      // (Past the other end, 2255, it is refused as in the future.)
      if (parsed.ok && parsed.micros >= Number.MIN_SAFE_INTEGER) return parsed.micros;
      const message = parsed.ok ? `must not be earlier than ${EARLIEST}` : parsed.message;
      ctx.issues.push({ code: "custom", message, input: s });
      return z.NEVER;
    }),
  event_id: z
    .string({ error: "must be a UUID string" })
    .regex(UUID, "must be a UUID")
    .transform((s) => s.toLowerCase())
    .nullish(),
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
export const preparedEvent = z.object({
  event_id: z.string().regex(UUID),
  session_id: z.string().min(1),
  category: z.string().min(1),
  name: z.string().min(1),
  data: z.string().refine(isJsonObjectText, "must be the JSON text of an object"), // serialized once at the edge
  timestamp: z.number().int(),
});
export type PreparedEvent = z.infer<typeof preparedEvent>;

const reason = z.object({ index: z.number().int().optional(), field: z.string().nullable(), message: z.string() });

/** Queue messages: a pack of accepted events, or refused ones bound for the error log. */
export const queueMessage = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("events"),
    app: z.string().nullable(),
    received_at: z.number().int(),
    events: z.array(preparedEvent).min(1),
  }),
  z.object({
    kind: z.literal("invalid"),
    app: z.string().nullable(),
    received_at: z.number().int(),
    request_id: z.string(),
    items: z.array(z.object({ payload: z.string(), reasons: z.array(reason) })).min(1),
  }),
]);
export type QueueMessage = z.infer<typeof queueMessage>;
export type EventsMessage = Extract<QueueMessage, { kind: "events" }>;

const digits = (field: string, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${field} must be a whole number`)
    .transform(Number)
    .refine((n) => n <= max, `${field} must be at most ${max}`);

const bound = z.string().transform((s, ctx) => {
  const parsed = parseTimestamp(s, true);
  if (parsed.ok) return parsed.micros;
  ctx.issues.push({ code: "custom", message: parsed.message, input: s });
  return z.NEVER;
});

export const MAX_LIMIT = 1000;
export const MAX_OFFSET = 100_000;

/** GET /api/event/ query string. Unknown parameters are ignored, as the original did. */
/** An empty filter (`?category=`) means no filter, as django-filter treated it in the original. */
const filter = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === "" ? undefined : v), schema.optional());

export const eventQuery = z.object({
  session_id: filter(label),
  category: filter(label),
  name: filter(label),
  timestamp_after: filter(bound),
  timestamp_before: filter(bound),
  timestamp_start: filter(bound),
  timestamp_end: filter(bound),
  limit: digits("limit", MAX_LIMIT)
    .refine((n) => n >= 1, "limit must be at least 1")
    .optional(),
  offset: digits("offset", MAX_OFFSET).optional(),
  pagination: z.enum(["offset", "cursor"], { error: "pagination must be offset or cursor" }).optional(),
  cursor: z.string().max(200, "cursor is not one this server issued").optional(),
});
export type EventQuery = z.output<typeof eventQuery>;

/** GET /api/errors/ query string. */
export const errorQuery = z.object({
  kind: z.enum(["invalid_event", "malformed_message", "consumer_failure", "dead_letter"]).optional(),
  occurred_after: bound.optional(),
  occurred_before: bound.optional(),
  limit: eventQuery.shape.limit,
  offset: eventQuery.shape.offset,
});
export type ErrorQuery = z.output<typeof errorQuery>;
