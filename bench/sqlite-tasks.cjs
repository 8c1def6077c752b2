// Raw SQLite side of the bench: Node 22's built-in node:sqlite (DatabaseSync), no native build.
// Run by bench/lib/sqlite.mjs in a child of the bench's own Node, with its ExperimentalWarning off.
//
//   node --disable-warning=ExperimentalWarning bench/sqlite-tasks.cjs <task> <json args>   → prints one JSON result line
//
// Tasks:
//   info    {file}                                  file size, rows, journal mode, an app_id
//   load    {file, rows, appId | apps, tenant, seed}  writes `rows` synthetic events into a D1 file
//   storage {migrationsDir, rows, apps, txnRows}   a fresh file of that schema filled as the consumer fills it; bytes per table and index (dbstat)
//   dbstatFile {file}   bytes per table and index of an existing D1 file (wrangler stopped), events with and without context
//   keys    {file, keys: [{id, key, kind, appId}]}  adds API keys (stored as SHA-256) to a D1 file
//   migrate {file, migration}                       applies one migration file's statements, timed
//   insert  {messagesFile, variant, migrationsDir, around}   inserts the consumer bench's rows into a fresh DB
//   query   {file, shapes, iterations, maxMs}       times each shape's statements; EXPLAIN QUERY PLAN
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { DatabaseSync } = require("node:sqlite");

const ROOT = path.resolve(__dirname, "..");

/** Opens a SQLite file; `mustExist` refuses to create one (a wrong path would otherwise read as empty). */
function open(file, { readOnly = false, mustExist = false } = {}) {
  if (mustExist && !fs.existsSync(file)) throw new Error(`no database file at ${file}`);
  return new DatabaseSync(file, { readOnly });
}

function hasColumn(db, table, column) {
  return db.prepare(`SELECT 1 FROM pragma_table_info('${table}') WHERE name = ?`).get(column) !== undefined;
}

/** A PRAGMA's single value (node:sqlite has no pragma helper). */
function pragma(db, name) {
  const row = db.prepare(`PRAGMA ${name}`).get();
  return row ? Object.values(row)[0] : undefined;
}

/** fn inside one BEGIN … COMMIT (ROLLBACK if it throws). */
function transaction(db, fn) {
  return (...args) => {
    db.exec("BEGIN");
    try {
      fn(...args);
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  };
}

/** The migrations in `dir` (the run's snapshot of migrations/), in order, split at drizzle-kit's breakpoints. */
function migrationStatements(dir = path.join(ROOT, "migrations")) {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split("--> statement-breakpoint"))
    .map((s) => s.trim())
    .filter(Boolean);
}

function fileBytes(file) {
  let n = 0;
  for (const suffix of ["", "-wal", "-journal"]) {
    try {
      n += fs.statSync(file + suffix).size;
    } catch {}
  }
  return n;
}

function info({ file }) {
  const db = open(file, { readOnly: true, mustExist: true });
  const rows = countEvents(db);
  // The application of some stored event, by id (events keep applications.num since migration 0005).
  const app = hasColumn(db, "events", "app")
    ? db.prepare("SELECT a.id AS app_id FROM events AS e JOIN applications AS a ON a.num = e.app LIMIT 1").get()
    : db.prepare("SELECT app_id FROM events WHERE app_id IS NOT NULL LIMIT 1").get();
  const out = {
    bytes: fileBytes(file),
    rows,
    appId: app ? app.app_id : null,
    journalMode: pragma(db, "journal_mode"),
    pageSize: pragma(db, "page_size"),
    pageCount: pragma(db, "page_count"),
    freelist: pragma(db, "freelist_count"),
    sqliteVersion: db.prepare("select sqlite_version() v").get().v,
    hasStat1: !!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").get(),
  };
  db.close();
  return out;
}

// ---------------------------------------------------------------------------------------------
// The million-event data set: deterministic, shaped like the original's README traffic.

/** mulberry32: a small seeded PRNG, so every run loads the same rows. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const HEX = "0123456789abcdef";
function uuid(rand) {
  let s = "";
  for (let i = 0; i < 32; i++) s += HEX[(rand() * 16) | 0];
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-a${s.slice(17, 20)}-${s.slice(20)}`;
}

const CATEGORIES = {
  "page interaction": [
    "cta click",
    "scroll",
    "hover",
    "copy text",
    "tab switch",
    "menu open",
    "share",
    "like",
    "expand",
    "collapse",
  ],
  navigation: [
    "page view",
    "back",
    "forward",
    "link click",
    "search",
    "filter",
    "sort",
    "paginate",
    "breadcrumb",
    "logo click",
  ],
  form: [
    "form start",
    "field focus",
    "field blur",
    "validation error",
    "submit",
    "submit success",
    "submit failure",
    "reset",
    "autofill",
    "abandon",
  ],
  media: [
    "play",
    "pause",
    "seek",
    "volume",
    "fullscreen",
    "ended",
    "buffering",
    "quality change",
    "captions",
    "download",
  ],
  error: [
    "js error",
    "network error",
    "timeout",
    "not found",
    "forbidden",
    "server error",
    "csp violation",
    "unhandled rejection",
    "resource error",
    "crash",
  ],
};
const CATEGORY_NAMES = Object.keys(CATEGORIES);
const ELEMENTS = ["chat bubble", "signup button", "pricing link", "hero image", "footer link", "nav menu"];

/** What the bench's query shapes filter on; load() and the bench agree through this. */
const DATASET = {
  start: Date.UTC(2021, 0, 1) * 1000, // microseconds
  spanMicros: 30 * 86400 * 1e6, // 30 days
  sessionLength: 20, // events per session
  concurrentSessions: 10,
};
function sessionOf(i, sessionIds) {
  const block = Math.floor(i / (DATASET.sessionLength * DATASET.concurrentSessions));
  return sessionIds(block * DATASET.concurrentSessions + (i % DATASET.concurrentSessions));
}

/**
 * The application of the i-th loaded row: `appId` for all, or with `apps` (ids) in turn, and with
 * `tenant` ({ id, every }) one row in `every` for that application (a tenant holding 1/every of the rows).
 */
function appOf({ appId, apps, tenant }) {
  if (!apps && !tenant) return () => appId;
  const others = apps ?? [appId];
  return (i) => (tenant && i % tenant.every === Math.floor(tenant.every / 2) ? tenant.id : others[i % others.length]);
}

function load({ file, rows, appId, apps, tenant, seed = 42 }) {
  const t0 = Date.now();
  const appFor = appOf({ appId, apps, tenant });
  const rand = prng(seed);
  const sessionRand = prng(seed + 1);
  const sessionCache = new Map();
  // Session ids are random UUIDs, made on first use (deterministic given the seed).
  const sessionIds = (k) => {
    let s = sessionCache.get(k);
    if (!s) {
      s = uuid(sessionRand);
      sessionCache.set(k, s);
      if (sessionCache.size > 1000) sessionCache.delete(sessionCache.keys().next().value);
    }
    return s;
  };
  const db = open(file, { mustExist: true });
  const journalMode = pragma(db, "journal_mode");
  db.exec("PRAGMA synchronous = OFF");
  db.exec("PRAGMA cache_size = -262144"); // 256 MiB
  const existing = db.prepare("SELECT count(*) AS n FROM events").get().n;
  if (existing > 0) throw new Error(`refusing to load into ${file}: it already holds ${existing} events`);
  // Drop the events indexes, insert in one transaction, recreate them from their own SQL:
  // the schema ends up exactly as the migrations made it, built in one sort per index.
  const indexes = db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL")
    .all();
  const insert = db.prepare(
    "INSERT INTO events (event_id, session_id, category, name, data, timestamp, received_at, app_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const step = DATASET.spanMicros / rows;
  transaction(db, () => {
    for (const ix of indexes) db.exec(`DROP INDEX "${ix.name}"`);
    for (let i = 0; i < rows; i++) {
      const category = CATEGORY_NAMES[(rand() * CATEGORY_NAMES.length) | 0];
      const names = CATEGORIES[category];
      const name = names[(rand() * names.length) | 0];
      const timestamp = Math.floor(DATASET.start + i * step + rand() * step);
      const data = `{"host":"www.xxxxx.com","path":"/p/${(rand() * 500) | 0}","element":"${ELEMENTS[(rand() * ELEMENTS.length) | 0]}"}`;
      insert.run(
        uuid(rand),
        sessionOf(i, sessionIds),
        category,
        name,
        data,
        timestamp,
        timestamp + 50_000 + Math.floor(rand() * 2e6),
        appFor(i),
      );
    }
    for (const ix of indexes) db.exec(ix.sql);
  })();
  if (journalMode === "wal") db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return { rows, seconds: (Date.now() - t0) / 1000, indexesRebuilt: indexes.map((i) => i.name), journalMode };
}

/** The session, category, name and one-day range the query shapes use (rows near the middle of the range). */
function probeValues({ file, rows }) {
  const db = open(file, { readOnly: true, mustExist: true });
  const target = Math.floor(rows * (14.5 / 30));
  const row = db.prepare("SELECT session_id, category, name, timestamp FROM events WHERE id = ?").get(target + 1);
  db.close();
  return {
    sessionId: row.session_id,
    category: "page interaction",
    name: "cta click",
    day: "2021-01-15",
    nextDay: "2021-01-16",
  };
}

// ---------------------------------------------------------------------------------------------
// Raw inserts: the consumer bench's rows, in transactions of the consumer's batch size.

/**
 * The events table's columns as the consumer fills them, for the schema the migrations made: since
 * migration 0005 the application's number first and the event_id as its 16 bytes (unhex, as
 * src/db/event-reads.ts does); before it the application's id last and the event_id as text.
 */
function eventsShape(db) {
  if (hasColumn(db, "events", "app")) {
    return {
      cols: "app, event_id, session_id, category, name, data, timestamp, received_at",
      values: "(?, unhex(replace(?, '-', '')), ?, ?, ?, ?, ?, ?)",
      fromJson:
        "value->>0, unhex(replace(value->>1, '-', '')), value->>2, value->>3, value->>4, value->>5, value->>6, value->>7",
      // One application: the raw database has no applications table rows to number, so it is 1.
      row: (e, m) => [m.app ? 1 : 0, e.event_id, e.session_id, e.category, e.name, e.data, e.timestamp, m.received_at],
    };
  }
  return {
    cols: "event_id, session_id, category, name, data, timestamp, received_at, app_id",
    values: "(?, ?, ?, ?, ?, ?, ?, ?)",
    fromJson: "value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7",
    row: (e, m) => [e.event_id, e.session_id, e.category, e.name, e.data, e.timestamp, m.received_at, m.app],
  };
}

function rowsOf(messagesFile, shape) {
  const { batches } = JSON.parse(fs.readFileSync(messagesFile, "utf8"));
  // Exactly what src/consume/consumer.ts plan() makes of an events message.
  return batches.map((messages) => messages.flatMap((m) => m.events.map((e) => shape.row(e, m))));
}

function insert({ messagesFile, variant, migrationsDir, around = { before: [], after: [] } }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eye-bench-"));
  const file = path.join(dir, "raw.sqlite");
  const db = open(file);
  for (const s of migrationStatements(migrationsDir)) db.exec(s);
  const shape = eventsShape(db);
  const COLS = shape.cols;
  const batches = rowsOf(messagesFile, shape);
  // As durable as D1's local store: WAL, synchronous NORMAL.
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  const single = db.prepare(`INSERT INTO events (${COLS}) VALUES ${shape.values} ON CONFLICT DO NOTHING`);
  const multi = new Map();
  const valuesStmt = (n) => {
    if (!multi.has(n)) {
      multi.set(
        n,
        db.prepare(
          `INSERT INTO events (${COLS}) VALUES ${Array(n).fill(shape.values).join(", ")} ON CONFLICT DO NOTHING`,
        ),
      );
    }
    return multi.get(n);
  };
  const jsonEach = db.prepare(
    `INSERT INTO events (${COLS}) SELECT ${shape.fromJson} FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`,
  );
  const write = {
    // The fastest way raw SQLite has: one prepared single-row statement, reused.
    single: (rows) => {
      for (const r of rows) single.run(...r);
    },
    // The same statements the consumer's drizzle insert sends: 12 rows (96 parameters) each.
    values12: (rows) => {
      for (let i = 0; i < rows.length; i += 12) {
        const c = rows.slice(i, i + 12);
        valuesStmt(c.length).run(...c.flat());
      }
    },
    // The prototype: a chunk of rows as one JSON parameter (≤ 512 KiB).
    json_each: (rows) => {
      let chunk = [];
      let bytes = 2;
      for (const r of rows) {
        const text = JSON.stringify(r);
        if (bytes + text.length + 1 > 512 * 1024) {
          jsonEach.run(`[${chunk.join(",")}]`);
          chunk = [];
          bytes = 2;
        }
        chunk.push(text);
        bytes += text.length + 1;
      }
      if (chunk.length) jsonEach.run(`[${chunk.join(",")}]`);
    },
  }[variant.replace(/_bare$/, "")];
  if (!write) throw new Error(`unknown variant ${variant}`);
  // The statements the consumer's insertAll() runs around its INSERTs (e.g. count rollups), for the
  // variants that stand for the handler's work; `single` is the bare insert ceiling.
  const aroundStmts = (list) => list.map((c) => ({ stmt: db.prepare(c.sql), params: c.params }));
  const bare = variant === "single" || variant.endsWith("_bare");
  const before = bare ? [] : aroundStmts(around.before);
  const after = bare ? [] : aroundStmts(around.after);
  const txn = transaction(db, (rows) => {
    for (const b of before) b.stmt.run(...b.params);
    write(rows);
    for (const a of after) a.stmt.run(...a.params);
  });
  const t0 = process.hrtime.bigint();
  for (const rows of batches) txn(rows);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const stored = db.prepare("SELECT count(*) AS n FROM events").get().n;
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const total = batches.reduce((n, b) => n + b.length, 0);
  return { variant, rows: total, stored, transactions: batches.length, seconds, rowsPerSec: total / seconds };
}

// ---------------------------------------------------------------------------------------------
// Raw queries: the statements the Worker ran for each shape (recorded by the probe), timed here.

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function query({ file, shapes, iterations = 200, maxMs = 2000 }) {
  const db = open(file, { readOnly: true, mustExist: true });
  db.exec("PRAGMA cache_size = -65536");
  const out = [];
  for (const shape of shapes) {
    const stmts = shape.statements.map((s) => {
      const stmt = db.prepare(s.sql);
      stmt.setReturnArrays(true); // rows as arrays: the timing is SQLite's, not building row objects
      return { stmt, params: s.params, sql: s.sql };
    });
    const plans = shape.statements.map((s) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${s.sql}`)
        .all(...s.params)
        .map((r) => r.detail)
        .join("; "),
    );
    // Warm the page cache once, as the Worker's runs were warm.
    for (const s of stmts) s.stmt.all(...s.params);
    const times = [];
    const until = Date.now() + maxMs;
    for (let i = 0; i < iterations && (i < 5 || Date.now() < until); i++) {
      const t0 = process.hrtime.bigint();
      for (const s of stmts) s.stmt.all(...s.params);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    out.push({ name: shape.name, runs: times.length, p50: pct(times, 50), p99: pct(times, 99), plans });
  }
  db.close();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Storage: where a schema's bytes go, on a fresh file filled the way the consumer fills it.

/** The roll-up the consumer runs after each insert: rows above the mark, counted under four shapes; then the mark moves up. */
function rollupStatements(db) {
  const compact = hasColumn(db, "events", "app");
  const H = 3_600_000_000;
  const appCol = compact ? "app" : "app_id";
  const appExpr = compact ? "app" : "coalesce(app_id, '')";
  return [
    `INSERT INTO event_counts (category, name, hour, ${appCol}, n)
      SELECT CASE WHEN k IN (1, 2) THEN c ELSE '' END AS cc, CASE WHEN k IN (1, 3) THEN nm ELSE '' END AS nn, h, a, count(*)
      FROM (SELECT category AS c, name AS nm, (timestamp - ((timestamp % ${H}) + ${H}) % ${H}) / ${H} AS h, ${appExpr} AS a
            FROM events WHERE id > coalesce((SELECT last_id FROM rollup_mark WHERE id = 1), 0)) AS fresh,
           (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) AS shape
      WHERE true GROUP BY cc, nn, h, a
      ON CONFLICT (category, name, hour, ${appCol}) DO UPDATE SET n = n + excluded.n`,
    `INSERT INTO rollup_mark (id, last_id) VALUES (1, (SELECT coalesce(max(id), 0) FROM events))
      ON CONFLICT (id) DO UPDATE SET last_id = max(last_id, excluded.last_id)`,
  ].map((sql) => db.prepare(sql));
}

/**
 * README-shaped events for `apps` (application ids, taking turns at random): a 36-character session
 * UUID (sessions of 20 events, 10 at a time), a 36-character event_id, category and name from the
 * query data set's lists ("page interaction" / "cta click" …), `data` of 62–68 bytes, timestamps in
 * order over `spanHours`, received 50 ms–2 s later.
 */
function* readmeEvents({ rows, apps, spanHours, seed }) {
  const rand = prng(seed);
  const sessionRand = prng(seed + 1);
  const sessions = new Map();
  const sessionIds = (k) => {
    let id = sessions.get(k);
    if (!id) {
      id = uuid(sessionRand);
      sessions.set(k, id);
      if (sessions.size > 1000) sessions.delete(sessions.keys().next().value);
    }
    return id;
  };
  const start = DATASET.start;
  const step = (spanHours * 3600e6) / rows;
  for (let i = 0; i < rows; i++) {
    const category = CATEGORY_NAMES[(rand() * CATEGORY_NAMES.length) | 0];
    const names = CATEGORIES[category];
    const timestamp = Math.floor(start + i * step + rand() * step);
    yield {
      app: apps[(rand() * apps.length) | 0],
      event_id: uuid(rand),
      session_id: sessionIds(i),
      category,
      name: names[(rand() * names.length) | 0],
      data: `{"host":"www.xxxxx.com","path":"/p/${(rand() * 500) | 0}","element":"${ELEMENTS[(rand() * ELEMENTS.length) | 0]}"}`,
      timestamp,
      received_at: timestamp + 50_000 + Math.floor(rand() * 2e6),
    };
  }
}

/** Pages, bytes and payload of every table and index of an open database (SQLite's dbstat). */
function dbstat(db) {
  return db
    .prepare(
      `SELECT s.name AS name, coalesce(m.type, 'table') AS type, count(*) AS pages, sum(s.pgsize) AS bytes, sum(s.payload) AS payload, sum(s.unused) AS unused
       FROM dbstat AS s LEFT JOIN sqlite_master AS m ON m.name = s.name GROUP BY s.name ORDER BY bytes DESC`,
    )
    .all()
    .map((r) => ({ ...r }));
}

function storage({ migrationsDir, rows, apps, txnRows = 5000, spanHours = 24, seed = 7 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eye-storage-"));
  const file = path.join(dir, "storage.sqlite");
  const db = open(file);
  db.exec("PRAGMA journal_mode = WAL"); // as wrangler's local D1 files are
  for (const s of migrationStatements(migrationsDir)) db.exec(s);
  const shape = eventsShape(db);
  const compact = hasColumn(db, "events", "app");
  const register = db.prepare(
    "INSERT INTO applications (id, name, allowed_origins, created_at) VALUES (?, ?, '[]', 0)",
  );
  for (const id of apps) register.run(id, id);
  const numOf = new Map(
    apps.map((id) => [id, compact ? db.prepare("SELECT num FROM applications WHERE id = ?").get(id).num : id]),
  );
  const insert = db.prepare(
    `INSERT INTO events (${shape.cols}) SELECT ${shape.fromJson} FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`,
  );
  const rollup = rollupStatements(db);
  const txn = transaction(db, (batch) => {
    insert.run(JSON.stringify(batch));
    for (const r of rollup) r.run();
  });
  const t0 = process.hrtime.bigint();
  let batch = [];
  for (const e of readmeEvents({ rows, apps, spanHours, seed })) {
    // Each application under its own number (shape.row() numbers every application 1, for one-application runs).
    batch.push(
      compact
        ? [numOf.get(e.app), e.event_id, e.session_id, e.category, e.name, e.data, e.timestamp, e.received_at]
        : shape.row(e, { app: e.app, received_at: e.received_at }),
    );
    if (batch.length === txnRows) {
      txn(batch);
      batch = [];
    }
  }
  if (batch.length) txn(batch);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const out = {
    schema: compact ? "compact (app number, 16-byte event_id)" : "text (app_id, 36-character event_id)",
    rows: db.prepare("SELECT count(*) AS n FROM events").get().n,
    rollupRows: db.prepare("SELECT count(*) AS n FROM event_counts").get().n,
    apps: apps.length,
    spanHours,
    txnRows,
    seconds,
    pageSize: pragma(db, "page_size"),
    objects: dbstat(db),
    indexes: db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
      .all()
      .map((r) => ({ ...r })),
    avgRow: db
      .prepare(
        "SELECT avg(length(event_id)) AS event_id, avg(length(session_id)) AS session_id, avg(length(category)) AS category, avg(length(name)) AS name, avg(length(data)) AS data FROM events",
      )
      .get(),
  };
  out.fileBytes = fileBytes(file);
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

/** API keys added straight into a D1 file (wrangler stopped): stored as SHA-256, as src/request/auth.ts looks them up. */
function keys({ file, keys: list }) {
  const crypto = require("node:crypto");
  const db = open(file, { mustExist: true });
  // The key's application must exist (api_keys.app_id references it; node:sqlite enforces foreign keys).
  const app = db.prepare(
    "INSERT OR IGNORE INTO applications (id, name, allowed_origins, created_at) VALUES (?, ?, '[]', 0)",
  );
  const add = db.prepare(
    "INSERT OR REPLACE INTO api_keys (id, hash, kind, app_id, prefix, created_at) VALUES (?, ?, ?, ?, ?, 0)",
  );
  for (const k of list) if (k.appId) app.run(k.appId, k.appId);
  for (const k of list)
    add.run(k.id, crypto.createHash("sha256").update(k.key).digest("hex"), k.kind, k.appId ?? null, k.key.slice(0, 9));
  db.close();
  return { keys: list.length };
}

/** One migration file's statements applied to a file with node:sqlite, in one transaction, timed (raw SQLite's share of a migration). */
function migrate({ file, migration }) {
  const db = open(file, { mustExist: true });
  const statements = fs
    .readFileSync(migration, "utf8")
    .split("--> statement-breakpoint")
    .map((x) => x.trim())
    .filter(Boolean);
  const each = [];
  const t0 = process.hrtime.bigint();
  transaction(db, () => {
    for (const st of statements) {
      const t = process.hrtime.bigint();
      db.exec(st);
      each.push({
        sql: st
          .replace(/\s+/g, " ")
          .replace(/^(--[^\n]*\s)+/, "")
          .slice(0, 80),
        seconds: Number(process.hrtime.bigint() - t) / 1e9,
      });
    }
  })();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  db.close();
  // The longest statements: D1 stops any one statement after 30 s.
  return {
    seconds,
    statements: statements.length,
    longest: [...each].sort((a, b) => b.seconds - a.seconds).slice(0, 3),
  };
}

/**
 * The tables that hold events: `events`, and since issue 16 (migration 0011) the hot tier's generation tables
 * events_g<n> (the legacy `events` is then empty unless an upgrade's rebuild is under way).
 */
function eventTables(db) {
  return db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND (name = 'events' OR name GLOB 'events_g[0-9m]*')")
    .all()
    .map((r) => r.name);
}
function countEvents(db, where = "") {
  return eventTables(db).reduce((n, t) => n + db.prepare(`SELECT count(*) AS n FROM "${t}" ${where}`).get().n, 0);
}

/** Bytes per table and index (dbstat) of a D1 file a stopped wrangler left, and how many events it holds (with context). */
function dbstatFile({ file }) {
  const db = open(file, { mustExist: true });
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const has = (col) =>
    db.prepare("SELECT count(*) AS n FROM pragma_table_info('events') WHERE name = ?").get(col).n > 0;
  const out = {
    rows: countEvents(db),
    withContext: has("context") ? countEvents(db, "WHERE context IS NOT NULL") : 0,
    contexts: has("context") ? db.prepare("SELECT count(*) AS n FROM contexts").get().n : 0,
    contextBodyAvg: has("context") ? db.prepare("SELECT avg(length(body)) AS n FROM contexts").get().n : null,
    pageSize: pragma(db, "page_size"),
    objects: dbstat(db),
  };
  db.close();
  return out;
}

/**
 * Edge context on every loaded row (the schema of migration 0008 to 0010: events.context, country, device, and
 * context_counts): 18 contexts (6 countries × 3 devices) taken in turn by id, the counts rebuilt from the rows as
 * the consumer would have kept them. For the query data sets' country and device shapes (issue 16).
 */
function contextFill({ file }) {
  const t0 = Date.now();
  const db = open(file, { mustExist: true });
  db.exec("PRAGMA synchronous = OFF");
  db.exec("PRAGMA cache_size = -262144");
  const countries = ["US", "DE", "FR", "GB", "JP", "BR"];
  const devices = ["desktop", "mobile", "tablet"];
  const bodies = [];
  for (const c of countries)
    for (const d of devices)
      bodies.push(
        JSON.stringify({
          country: c,
          city: "Berlin",
          region: "BE",
          device: d,
          browser: "Chrome",
          os: d === "desktop" ? "Windows" : "Android",
        }),
      );
  const H = 3600000000;
  transaction(db, () => {
    const add = db.prepare("INSERT INTO contexts (id, body) VALUES (?, ?)");
    for (const [i, b] of bodies.entries()) add.run(i + 1, b);
    db.exec(`UPDATE events SET context = 1 + (id % ${bodies.length})`);
    db.exec(
      "UPDATE events SET country = (SELECT body ->> 'country' FROM contexts WHERE contexts.id = events.context), device = (SELECT body ->> 'device' FROM contexts WHERE contexts.id = events.context)",
    );
    db.exec("DELETE FROM context_counts");
    for (const dim of ["country", "device"])
      db.exec(
        `INSERT INTO context_counts (dim, value, category, name, app, hour, n)
         SELECT '${dim}', ${dim}, category, name, app, (timestamp - ((timestamp % ${H}) + ${H}) % ${H}) / ${H} AS h, count(*)
         FROM events WHERE ${dim} IS NOT NULL GROUP BY ${dim}, category, name, app, h`,
      );
  })();
  const out = {
    seconds: (Date.now() - t0) / 1000,
    contexts: bodies.length,
    counts: db.prepare("SELECT count(*) AS n FROM context_counts").get().n,
  };
  if (pragma(db, "journal_mode") === "wal") db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return out;
}

/** A session of application `app` near the middle of the loaded rows (the schema of 0005 on: events.app is its number). */
function sessionOfApp({ file, app }) {
  const db = open(file, { readOnly: true, mustExist: true });
  const n = db.prepare("SELECT max(id) AS n FROM events").get().n;
  const row = db
    .prepare(
      "SELECT e.session_id AS s FROM events AS e JOIN applications AS a ON a.num = e.app WHERE a.id = ? AND e.id > ? ORDER BY e.id LIMIT 1",
    )
    .get(app, Math.floor(n * (14.5 / 30)));
  db.close();
  return row.s;
}

const tasks = { info, load, insert, query, probeValues, storage, keys, migrate, dbstatFile, contextFill, sessionOfApp };
const [task, arg] = process.argv.slice(2);
if (!tasks[task]) {
  console.error(`unknown task ${task}`);
  process.exit(2);
}
const args = arg?.startsWith("@") ? JSON.parse(fs.readFileSync(arg.slice(1), "utf8")) : JSON.parse(arg ?? "{}");
process.stdout.write(`${JSON.stringify(tasks[task](args))}\n`);
