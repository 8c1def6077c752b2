// Migration 0005 on a database that already holds events (the production path): applications get
// numbers, events keep every field with the application as its number and the event id as its 16
// bytes, and the counts are rebuilt per application and for all applications, still exact.
// Runs the migration files as wrangler does, on SQLite from Node 22 (node:sqlite).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { expect, it } from "vitest";

const DIR = path.resolve(import.meta.dirname, "../../migrations");
const files = readdirSync(DIR)
  .filter((f) => f.endsWith(".sql"))
  .sort();
const apply = (db: DatabaseSync, file: string) => db.exec(readFileSync(path.join(DIR, file), "utf8"));

it("converts stored events and their counts, keeping every event and every count", () => {
  const db = new DatabaseSync(":memory:");
  for (const file of files.filter((f) => f < "0005")) apply(db, file);
  db.exec(
    "INSERT INTO applications (id, name, allowed_origins, created_at) VALUES ('app_a', 'A', '[]', 0), ('app_b', 'B', '[]', 0)",
  );
  const insert = db.prepare(
    "INSERT INTO events (event_id, session_id, category, name, data, timestamp, received_at, app_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const apps = ["app_a", "app_b", "app_legacy", null];
  const sent: { eventId: string; app: string | null; category: string }[] = [];
  for (let i = 0; i < 400; i++) {
    const e = { eventId: crypto.randomUUID(), app: apps[i % 4]!, category: `c${i % 3}` };
    sent.push(e);
    insert.run(
      e.eventId,
      `s${i % 7}`,
      e.category,
      `n${i % 2}`,
      `{"i":${i}}`,
      1_700_000_000_000_000 + i * 60_000_000,
      1,
      e.app,
    );
  }
  // Counts as the consumer of 0004 kept them (its roll-up, with the stored mark).
  db.exec(`INSERT INTO event_counts (category, name, hour, app_id, n)
    SELECT CASE WHEN k IN (1, 2) THEN category ELSE '' END, CASE WHEN k IN (1, 3) THEN name ELSE '' END, timestamp / 3600000000, coalesce(app_id, ''), count(*)
    FROM events, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) GROUP BY 1, 2, 3, 4`);

  for (const file of files.filter((f) => f >= "0005")) apply(db, file);

  const nums = new Map(
    (db.prepare("SELECT id, num FROM applications").all() as { id: string; num: number }[]).map((r) => [r.id, r.num]),
  );
  expect(nums.get("app_a")).toBeGreaterThan(0);
  expect(nums.get("app_legacy"), "an application only events named is registered").toBeGreaterThan(0);
  expect(new Set(nums.values()).size).toBe(nums.size);
  const rows = db.prepare("SELECT lower(hex(event_id)) AS id, app, category, data FROM events ORDER BY id").all() as {
    id: string;
    app: number;
    category: string;
    data: string;
  }[];
  expect(rows).toHaveLength(400);
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const e of sent) {
    const row = byId.get(e.eventId.replace(/-/g, ""))!;
    expect(row.app).toBe(e.app === null ? 0 : nums.get(e.app));
    expect(row.category).toBe(e.category);
  }
  // Counts: per application and for all applications, each equal to counting the rows.
  const count = (sql: string, ...params: (string | number)[]) => (db.prepare(sql).get(...params) as { n: number }).n;
  for (const category of ["c0", "c1", "c2"]) {
    expect(count("SELECT sum(n) AS n FROM event_counts WHERE category = ? AND name = '' AND app = -1", category)).toBe(
      count("SELECT count(*) AS n FROM events WHERE category = ?", category),
    );
    for (const app of [0, ...nums.values()]) {
      expect(
        count(
          "SELECT coalesce(sum(n), 0) AS n FROM event_counts WHERE category = ? AND name = '' AND app = ?",
          category,
          app,
        ),
      ).toBe(count("SELECT count(*) AS n FROM events WHERE category = ? AND app = ?", category, app));
    }
  }
  // New applications are numbered by the trigger.
  db.exec("INSERT INTO applications (id, name, allowed_origins, created_at) VALUES ('app_new', 'N', '[]', 0)");
  expect(count("SELECT num AS n FROM applications WHERE id = 'app_new'")).toBe(Math.max(...nums.values()) + 1);
});
