// What the routes answer, as zod schemas: the tests check real responses against these (and the
// document names them as components.schemas).
import * as z from "zod/mini";
import { type ErrorCode, STATUS } from "../shared/errors";
import { eventContext, eventInput } from "../shared/schemas";
import { fieldError } from "./field-error";
import { type DocLimits, type JsonSchema, namedJsonSchemas } from "./json-schema";
import { sdkShapes } from "./sdk-schemas";

export { fieldError };

const int = () => z.int();
const text = () => z.string();
const nullableText = () => z.nullable(z.string());

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
    ...sdkShapes,
  };
}

export type SchemaName = keyof ReturnType<typeof shapes>;
export const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });

/** The named schemas as JSON Schema, referring to one another by $ref where one holds another. */
export function componentSchemas(limits: DocLimits): Record<string, JsonSchema> {
  return namedJsonSchemas(shapes(limits), limits, (id) => `#/components/schemas/${id}`);
}
