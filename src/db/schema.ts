import { customType, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * A UUID stored as its 16 bytes (a BLOB) and read back as the usual lower-case text: 20 bytes
 * less per event in the table and again in the unique index than the 36-character text.
 */
export const uuidBlob = customType<{ data: string; driverData: ArrayBuffer | Uint8Array | number[] }>({
  dataType: () => "blob",
  toDriver: (uuid) => {
    const hex = uuid.replace(/-/g, "");
    return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
  },
  fromDriver: (value) => {
    const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : Uint8Array.from(value);
    return uuidOfHex(Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""));
  },
});

/** 32 hex digits as an event id's text, 8-4-4-4-12 lowercase. */
export const uuidOfHex = (h: string) =>
  `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`.toLowerCase();

/**
 * Contexts: where and on what events happened, one row per distinct context (a request's, which
 * every event it sent shares, and every later request from the same place and browser). `body` is
 * the context object's JSON text as the query API returns it; it never holds an IP address.
 */
export const contexts = sqliteTable(
  "contexts",
  {
    id: integer("id").primaryKey(),
    body: text("body").notNull(),
    // The two values events are filtered and counted by, copied out of the body.
    country: text("country"),
    device: text("device"),
    // The newest generation holding an event that points here: the row goes when that one does.
    gen: integer("gen").notNull().default(0),
  },
  (t) => [uniqueIndex("contexts_body").on(t.body)],
);

/**
 * The hot tier's generations: events live in one table per generation (events_g<n>, created by
 * the consumer, dropped by the maintenance; generations.ts), each a span of event time. Dropping a
 * whole generation costs no row writes, where deleting its rows one by one would cost one each.
 */
export const generations = sqliteTable("generations", {
  gen: integer("gen").primaryKey(),
  // The highest event id stored in it: the archive watermark must pass it before it can go.
  maxId: integer("max_id").notNull().default(0),
  // Microseconds since the epoch, UTC.
  createdAt: integer("created_at").notNull(),
});

/**
 * The applications each generation holds events of: a read across applications merges one range
 * per application there (the tables are clustered by application first), and no other.
 */
export const generationApps = sqliteTable(
  "generation_apps",
  {
    gen: integer("gen").notNull(),
    app: integer("app").notNull(),
  },
  (t) => [primaryKey({ columns: [t.gen, t.app] })],
);

/** Event types: each (category, name) once, stored in events as its number. */
export const eventTypes = sqliteTable(
  "event_types",
  {
    // AUTOINCREMENT: a number, once given, never means another type (readers cache them).
    id: integer("id").primaryKey({ autoIncrement: true }),
    category: text("category").notNull(),
    name: text("name").notNull(),
    // The newest generation holding an event of the type.
    gen: integer("gen").notNull(),
  },
  (t) => [uniqueIndex("event_types_key").on(t.category, t.name)],
);

/** Sessions: each application's session ids once, stored in events as their number. */
export const sessions = sqliteTable(
  "sessions",
  {
    // AUTOINCREMENT: a number, once given, never means another session (readers cache them).
    num: integer("num").primaryKey({ autoIncrement: true }),
    app: integer("app").notNull(),
    sessionId: text("session_id").notNull(),
    // The newest generation holding an event of the session.
    gen: integer("gen").notNull(),
  },
  (t) => [uniqueIndex("sessions_key").on(t.app, t.sessionId)],
);

/**
 * What each consumer batch stored, until the archive has it: the batch's ids and, per event, where
 * its row is ([gen, app, timestamp, id] as JSON). The archive and the export read events above the
 * watermark through these rows (generation tables have no index by id); one row per batch.
 */
export const arrivals = sqliteTable("arrivals", {
  firstId: integer("first_id").primaryKey(),
  lastId: integer("last_id").notNull(),
  keys: text("keys").notNull(),
});

/**
 * Hourly counts per generation: as event_counts (four (category, name) shapes, per application
 * and for all), and kept by the consumer in the same batch as the events, with the generation the
 * events are in, so dropping a generation takes its counts with it.
 */
export const typeCounts = sqliteTable(
  "type_counts",
  {
    category: text("category").notNull(),
    name: text("name").notNull(),
    app: integer("app").notNull(),
    hour: integer("hour").notNull(),
    gen: integer("gen").notNull(),
    n: integer("n").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.category, t.name, t.app, t.hour, t.gen] }),
    index("type_counts_app_name").on(t.app, t.name, t.hour),
    index("type_counts_app_category").on(t.app, t.category, t.hour),
    index("type_counts_gen").on(t.gen),
  ],
);

/** Hourly counts by country and by device per generation, as context_counts. */
export const contextValueCounts = sqliteTable(
  "context_value_counts",
  {
    dim: text("dim").notNull(),
    value: text("value").notNull(),
    category: text("category").notNull(),
    name: text("name").notNull(),
    app: integer("app").notNull(),
    hour: integer("hour").notNull(),
    gen: integer("gen").notNull(),
    n: integer("n").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.app, t.dim, t.value, t.category, t.name, t.hour, t.gen] }),
    index("context_value_counts_app_name").on(t.app, t.dim, t.value, t.name, t.hour),
    index("context_value_counts_app_category").on(t.app, t.dim, t.value, t.category, t.hour),
    index("context_value_counts_gen").on(t.gen),
  ],
);

/** event_counts.app of the rows that count every application's events. */
export const ALL_APPS = -1;

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
  // The next event id to hand out: ids come from here, never twice, in arrival order.
  nextId: integer("next_id").notNull().default(1),
  // How much event time one generation spans, in microseconds (set once; generations.ts).
  genSpan: integer("gen_span"),
  // The rebuild of the pre-0011 events table: the highest legacy id moved so far (null: not started).
  rebuiltThrough: integer("rebuilt_through"),
  // When the byte budget last cut the hot window below HOT_DAYS, and the last report of it (µs).
  budgetCutAt: integer("budget_cut_at"),
  budgetReportedAt: integer("budget_reported_at"),
});

/** An event as every reader gets it (the generation tables store numbers; event-reads.ts joins them back). */
export interface EventRow {
  id: number;
  app: number;
  eventId: string;
  sessionId: string;
  category: string;
  name: string;
  data: string;
  timestamp: number;
  receivedAt: number;
}

/** An event to store: its application by number, its context as the JSON text of a contexts row. */
export interface NewEventRow {
  app: number;
  eventId: string;
  sessionId: string;
  category: string;
  name: string;
  data: string;
  timestamp: number;
  receivedAt: number;
  contextBody?: string | null;
  country?: string | null;
  device?: string | null;
}

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
    // A refused event's type as sent (when it sent strings there), for the monitoring filters.
    category: text("category"),
    name: text("name"),
    // The first reason's field (`timestamp`, `data/price`) and rule (`future`, a JSON Schema
    // keyword such as `minimum`, zod's issue code): what the event was refused for first.
    field: text("field"),
    rule: text("rule"),
  },
  (t) => [
    index("error_log_time").on(t.occurredAt),
    index("error_log_kind").on(t.kind, t.occurredAt),
    index("error_log_app").on(t.appId, t.occurredAt),
    index("error_log_type").on(t.category, t.name, t.occurredAt),
    index("error_log_field").on(t.field, t.occurredAt),
    uniqueIndex("error_log_dedup").on(t.dedupKey),
  ],
);

/**
 * Error-log entries counted per hour as they are written (by a trigger on error_log, so an
 * entry a redelivery does not insert again is not counted again): `GET /api/errors/summary`
 * sums these rows and never scans the log. '' stands for "none" in each text column.
 */
export const errorCounts = sqliteTable(
  "error_counts",
  {
    // floor(occurred_at / 1 hour).
    hour: integer("hour").notNull(),
    appId: text("app_id").notNull(),
    kind: text("kind").notNull(),
    category: text("category").notNull(),
    name: text("name").notNull(),
    field: text("field").notNull(),
    rule: text("rule").notNull(),
    n: integer("n").notNull(),
  },
  // The key leads with the hour (a summary across applications, retention); error_counts_app
  // serves a summary scoped to one application, which then reads its own rows only.
  (t) => [
    primaryKey({ columns: [t.hour, t.appId, t.kind, t.category, t.name, t.field, t.rule] }),
    index("error_counts_app").on(t.appId, t.hour),
  ],
);

/**
 * JSON Schemas for event payloads, one per event type (category, name), for every application
 * (app_id '') or for one, which then takes precedence. Written by the operator CLI
 * (`npm run schemas`), which refuses a schema that is invalid or too costly to check.
 */
export const payloadSchemas = sqliteTable(
  "payload_schemas",
  {
    category: text("category").notNull(),
    name: text("name").notNull(),
    appId: text("app_id").notNull().default(""),
    // The schema's JSON text, as registered.
    schema: text("schema").notNull(),
    // Microseconds since the epoch, UTC.
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.category, t.name, t.appId] }), index("payload_schemas_app").on(t.appId)],
);

export type PayloadSchemaRow = typeof payloadSchemas.$inferSelect;

export type ErrorLogRow = typeof errorLog.$inferSelect;
export type NewErrorLogRow = typeof errorLog.$inferInsert;

/** Applications: the trusted clients that send events. */
export const applications = sqliteTable("applications", {
  id: text("id").primaryKey(),
  // The application's number in events and counts (1, 2, …), assigned by a trigger on insert.
  num: integer("num").unique(),
  name: text("name").notNull(),
  // JSON array of origins allowed to send with this app's write keys; [] means any origin.
  allowedOrigins: text("allowed_origins").notNull().default("[]"),
  // What context its events get (context.ts): 'on' (all of it), 'country' (the country alone, no
  // finer location), 'off' (none). Set with `npm run keys -- set-context`.
  context: text("context", { enum: ["on", "country", "off"] })
    .notNull()
    .default("on"),
  // Microseconds since the epoch, UTC.
  createdAt: integer("created_at").notNull(),
});

/** What an application's events get (applications.context). */
export type ContextMode = (typeof applications.$inferSelect)["context"];

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

/**
 * Erasure requests (GDPR/CCPA), written by the operator CLI (`npm run erase`) and carried out by
 * the scheduled maintenance in bounded steps (erasure.ts); each row stays as the audit of what was
 * erased and when. It holds the identifiers the request named (the session id, or the event ids)
 * and counts per store, never an erased event's content. Times are microseconds.
 */
export const erasures = sqliteTable(
  "erasures",
  {
    id: integer("id").primaryKey(),
    // The application whose events are erased (applications.id, as the operator named it).
    appId: text("app_id").notNull(),
    // 'session': every event of one session_id; 'events': the events of a list of event ids.
    kind: text("kind", { enum: ["session", "events"] }).notNull(),
    // The session id, or the event ids as a JSON array of UUIDs.
    target: text("target").notNull(),
    // pending → running → done. `step` says where a running erasure stands: 'd1' (deleting rows and
    // their counts), then 'archive' (the manifest's objects, resuming after `archive_cursor`), then
    // 'legacy' (the older archive's gzip NDJSON objects, resuming after `archive_cursor`).
    status: text("status", { enum: ["pending", "running", "done"] })
      .notNull()
      .default("pending"),
    step: text("step", { enum: ["d1", "archive", "legacy"] }),
    requestedAt: integer("requested_at").notNull(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
    // The archive objects read: every object of this application (`scan_basis` 'all', no bounds), or
    // (`operator`, --from/--to) those whose events' times meet [scan_after, scan_before], the window
    // widened when the erasure starts to the span of the rows D1 still holds (erasure.ts).
    scanAfter: integer("scan_after"),
    scanBefore: integer("scan_before"),
    scanBasis: text("scan_basis"),
    // The last archive object finished, in key order: where a resumed archive step continues.
    archiveCursor: text("archive_cursor"),
    // The older archive's object being rewritten in place and how many lines it loses, written before
    // the R2 write: a run stopped before the counts moved finds the object clean and counts its lines once.
    pendingKey: text("pending_key"),
    pendingEvents: integer("pending_events"),
    // What was erased, per store: rows deleted from D1, of which taken out of the hourly counts,
    // archive objects read and rewritten (or deleted when nothing else was left in them), archive lines removed.
    d1Events: integer("d1_events").notNull().default(0),
    countedEvents: integer("counted_events").notNull().default(0),
    archiveObjectsRead: integer("archive_objects_read").notNull().default(0),
    archiveObjectsRewritten: integer("archive_objects_rewritten").notNull().default(0),
    archiveEvents: integer("archive_events").notNull().default(0),
  },
  (t) => [index("erasures_status").on(t.status, t.id)],
);

export type ErasureRow = typeof erasures.$inferSelect;

/**
 * The archive's own state (one row, id 1, made by the first archive run), beside storage_state's
 * watermark: the manifest's version, the id range being written, and where the older archive ends.
 */
export const archiveState = sqliteTable("archive_state", {
  id: integer("id").primaryKey(),
  // Moves by one with every change to the set of live objects (a range done, a compaction or an
  // erasure swapped in): a reader that noted it reads the set as it was then (live_from, live_until).
  version: integer("version").notNull().default(0),
  // The highest live_until among the objects forgotten (their rows deleted, days after their R2
  // objects): a reader of an older version can no longer see all it should, and must stop.
  forgottenVersion: integer("forgotten_version").notNull().default(0),
  // The id range (pending_after, pending_through] recorded before its objects are written, and its
  // objects' rows in archive_objects (state 'pending'): a run that stops in between writes the same
  // objects again. Null when no range is being written.
  pendingAfter: integer("pending_after"),
  pendingThrough: integer("pending_through"),
  // The archive watermark when the first archive run of the manifest started: the gzip NDJSON objects
  // written before (hour partitions, events/…/hour=HH/part-<first id>.ndjson.gz) hold ids up to here
  // and are found by listing R2, not here. Those named by the block then still growing (first id
  // legacy_through + 1) hold only ids up to legacy_open_through, archived again as Parquet: they go.
  legacyThrough: integer("legacy_through").notNull().default(0),
  legacyOpenThrough: integer("legacy_open_through").notNull().default(0),
});

/**
 * The archive manifest: every Parquet object in R2 with its partition, its id range and its state.
 * Readers (the export, erasure, compaction, `npm run lake`) read this, never an R2 listing, so they
 * never see an object twice while a compaction replaces several by one. Times are microseconds.
 */
export const archiveObjects = sqliteTable(
  "archive_objects",
  {
    key: text("key").primaryKey(),
    // The partition: the application's id (archive/objects.ts NO_APP_PARTITION for none) and the
    // events' date, UTC (YYYY-MM-DD).
    app: text("app").notNull(),
    date: text("date").notNull(),
    // Every row's seq (events.id) lies in [first_id, last_id]; the live objects of one partition
    // have disjoint ranges (a range's objects cover it; a compaction merges neighbours).
    firstId: integer("first_id").notNull(),
    lastId: integer("last_id").notNull(),
    events: integer("events").notNull(),
    // The object's size, and its rows' text (what a reader decodes: compaction's memory bound).
    bytes: integer("bytes").notNull().default(0),
    textBytes: integer("text_bytes").notNull(),
    minTimestamp: integer("min_timestamp").notNull(),
    maxTimestamp: integer("max_timestamp").notNull(),
    // 'range' (an id range as archived), 'compaction' (neighbours merged), 'erasure' (rewritten without erased rows).
    origin: text("origin", { enum: ["range", "compaction", "erasure"] }).notNull(),
    // 'pending': recorded before it is written, read by nobody; 'live'; 'retired': replaced by
    // `replaced_by`, still in R2 until `delete_after` (the grace period); 'gone': deleted from R2, its
    // row kept until `delete_after` so a reader of an older version still finds the replacement.
    state: text("state", { enum: ["pending", "live", "retired", "gone"] }).notNull(),
    // The manifest versions (archive_state.version) it became live at and was retired at.
    liveFrom: integer("live_from"),
    liveUntil: integer("live_until"),
    // The object that replaces it: planned (a pending compaction's output) or done (it is retired).
    replacedBy: text("replaced_by"),
    deleteAfter: integer("delete_after"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    index("archive_objects_partition").on(t.app, t.date, t.firstId),
    index("archive_objects_ids").on(t.lastId),
    index("archive_objects_state").on(t.state, t.deleteAfter),
    index("archive_objects_replaced_by").on(t.replacedBy),
  ],
);

export type ArchiveObjectRow = typeof archiveObjects.$inferSelect;
