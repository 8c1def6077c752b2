// The tables from before migration 0011 (the one events table with its 14 indexes, and its counts):
// kept in the schema (drizzle-kit reads this file beside schema.ts) until every database has been
// rebuilt into generations (maintain/rebuild.ts); nothing but the rebuild reads them.
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { uuidBlob } from "./schema";

/**
 * The events table before migration 0011 (one table, 14 indexes, ≈ 680 bytes and 15 rows written per
 * event): kept only until the rebuild (maintain/rebuild.ts) has moved its rows into generations.
 * New events never come here.
 */
export const legacyEvents = sqliteTable(
  "events",
  {
    // rowid: the tie-breaker that makes the timestamp order total, so pages never overlap.
    id: integer("id").primaryKey(),
    // The sending application's number (applications.num); 0 for events stored without one.
    // First in every filter index, so a read key scoped to one application reads its own rows only.
    app: integer("app").notNull(),
    // Client-sent UUID, or one the server derives from the event's content (validate.ts): with
    // app, the dedup key. Unique per application, so one application's ids never suppress another's.
    eventId: uuidBlob("event_id").notNull(),
    sessionId: text("session_id").notNull(),
    category: text("category").notNull(),
    name: text("name").notNull(),
    // The event's JSON object, stored as the text it was validated as.
    data: text("data").notNull(),
    // When the event happened: microseconds since the epoch, UTC.
    timestamp: integer("timestamp").notNull(),
    // When the Worker accepted it: microseconds since the epoch, UTC.
    receivedAt: integer("received_at").notNull(),
    // Where and on what it happened, from the request that sent it (context.ts): the row of
    // contexts, shared by every event with the same context, so an event pays a small integer
    // for it. NULL when its application turned context off (or it predates context).
    context: integer("context"),
    // The two context values events are filtered by, copied out of the context so a filtered
    // page is one index range: ISO 3166-1 alpha-2 country (Cloudflare's XX, T1 included), and
    // device type (desktop, mobile, tablet, tv, bot, other). NULL when unknown or context is off.
    country: text("country"),
    device: text("device"),
  },
  // One index per filter shape, each ending in timestamp (and implicitly rowid), so every
  // filtered page is an index range read in order, never a scan and sort: one set for reads
  // across all applications, one led by the application for reads scoped to it (so a tenant with
  // a thousandth of the events still reads one page). Sessions belong to one application and are
  // small, so their index serves both. (Merging per-application ranges instead of the global set
  // is not possible on D1: it allows 5 terms in a compound SELECT.)
  (t) => [
    uniqueIndex("events_event_id_app").on(t.eventId, t.app),
    index("events_timestamp").on(t.timestamp),
    index("events_session").on(t.sessionId, t.timestamp),
    index("events_category").on(t.category, t.timestamp),
    index("events_name").on(t.name, t.timestamp),
    index("events_category_name").on(t.category, t.name, t.timestamp),
    index("events_app_time").on(t.app, t.timestamp),
    index("events_app_category").on(t.app, t.category, t.timestamp),
    index("events_app_name").on(t.app, t.name, t.timestamp),
    index("events_app_category_name").on(t.app, t.category, t.name, t.timestamp),
    // Partial: events without the value (context off, unknown) take no entry, and `country = ?`
    // implies the index's condition, so SQLite uses it.
    index("events_country").on(t.country, t.timestamp).where(sql`country IS NOT NULL`),
    index("events_app_country").on(t.app, t.country, t.timestamp).where(sql`country IS NOT NULL`),
    index("events_device").on(t.device, t.timestamp).where(sql`device IS NOT NULL`),
    index("events_app_device").on(t.app, t.device, t.timestamp).where(sql`device IS NOT NULL`),
  ],
);

/**
 * Event counts per hour by a context value (dim 'country' or 'device'), kept beside event_counts
 * in the same batch and under the same four (category, name) shapes and two scopes: the stats
 * endpoint's and the count's country and device filters read these rows, never the events.
 * Events without the value are not counted here.
 */
export const contextCounts = sqliteTable(
  "context_counts",
  {
    dim: text("dim").notNull(),
    value: text("value").notNull(),
    category: text("category").notNull(),
    name: text("name").notNull(),
    app: integer("app").notNull(),
    hour: integer("hour").notNull(),
    n: integer("n").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.app, t.dim, t.value, t.category, t.name, t.hour] }),
    // As event_counts': every category for one name (or any), every name for one category (or
    // any), over an hour range, without reading other hours' rows.
    index("context_counts_app_name").on(t.app, t.dim, t.value, t.name, t.hour),
    index("context_counts_app_category").on(t.app, t.dim, t.value, t.category, t.hour),
  ],
);

/**
 * Event counts per hour, kept by the consumer in the same D1 batch as the events it stores,
 * so a `count` over a million matching events sums a few hundred rows instead of reading
 * a million. Each stored event counts once under each of four shapes: (category, name),
 * (category, ''), ('', name) and ('', ''); '' means "any" (real values are never empty); and
 * each of those once for its application and once for all applications (ALL_APPS), so a count
 * reads one row per hour whether it is scoped or not, however many applications there are.
 */
export const eventCounts = sqliteTable(
  "event_counts",
  {
    category: text("category").notNull(),
    name: text("name").notNull(),
    // The application's number (0 for events stored without one), or ALL_APPS.
    app: integer("app").notNull(),
    // floor(timestamp / 1 hour): the bucket the events' own timestamps fall in.
    hour: integer("hour").notNull(),
    n: integer("n").notNull(),
  },
  // The key serves a count of one series (a category, a name, both, or all); the two indexes serve
  // the stats endpoint's series side by side (stats.ts): every category for one name (or for any),
  // and every name for one category (or for any), over an hour range, without reading other
  // applications' or other hours' rows. Only new rows touch them: an upsert changes n alone.
  (t) => [
    primaryKey({ columns: [t.category, t.name, t.app, t.hour] }),
    index("event_counts_app_name").on(t.app, t.name, t.hour),
    index("event_counts_app_category").on(t.app, t.category, t.hour),
  ],
);

/** The highest events.id already counted in event_counts: the consumer counts rows above it. */
export const rollupMark = sqliteTable("rollup_mark", {
  id: integer("id").primaryKey(),
  lastId: integer("last_id").notNull(),
});
