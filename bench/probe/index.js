// The bench's probe: the real Worker (src/index.ts), run unchanged inside the same local runtime,
// with its D1 and Queue bindings wrapped to count and record what it does. wrangler bundles it
// with a config generated from the project's wrangler.toml (same bindings), see bench/lib/probe.mjs.
//
//   any request          → the real app (`x-bench-stub: limiter,queue` swaps those bindings for no-ops); with header `x-bench-probe: 1` the answer is instead a JSON
//                          report of the D1 statements the request ran, each with D1's meta.rows_read
//   queue batches        → the real queue() handler, counting messages, D1 batches and statements
//   GET  /__bench/counters, POST /__bench/counters/reset
//   POST /__bench/consume?variant=real|values12|json_each   body: {"messages": [queue message bodies]}
//                          → one consumer batch, stored by the real handler or a prototype insert
//   POST /__bench/reset-events  → DELETE FROM events, and their counts (event_counts, rollup_mark); on the hot tier's
//                          schema (issue 16) the generation tables are dropped and their dictionaries, counts and arrivals deleted
//   POST /__bench/rebuild?budget_ms=N → the maintenance's rebuild step alone (src/maintain/rebuild.ts: legacy events into
//                          generations), metered, with the longest D1 call (batch or statement) in meter.maintain.maxCallMs
//   POST /__bench/consumer-mode?mode=real|json_each|values12  → which insert the probe's queue() uses
//   GET  /__bench/consumer-around → the statements the real insertAll() runs around its event INSERTs
//   GET  /__bench/ok        → "ok" (the trivial Worker, inside the probe)
//   POST /__bench/d1/register {"shapes": [[{sql, params}]]}, GET /__bench/d1?i=N[&batch=1] → shape N's statements on D1 alone (in parallel, or as one batch)
//   POST /__bench/profile?part=parse|validate|pack&rounds=K   body: a POST body
//                          → runs that much of the ingest path K times (the bench reads workerd's CPU around it)
//   POST /__bench/meter?on=1|0 (resets), GET /__bench/meter → what the bindings did while metering was on:
//                          requests, queue messages and their JSON bytes, and D1's meta.rows_read / rows_written
//                          summed per statement, for fetch (requests with `x-bench-meter: 1`), queue() and maintain
//   POST /__bench/maintain[?now_ms=T] → the real scheduled maintenance (src/maintain/scheduled.ts: archive, compaction,
//                          erasure, retention), metered, with R2 puts, lists and bytes counted; answers its run and the
//                          meter; with now_ms its clock starts at T (a simulated day's runs)
//   GET  /__bench/manifest  → the archive manifest's objects, events, bytes and text bytes by state and origin, and the live keys
//   GET  /__bench/archive   → every object in the ARCHIVE bucket: key, size, events (custom metadata)
//   GET  /__bench/archive-object?key=K → that object's stored (gzip) bytes
//   POST /__bench/erase {"app", "kind", "target"} → records an erasure request as `npm run erase` does
//   POST /__bench/erase-due?budget_ms=N → the maintenance's erasure step alone (src/maintain/erasure.ts), metered
//   GET  /__bench/erasure?id=N → the request's row (its audit)
//   scheduled               → the real scheduled() (`wrangler dev --test-scheduled` answers /__scheduled)
import { drizzle } from "drizzle-orm/d1";
import { plan } from "../../src/consume/consumer";
import { numbersOf } from "../../src/db/applications";
import { insertAll } from "../../src/db/event-insert";
import { forgetGenerations } from "../../src/db/generations";
import worker from "../../src/index";
import { eventMessages } from "../../src/ingest/messages";
import { eventsOf, validateEvents } from "../../src/ingest/validate";
import { eraseDue } from "../../src/maintain/erasure";
import { rebuildLegacy } from "../../src/maintain/rebuild";
import { maintain } from "../../src/maintain/scheduled";
import { limitsFrom, storageFrom } from "../../src/shared/config";

const counters = fresh();
function fresh() {
  return {
    sendCalls: 0,
    sendBatchCalls: 0,
    messagesSent: 0,
    eventsInMessages: 0,
    queueBatches: 0,
    queueMessages: 0,
    consumerRows: 0,
    consumerBatchRows: [],
    d1Batches: 0,
    d1BatchStatements: 0,
    d1SingleStatements: 0,
  };
}

// Metering (off unless the bench turns it on): what each binding call would be billed for.
let metering = false;
let meter = freshMeter();
function freshMeter() {
  const d1 = () => ({ statements: 0, rowsRead: 0, rowsWritten: 0, bySql: {}, maxCallMs: 0, maxDurationMs: 0 });
  return {
    requests: 0,
    messages: 0,
    messageBytes: [],
    fetch: d1(),
    queue: d1(),
    maintain: d1(),
    r2: { puts: 0, putBytes: 0, lists: 0, gets: 0, deletes: 0 },
  };
}
const utf8 = new TextEncoder();
/** Adds one statement's D1 meta to a role's totals, keyed by the statement's first words. */
function addMeta(role, sql, meta) {
  if (!meta) return;
  const m = meter[role];
  m.statements++;
  m.rowsRead += meta.rows_read ?? 0;
  m.rowsWritten += meta.rows_written ?? 0;
  m.maxDurationMs = Math.max(m.maxDurationMs, meta.duration ?? 0);
  const key = sql.replace(/\s+/g, " ").trim().slice(0, 90);
  m.bySql[key] ??= { n: 0, rowsRead: 0, rowsWritten: 0 };
  const e = m.bySql[key];
  e.n++;
  e.rowsRead += meta.rows_read ?? 0;
  e.rowsWritten += meta.rows_written ?? 0;
}
/**
 * A D1 database whose every statement adds D1's meta (rows_read, rows_written) to `role`. run() and
 * all() return the meta; a read through raw() or first() does not, so a SELECT read that way is run
 * once more with all() for it (reads only: nothing is written twice).
 */
function meteredDb(db, role) {
  const statement = (inner, sql) => ({
    __inner: inner,
    __sql: sql,
    bind: (...p) => statement(inner.bind(...p), sql),
    run: async () => {
      const t0 = Date.now();
      const r = await inner.run();
      meter[role].maxCallMs = Math.max(meter[role].maxCallMs, Date.now() - t0);
      addMeta(role, sql, r.meta);
      return r;
    },
    all: async () => {
      const t0 = Date.now();
      const r = await inner.all();
      meter[role].maxCallMs = Math.max(meter[role].maxCallMs, Date.now() - t0);
      addMeta(role, sql, r.meta);
      return r;
    },
    raw: async (o) => {
      const r = await inner.raw(o);
      if (/^\s*(select|with)\b/i.test(sql)) addMeta(role, sql, (await inner.all()).meta);
      return r;
    },
    first: async (c) => {
      const r = await inner.first(c);
      if (/^\s*(select|with)\b/i.test(sql)) addMeta(role, sql, (await inner.all()).meta);
      return r;
    },
  });
  const wrapped = {
    prepare: (sql) => statement(db.prepare(sql), sql),
    batch: async (stmts) => {
      const t0 = Date.now();
      const results = await db.batch(stmts.map((x) => x.__inner ?? x));
      meter[role].maxCallMs = Math.max(meter[role].maxCallMs, Date.now() - t0);
      for (const [i, r] of results.entries()) addMeta(role, stmts[i].__sql ?? "?", r.meta);
      return results;
    },
    exec: (sql) => db.exec(sql),
    dump: () => db.dump(),
    withSession: (...a) => {
      const session = db.withSession(...a);
      return { ...meteredDb(session, role), getBookmark: () => session.getBookmark() };
    },
  };
  return wrapped;
}
/** An R2 bucket that counts Class A calls (put, list) with the bytes put, and gets (Class B). */
function meteredBucket(bucket) {
  return {
    put: (key, value, o) => {
      meter.r2.puts++;
      meter.r2.putBytes += value?.byteLength ?? value?.length ?? 0;
      return bucket.put(key, value, o);
    },
    list: (o) => {
      meter.r2.lists++;
      return bucket.list(o);
    },
    get: (key, o) => {
      meter.r2.gets++;
      return bucket.get(key, o);
    },
    head: (key) => {
      meter.r2.gets++;
      return bucket.head(key);
    },
    delete: (k) => {
      meter.r2.deletes++;
      return bucket.delete(k);
    },
  };
}

/** A D1 statement that tells `onRun` what it runs. */
function wrapStatement(inner, sql, params, onRun) {
  const run = (method, fn) => {
    onRun(sql, params, method);
    return fn();
  };
  return {
    __inner: inner,
    __sql: sql,
    __params: params,
    bind: (...p) => wrapStatement(inner.bind(...p), sql, p, onRun),
    all: () => run("all", () => inner.all()),
    raw: (o) => run("raw", () => inner.raw(o)),
    first: (c) => run("first", () => inner.first(c)),
    run: () => run("run", () => inner.run()),
  };
}

/** A D1 database that reports single statements to `onRun` and batches to `onBatch`. */
function wrapDb(db, { onRun = () => {}, onBatch = () => {} }) {
  return {
    prepare: (sql) => wrapStatement(db.prepare(sql), sql, [], onRun),
    batch: (stmts) => {
      onBatch(stmts.map((s) => ({ sql: s.__sql, params: s.__params })));
      return db.batch(stmts.map((s) => s.__inner ?? s));
    },
    exec: (sql) => db.exec(sql),
    dump: () => db.dump(),
    // GET routes read through a D1 session (src/request/read-session.ts): its statements are reported too.
    withSession: (...a) => {
      const session = db.withSession(...a);
      return { ...wrapDb(session, { onRun, onBatch }), getBookmark: () => session.getBookmark() };
    },
  };
}

function wrapQueue(queue) {
  const count = (body) => {
    counters.messagesSent++;
    if (body && body.kind === "events") counters.eventsInMessages += body.events.length;
    if (metering) {
      meter.messages++;
      meter.messageBytes.push(utf8.encode(JSON.stringify(body)).length);
    }
  };
  return {
    send: (body, o) => {
      counters.sendCalls++;
      count(body);
      return queue.send(body, o);
    },
    sendBatch: (msgs, o) => {
      counters.sendBatchCalls++;
      for (const m of msgs) count(m.body);
      return queue.sendBatch(msgs, o);
    },
  };
}

const NOOP_QUEUE = { send: async () => {}, sendBatch: async () => {} };
const NOOP_LIMITER = { limit: async () => ({ success: true }) };

function envWith(env, overrides) {
  return new Proxy(env, { get: (t, k) => (k in overrides ? overrides[k] : t[k]) });
}

const countingDb = (db) =>
  wrapDb(db, {
    onRun: () => counters.d1SingleStatements++,
    onBatch: (stmts) => {
      counters.d1Batches++;
      counters.d1BatchStatements += stmts.length;
    },
  });

const json = (value, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

// The events table as src/db/schema.ts has it: the application's number first, the event_id as its
// 16 bytes (unhex of the UUID without dashes, as src/db/event-reads.ts inserts it).
const EVENT_COLUMNS = "app, event_id, session_id, category, name, data, timestamp, received_at";
const tupleOf = (r) => [r.app, r.eventId, r.sessionId, r.category, r.name, r.data, r.timestamp, r.receivedAt];

/** The prototype: rows inserted as one JSON parameter per chunk through json_each, not 12-row VALUES. */
const JSON_EACH_SQL =
  `INSERT INTO events (${EVENT_COLUMNS}) ` +
  "SELECT value->>0, unhex(replace(value->>1, '-', '')), value->>2, value->>3, value->>4, value->>5, value->>6, value->>7 " +
  "FROM json_each(?) WHERE true ON CONFLICT DO NOTHING";
const JSON_CHUNK_BYTES = 512 * 1024;

/** The SQL of statements the probe builds itself (D1 statements do not expose it). */
const sqlOf = new WeakMap();
function prep(db, sql, params) {
  const stmt = db.prepare(sql).bind(...params);
  sqlOf.set(stmt, sql);
  return stmt;
}

function jsonEachStatements(db, rows) {
  const stmts = [];
  let chunk = [];
  let bytes = 2;
  const flush = () => {
    if (chunk.length) stmts.push(prep(db, JSON_EACH_SQL, [`[${chunk.join(",")}]`]));
    chunk = [];
    bytes = 2;
  };
  for (const r of rows) {
    const text = JSON.stringify(tupleOf(r));
    if (bytes + text.length + 1 > JSON_CHUNK_BYTES) flush();
    chunk.push(text);
    bytes += text.length + 1;
  }
  flush();
  return stmts;
}

/** A D1 stand-in that records the statements of one batch and runs nothing. */
function recordingDb(onBatch) {
  const stmt = (sql, params) => ({
    __sql: sql,
    __params: params,
    bind: (...p) => stmt(sql, p),
    all: async () => ({ results: [], success: true, meta: {} }),
    raw: async () => [],
    first: async () => null,
    run: async () => ({ results: [], success: true, meta: {} }),
  });
  return {
    prepare: (sql) => stmt(sql, []),
    batch: async (stmts) => {
      onBatch(stmts.map((x) => ({ sql: x.__sql, params: x.__params })));
      return stmts.map(() => ({ results: [], success: true, meta: {} }));
    },
  };
}

const isEventInsert = (sql) => /^\s*insert\s+into\s+"?events"?\s/i.test(sql);
let around;
/**
 * What the real insertAll() sends around its event INSERTs in the same D1 batch (e.g. the count
 * rollup's mark and roll-up statements), recorded once from the real code, so the prototypes do
 * the same work apart from how the rows go in.
 */
async function statementsAround() {
  if (around) return around;
  let captured = [];
  const row = {
    app: 0,
    eventId: "00000000-0000-8000-8000-000000000000",
    sessionId: "s",
    category: "c",
    name: "n",
    data: "{}",
    timestamp: 0,
    receivedAt: 0,
  };
  await insertAll(drizzle(recordingDb((c) => (captured = c))), [row], []);
  const first = captured.findIndex((c) => isEventInsert(c.sql));
  const last = captured.length - 1 - [...captured].reverse().findIndex((c) => isEventInsert(c.sql));
  around = { before: captured.slice(0, first), after: captured.slice(last + 1) };
  return around;
}

async function withAround(db, inserts) {
  const { before, after } = await statementsAround();
  const bind = (c) => prep(db, c.sql, c.params);
  return [...before.map(bind), ...inserts, ...after.map(bind)];
}

/** The same statements the handler's drizzle insert makes (12 rows × 8 columns ≤ 100 parameters), without drizzle. */
function rawValuesStatements(db, rows) {
  const stmts = [];
  for (let i = 0; i < rows.length; i += 12) {
    const c = rows.slice(i, i + 12);
    const sql =
      `INSERT INTO events (${EVENT_COLUMNS}) VALUES ` +
      c.map(() => "(?, unhex(replace(?, '-', '')), ?, ?, ?, ?, ?, ?)").join(", ") +
      " ON CONFLICT DO NOTHING";
    stmts.push(prep(db, sql, c.flatMap(tupleOf)));
  }
  return stmts;
}

function fakeBatch(bodies) {
  const state = { acked: 0, retried: 0 };
  const messages = bodies.map((body, i) => ({
    id: `bench-${i}`,
    timestamp: new Date(),
    body,
    attempts: 1,
    ack: () => state.acked++,
    retry: () => state.retried++,
  }));
  return {
    state,
    batch: {
      queue: "the-eye-events",
      messages,
      ackAll: () => (state.acked += messages.length),
      retryAll: () => (state.retried += messages.length),
    },
  };
}

/** What kinds of statements a consumer batch sent: "2 json_each INSERT + 2 other" and the like. */
function describe(sqls) {
  const k = { json_each: 0, values: 0, other: 0 };
  for (const sql of sqls) {
    if (!isEventInsert(sql)) k.other++;
    else if (/json_each/i.test(sql)) k.json_each++;
    else k.values++;
  }
  const parts = [];
  if (k.json_each) parts.push(`${k.json_each} INSERT…json_each`);
  if (k.values) parts.push(`${k.values} INSERT…VALUES`);
  if (k.other) parts.push(`${k.other} other`);
  return { statements: sqls.length, shape: parts.join(" + ") };
}

/** plan()'s rows name their application by id; stored rows carry its number, as the real store() looks it up. */
async function numbered(db, planned) {
  const nums = await numbersOf(drizzle(db), new Set(planned.map((e) => e.appId)));
  return planned.map(({ appId, ...e }) => ({ ...e, app: nums.get(appId) }));
}

/** The prototypes' statements for a batch's rows: 12-row VALUES INSERTs, or json_each, with insertAll()'s other statements. */
async function prototypeStatements(db, variant, rows) {
  return withAround(db, variant === "json_each" ? jsonEachStatements(db, rows) : rawValuesStatements(db, rows));
}

async function consume(request, env, ctx, variant) {
  const { messages } = await request.json();
  const t0 = Date.now();
  if (variant === "real") {
    const { state, batch } = fakeBatch(messages);
    const sqls = [];
    const db = wrapDb(metering ? meteredDb(env.DB, "queue") : env.DB, {
      onRun: (sql) => sqls.push(sql),
      onBatch: (stmts) => sqls.push(...stmts.map((x) => x.sql)),
    });
    await worker.queue(batch, envWith(env, { DB: db }), ctx);
    return { ...state, ms: Date.now() - t0, ...describe(sqls) };
  }
  const { batch } = fakeBatch(messages);
  const rows = await numbered(
    env.DB,
    batch.messages.flatMap((m) => plan(m).events),
  );
  const stmts = await prototypeStatements(env.DB, variant, rows);
  await env.DB.batch(stmts);
  return {
    acked: messages.length,
    retried: 0,
    rows: rows.length,
    ms: Date.now() - t0,
    ...describe(stmts.map((x) => sqlOf.get(x) ?? "")),
  };
}

let consumerMode = "real";

/** Statements registered by the bench for GET /__bench/d1?i= (one list per query shape). */
let registered = [];

/**
 * The prototype consumers: the real handler's plan(), then the events of the whole batch in one D1
 * batch of json_each or 12-row VALUES INSERTs (with the statements insertAll() runs around its
 * INSERTs), then ack. (Only event messages: the bench sends no invalid ones.)
 */
async function consumePrototype(batch, env, variant) {
  const plans = batch.messages.map(plan);
  const rows = await numbered(
    env.DB,
    plans.flatMap((p) => p.events),
  );
  counters.queueBatches++;
  counters.queueMessages += batch.messages.length;
  counters.consumerRows += rows.length;
  counters.consumerBatchRows.push(rows.length);
  try {
    const stmts = await prototypeStatements(env.DB, variant, rows);
    counters.d1Batches++;
    counters.d1BatchStatements += stmts.length;
    if (stmts.length) await env.DB.batch(stmts);
    for (const p of plans) p.message.ack();
  } catch (err) {
    for (const p of plans) p.message.retry({ delaySeconds: 2 });
    throw err;
  }
}

/** The ingest path's own code, without HTTP, auth or the queue: parse, + validate, + pack into messages. */
async function profile(request, env, url) {
  const text = await request.text();
  const part = url.searchParams.get("part") ?? "pack";
  const rounds = Number(url.searchParams.get("rounds") ?? 10);
  const limits = limitsFrom(env);
  let events = 0;
  for (let i = 0; i < rounds; i++) {
    const value = JSON.parse(text);
    const candidates = eventsOf(value, limits.maxEventsPerRequest);
    events += candidates.length;
    if (part === "parse") continue;
    const { accepted } = await validateEvents(candidates, limits, Date.now() * 1000, "app_dev");
    if (part === "validate") continue;
    for (const m of eventMessages(accepted, "app_dev", Date.now() * 1000)) JSON.stringify(m);
  }
  return { part, rounds, events };
}

/** Runs the real app and reports the D1 statements of the request, with rows_read as D1 counts them. */
async function probeRequest(request, env, ctx) {
  const ran = [];
  const db = wrapDb(env.DB, {
    onRun: (sql, params, method) => ran.push({ sql, params, method }),
    onBatch: (stmts) => ran.push(...stmts.map((s) => ({ ...s, method: "batch" }))),
  });
  const res = await worker.fetch(request, envWith(env, { DB: db }), ctx);
  const body = await res.text();
  // Each statement again, alone, for its meta (drizzle's raw() calls do not return it).
  const statements = [];
  for (const s of ran) {
    const r = await env.DB.prepare(s.sql)
      .bind(...s.params)
      .all();
    statements.push({
      ...s,
      rows_read: r.meta.rows_read,
      rows_returned: r.results.length,
      duration_ms: r.meta.duration,
    });
  }
  return json({ status: res.status, bytes: body.length, statements, response: body.slice(0, 2000) });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/counters") {
      if (request.method === "POST") Object.assign(counters, fresh());
      return json(counters);
    }
    if (url.pathname === "/__bench/consume")
      return json(await consume(request, env, ctx, url.searchParams.get("variant") ?? "real"));
    if (url.pathname === "/__bench/consumer-mode") {
      if (request.method === "POST") consumerMode = url.searchParams.get("mode") ?? "real";
      return json({ consumerMode });
    }
    if (url.pathname === "/__bench/consumer-around") return json(await statementsAround());
    if (url.pathname === "/__bench/ok") return new Response("ok");
    if (url.pathname === "/__bench/d1/register") {
      registered = (await request.json()).shapes;
      return json({ shapes: registered.length });
    }
    if (url.pathname === "/__bench/d1") {
      // One shape's statements straight on D1, as the route runs them (in parallel), without the app.
      const stmts = registered[Number(url.searchParams.get("i"))];
      if (url.searchParams.get("batch") === "1") {
        // The alternative: all of the page's statements in one D1 batch (one round trip).
        const results = await env.DB.batch(stmts.map((st) => env.DB.prepare(st.sql).bind(...st.params)));
        return json({ rows: results.reduce((n, r) => n + r.results.length, 0) });
      }
      const results = await Promise.all(
        stmts.map((st) =>
          env.DB.prepare(st.sql)
            .bind(...st.params)
            .raw(),
        ),
      );
      return json({ rows: results.reduce((n, r) => n + r.length, 0) });
    }
    if (url.pathname === "/__bench/profile") return json(await profile(request, env, url));
    if (url.pathname === "/__bench/meter") {
      if (request.method === "POST") {
        meter = freshMeter();
        metering = url.searchParams.get("on") === "1";
      }
      return json(meter);
    }
    if (url.pathname === "/__bench/maintain") {
      const start = Date.now();
      const from = Number(url.searchParams.get("now_ms") ?? start);
      const run = await maintain(
        envWith(env, { DB: meteredDb(env.DB, "maintain"), ARCHIVE: meteredBucket(env.ARCHIVE) }),
        () => from + (Date.now() - start),
      );
      return json({ run, meter });
    }
    if (url.pathname === "/__bench/manifest") {
      const rows = await env.DB.prepare(
        "SELECT state, origin, count(*) AS objects, coalesce(sum(events), 0) AS events, coalesce(sum(bytes), 0) AS bytes, coalesce(sum(text_bytes), 0) AS text_bytes FROM archive_objects GROUP BY state, origin",
      ).all();
      const keys = await env.DB.prepare("SELECT key FROM archive_objects WHERE state = 'live' ORDER BY key").all();
      return json({ rows: rows.results, live: keys.results.map((r) => r.key) });
    }
    if (url.pathname === "/__bench/erase") {
      // What `npm run erase -- session <app_id> <session_id>` writes (scripts/erase.mjs).
      const { app, kind = "session", target } = await request.json();
      const row = await env.DB.prepare(
        "INSERT INTO erasures (app_id, kind, target, requested_at) VALUES (?, ?, ?, ?) RETURNING id",
      )
        .bind(app, kind, target, Date.now() * 1000)
        .first();
      return json(row);
    }
    if (url.pathname === "/__bench/erase-due") {
      const budget = Number(url.searchParams.get("budget_ms") ?? 20_000);
      const run = await eraseDue(drizzle(meteredDb(env.DB, "maintain")), meteredBucket(env.ARCHIVE), {
        deadline: Date.now() + budget,
      });
      return json({ run, meter });
    }
    if (url.pathname === "/__bench/erasure") {
      return json(
        await env.DB.prepare("SELECT * FROM erasures WHERE id = ?")
          .bind(Number(url.searchParams.get("id")))
          .first(),
      );
    }
    if (url.pathname === "/__bench/archive") {
      const objects = [];
      let cursor;
      do {
        const listed = await env.ARCHIVE.list({ cursor, include: ["customMetadata"] });
        for (const o of listed.objects)
          objects.push({ key: o.key, size: o.size, events: Number(o.customMetadata?.events ?? 0) });
        cursor = listed.truncated ? listed.cursor : undefined;
      } while (cursor);
      return json({ objects });
    }
    if (url.pathname === "/__bench/archive-object") {
      const object = await env.ARCHIVE.get(url.searchParams.get("key"));
      return object ? new Response(object.body) : json({ error: "no such object" }, 404);
    }
    if (url.pathname === "/__bench/rebuild") {
      const budget = Number(url.searchParams.get("budget_ms") ?? 20_000);
      const t0 = Date.now();
      const run = await rebuildLegacy(drizzle(meteredDb(env.DB, "maintain")), {
        hotDays: storageFrom(env).hotDays,
        deadline: Date.now() + budget,
      });
      return json({ run, ms: Date.now() - t0, meter });
    }
    if (url.pathname === "/__bench/reset-events") {
      const hot = await env.DB.prepare("SELECT 1 FROM sqlite_master WHERE name = 'generations'").first();
      if (hot) {
        // The hot tier (issue 16): every generation table goes, with what describes and counts its rows.
        const gens = await env.DB.prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'events_g%'",
        ).all();
        await env.DB.batch([
          ...gens.results.map((g) => env.DB.prepare(`DROP TABLE IF EXISTS "${g.name}"`)),
          ...[
            "generations",
            "generation_apps",
            "arrivals",
            "type_counts",
            "context_value_counts",
            "event_types",
            "sessions",
            "contexts",
          ].map((t) => env.DB.prepare(`DELETE FROM ${t}`)),
          env.DB.prepare("DELETE FROM sqlite_stat1 WHERE tbl LIKE 'events_g%'"),
        ]);
        forgetGenerations();
        return json({ ok: true, dropped: gens.results.length });
      }
      // The counts go with the rows: new rows reuse the freed ids, which a roll-up mark left above
      // them would never count (the consumer only moves the mark up).
      await env.DB.batch([
        env.DB.prepare("DELETE FROM events"),
        env.DB.prepare("DELETE FROM event_counts"),
        env.DB.prepare("DELETE FROM rollup_mark"),
      ]);
      return json({ ok: true });
    }
    if (request.headers.get("x-bench-probe") === "1") return probeRequest(request, env, ctx);
    // Ablation: `x-bench-stub: limiter,queue` replaces those bindings with no-ops, to see what each costs.
    const stub = request.headers.get("x-bench-stub") ?? "";
    const overrides = { EVENTS_QUEUE: stub.includes("queue") ? NOOP_QUEUE : wrapQueue(env.EVENTS_QUEUE) };
    if (metering && request.headers.get("x-bench-meter") === "1") {
      meter.requests++;
      overrides.DB = meteredDb(env.DB, "fetch");
    }
    if (stub.includes("limiter")) overrides.WRITE_LIMITER = NOOP_LIMITER;
    return worker.fetch(request, envWith(env, overrides), ctx);
  },

  async queue(batch, env, ctx) {
    if (consumerMode !== "real") return consumePrototype(batch, env, consumerMode);
    counters.queueBatches++;
    counters.queueMessages += batch.messages.length;
    let rows = 0;
    for (const m of batch.messages) if (m.body && m.body.kind === "events") rows += m.body.events.length;
    counters.consumerRows += rows;
    counters.consumerBatchRows.push(rows);
    return worker.queue(batch, envWith(env, { DB: countingDb(metering ? meteredDb(env.DB, "queue") : env.DB) }), ctx);
  },

  scheduled(controller, env, ctx) {
    return worker.scheduled(controller, env, ctx);
  },
};
