// The D1 schema. drizzle-kit generates migrations/ from this file: edit here, then `npm run db:generate`.
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const events = sqliteTable(
  "events",
  {
    // rowid: the tie-breaker that makes the timestamp order total, so pages never overlap.
    id: integer("id").primaryKey(),
    // Client-sent UUID, or one the server derives from the event's content (validate.ts):
    // with app_id, the dedup key. Unique per application, so one application's ids can never
    // suppress another's events.
    eventId: text("event_id").notNull(),
    sessionId: text("session_id").notNull(),
    category: text("category").notNull(),
    name: text("name").notNull(),
    // The event's JSON object, stored as the text it was validated as.
    data: text("data").notNull(),
    // When the event happened: microseconds since the epoch, UTC.
    timestamp: integer("timestamp").notNull(),
    // When the Worker accepted it: microseconds since the epoch, UTC.
    receivedAt: integer("received_at").notNull(),
    // The application whose write key sent it. Every write key belongs to one, so events sent
    // through the API always have it (null only for rows stored before keys existed).
    appId: text("app_id"),
  },
  // One index per filter shape, each ending in timestamp (and implicitly rowid), so every
  // filtered page is an index range read in order, never a scan and sort.
  (t) => [
    // coalesce: NULLs never collide in a unique index, and rows without an application must
    // deduplicate among themselves too.
    uniqueIndex("events_event_id_app").on(t.eventId, sql`coalesce(${t.appId}, '')`),
    index("events_timestamp").on(t.timestamp),
    index("events_session").on(t.sessionId, t.timestamp),
    index("events_category").on(t.category, t.timestamp),
    index("events_name").on(t.name, t.timestamp),
    index("events_category_name").on(t.category, t.name, t.timestamp),
  ],
);

/**
 * Event counts per hour, kept by the consumer in the same D1 batch as the events it stores,
 * so a `count` over a million matching events sums a few hundred rows instead of reading
 * a million. Each stored event counts once under each of four shapes: (category, name),
 * (category, ''), ('', name) and ('', ''); '' means "any" (real values are never empty).
 */
export const eventCounts = sqliteTable(
  "event_counts",
  {
    category: text("category").notNull(),
    name: text("name").notNull(),
    // floor(timestamp / 1 hour): the bucket the events' own timestamps fall in.
    hour: integer("hour").notNull(),
    // '' for events stored without an application.
    appId: text("app_id").notNull(),
    n: integer("n").notNull(),
  },
  (t) => [primaryKey({ columns: [t.category, t.name, t.hour, t.appId] })],
);

/** The highest events.id already counted in event_counts: the consumer counts rows above it. */
export const rollupMark = sqliteTable("rollup_mark", {
  id: integer("id").primaryKey(),
  lastId: integer("last_id").notNull(),
});

/**
 * Where the storage tiers stand (one row, id 1), kept by the scheduled maintenance: how far
 * the R2 archive reaches and how far the hot window has been purged. Times are microseconds.
 */
export const storageState = sqliteTable("storage_state", {
  id: integer("id").primaryKey(),
  // Every event with an id up to here is in R2 in an object that is never rewritten (a sealed
  // block): the archive watermark. Retention deletes nothing above it.
  archivedThrough: integer("archived_through").notNull().default(0),
  // The highest id the last archive run wrote (its last block may still be growing).
  archivedMaxId: integer("archived_max_id").notNull().default(0),
  archivedAt: integer("archived_at"),
  // Events with a timestamp before this were purged from D1 (those archived; see retention.ts).
  purgedBefore: integer("purged_before"),
  purgedAt: integer("purged_at"),
});

export type EventRow = typeof events.$inferSelect;
export type NewEventRow = typeof events.$inferInsert;

export const errorLog = sqliteTable(
  "error_log",
  {
    id: integer("id").primaryKey(),
    // invalid_event | malformed_message | consumer_failure | dead_letter
    kind: text("kind").notNull(),
    appId: text("app_id"),
    // When it happened: microseconds since the epoch, UTC.
    occurredAt: integer("occurred_at").notNull(),
    // What was refused, as JSON text, cut to a bounded size.
    payload: text("payload").notNull(),
    // Why, as a JSON array of {field, message}.
    reasons: text("reasons").notNull(),
    // The request id or queue message id it came from.
    source: text("source"),
    // What makes this entry itself, so a queue message redelivered after its D1 commit cannot
    // log it twice: the request id and event index of a refused event, the message id of a
    // malformed message or a dead letter, the message id and attempt of a consumer failure.
    dedupKey: text("dedup_key"),
  },
  (t) => [
    index("error_log_time").on(t.occurredAt),
    index("error_log_kind").on(t.kind, t.occurredAt),
    uniqueIndex("error_log_dedup").on(t.dedupKey),
  ],
);

export type ErrorLogRow = typeof errorLog.$inferSelect;
export type NewErrorLogRow = typeof errorLog.$inferInsert;

/** Applications: the trusted clients that send events. */
export const applications = sqliteTable("applications", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  // JSON array of origins allowed to send with this app's write keys; [] means any origin.
  allowedOrigins: text("allowed_origins").notNull().default("[]"),
  // Microseconds since the epoch, UTC.
  createdAt: integer("created_at").notNull(),
});

/**
 * Keys. Only the SHA-256 of a key is stored; the key itself is shown once, at creation.
 * A write key belongs to one application; a read key to one application or (app_id null) to all.
 */
export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    hash: text("hash").notNull().unique(),
    kind: text("kind", { enum: ["write", "read"] }).notNull(),
    appId: text("app_id").references(() => applications.id),
    // The key's first characters, to tell keys apart in listings without revealing them.
    prefix: text("prefix").notNull(),
    createdAt: integer("created_at").notNull(),
    // Set when revoked; a revoked key stops working within the key cache's TTL.
    revokedAt: integer("revoked_at"),
  },
  (t) => [index("api_keys_app").on(t.appId)],
);

export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type ApplicationRow = typeof applications.$inferSelect;
