// The stored events as tests look at them with their own SQL: every generation's rows, their
// dictionary numbers joined back to the values (session_id, category, name, the context's country
// and device), event_id as its lower-case UUID text, received_at as an instant. A condition is SQL
// over those columns; generations are read one statement each and the results put together.
import { env } from "cloudflare:workers";
import { tableName } from "../../src/db/generations";

const columns = `e.id AS id, e.app AS app,
  lower(substr(hex(e.event_id), 1, 8) || '-' || substr(hex(e.event_id), 9, 4) || '-' || substr(hex(e.event_id), 13, 4) || '-' || substr(hex(e.event_id), 17, 4) || '-' || substr(hex(e.event_id), 21)) AS event_id,
  s.session_id AS session_id, ty.category AS category, ty.name AS name, e.data AS data, e.timestamp AS timestamp,
  e.timestamp + e.received AS received_at, e.context AS context, cx.country AS country, cx.device AS device`;

const from = (gen: number) => `(SELECT ${columns}, ${gen} AS gen FROM ${tableName(gen)} AS e
  JOIN sessions AS s ON s.num = e.session JOIN event_types AS ty ON ty.id = e.type
  LEFT JOIN contexts AS cx ON cx.id = e.context)`;

async function gens(db: D1Database): Promise<number[]> {
  return (await db.prepare("SELECT gen FROM generations ORDER BY gen").all<{ gen: number }>()).results.map(
    (r) => r.gen,
  );
}

/** The stored events matching `where` (SQL over the columns above), in (timestamp, id) order. */
export async function storedRows<T = Record<string, unknown>>(
  where = "1",
  params: unknown[] = [],
  db: D1Database = env.DB,
): Promise<T[]> {
  const rows: Record<string, unknown>[] = [];
  for (const gen of await gens(db))
    rows.push(
      ...(
        await db
          .prepare(`SELECT * FROM ${from(gen)} WHERE ${where}`)
          .bind(...params)
          .all()
      ).results,
    );
  return rows.sort((a, b) => Number(a.timestamp) - Number(b.timestamp) || Number(a.id) - Number(b.id)) as T[];
}

/** How many stored events match `where`. */
export async function storedCount(where = "1", params: unknown[] = [], db: D1Database = env.DB): Promise<number> {
  let n = 0;
  for (const gen of await gens(db))
    n += (await db
      .prepare(`SELECT count(*) AS n FROM ${from(gen)} WHERE ${where}`)
      .bind(...params)
      .first<{ n: number }>())!.n;
  return n;
}

/**
 * Takes the events' storage away (every generation's table, the list of them, the session and type
 * dictionaries), so any read or write of events fails as it would if D1 lost them ("no such table").
 */
export async function dropStorage(db: D1Database = env.DB): Promise<void> {
  const tables = await db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name GLOB 'events_g[0-9]*'")
    .all<{ name: string }>();
  await db.batch([
    ...tables.results.map((t) => db.prepare(`DROP TABLE "${t.name}"`)),
    db.prepare("DROP TABLE generations"),
    db.prepare("DROP TABLE generation_apps"),
    db.prepare("DROP TABLE sessions"),
    db.prepare("DROP TABLE event_types"),
  ]);
}

/** The highest id stored (0 when none is). */
export async function storedMaxId(where = "1", params: unknown[] = [], db: D1Database = env.DB): Promise<number> {
  return Math.max(0, ...(await storedRows<{ id: number }>(where, params, db)).map((r) => r.id));
}

/**
 * Deletes the stored rows matching `where` (SQL over a generation's own columns: app, timestamp,
 * id, …) from every generation, as a fault or an erasure the test stands for would; no counts move.
 */
export async function deleteStored(where: string, params: unknown[] = [], db: D1Database = env.DB): Promise<void> {
  for (const gen of await gens(db))
    await db
      .prepare(`DELETE FROM ${tableName(gen)} WHERE ${where}`)
      .bind(...params)
      .run();
}
