// Event storage against the real local D1: chunked inserts, dedup, order, and what each page costs in rows read.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import { D1_MAX_PARAMS } from "../../src/db/db";
import { countEvents } from "../../src/db/event-counts";
import { insertAll } from "../../src/db/event-insert";
import { type EventFilters, listEvents, type Position, withFilters } from "../../src/db/event-reads";
import { genOf, tableName } from "../../src/db/generations";
import type { EventRow, NewErrorLogRow, NewEventRow } from "../../src/db/schema";
import { eventReads, meteredDb, rowsRead } from "../helpers/read-meter";
import { storedCount, storedRows } from "../helpers/stored";

const db = drizzle(env.DB);
/** The application number the rows carry. */
const APP = 7;

/** A D1 binding that passes everything through to the real one and records each bound statement. */
function recordingD1(real: D1Database) {
  const bound: { sql: string; params: number }[] = [];
  const batches: number[] = [];
  const wrapped = new Proxy(real, {
    get(target, prop) {
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          batches.push(statements.length);
          return target.batch(statements);
        };
      }
      if (prop === "prepare") {
        return (sql: string) => {
          const stmt = target.prepare(sql);
          return new Proxy(stmt, {
            get(s, p) {
              if (p === "bind") {
                return (...args: unknown[]) => {
                  bound.push({ sql, params: args.length });
                  return s.bind(...args);
                };
              }
              const value = Reflect.get(s, p, s) as unknown;
              return typeof value === "function" ? value.bind(s) : value;
            },
          });
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: drizzle(wrapped), bound, batches };
}

let serial = 0;
function row(overrides: Partial<NewEventRow> = {}): NewEventRow {
  serial += 1;
  return {
    eventId: crypto.randomUUID(),
    sessionId: `db-session-${serial}`,
    category: "db-category",
    name: "db-name",
    data: JSON.stringify({ serial }),
    timestamp: Date.UTC(2022, 0, 1) * 1000 + serial,
    receivedAt: Date.UTC(2022, 0, 1) * 1000,
    app: APP,
    ...overrides,
  };
}

const countWhere = async (sql: string, ...params: unknown[]) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${sql}`)
    .bind(...params)
    .first<{ n: number }>())!.n;

/** What one listEvents call reads: the rows D1 reads for its statements on generation tables, and what it returns. */
async function listCost(f: EventFilters, page: Parameters<typeof listEvents>[2]) {
  const m = meteredDb();
  const rows = await listEvents(m.db, f, page);
  const reads = eventReads(m.statements);
  // The generations it read (each a table of its own): a page that crosses into an older one reads there too.
  const generations = new Set(reads.flatMap((s) => s.sql.match(/events_g\w+/g) ?? [])).size;
  return { rowsRead: await rowsRead(reads), returned: rows.length, rows, generations, statements: reads.length };
}

describe("insertAll", () => {
  it("creates only new generations, and stores a batch whose generation was dropped after it read the list", async () => {
    const at = Date.UTC(2021, 2, 3) * 1000;
    const sessionId = "db-dropped-generation";
    await insertAll(db, [row({ sessionId, timestamp: at })]);
    const span = (await env.DB.prepare("SELECT gen_span FROM storage_state").first<{ gen_span: number }>())!.gen_span;
    const gen = genOf(at, span);
    expect(await countWhere(`${tableName(gen)} WHERE timestamp = ?`, at)).toBe(1);

    // A live generation's table is not created again: no DDL in a batch that writes to it.
    const statements: string[] = [];
    const seen = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare")
          return (sql: string) => {
            statements.push(sql);
            return target.prepare(sql);
          };
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await insertAll(drizzle(seen), [row({ sessionId, timestamp: at + 1 })]);
    expect(statements.some((s) => /CREATE|ANALYZE|sqlite_stat1/.test(s))).toBe(false);
    expect(statements.some((s) => s.includes(tableName(gen)))).toBe(true);

    // Retention drops the generation (its row and table in one batch) between the consumer's read
    // of the list and its write: the write fails on the missing table, and goes again, creating it.
    let batches = 0;
    const racing = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch")
          return async (list: D1PreparedStatement[]) => {
            batches += 1;
            if (batches === 2)
              await target.batch([
                target.prepare("DELETE FROM generations WHERE gen = ?").bind(gen),
                target.prepare(`DROP TABLE ${tableName(gen)}`),
              ]);
            return target.batch(list);
          };
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await insertAll(drizzle(racing), [row({ sessionId, timestamp: at + 2 }), row({ sessionId, timestamp: at + 3 })]);
    expect(batches).toBeGreaterThanOrEqual(3);
    const stored = await listEvents(db, { sessionId }, { limit: 10 });
    expect(stored.map((r) => r.timestamp)).toEqual([at + 3, at + 2]);
  });

  it("counts a batch's events reading each a few times, not once per count shape", async () => {
    // The counts group the batch's rows once, then spread each group over 16 shapes (4 of
    // (category, name), 2 scopes, country and device). Grouped as a plain subquery, SQLite ran the
    // grouping again for every shape: 16 reads of every event for context_value_counts, 8 for
    // type_counts (92 µs of SQL per event where it is now 28, under node:sqlite).
    const read = new Map<string, number>();
    const metering = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch")
          return async (list: D1PreparedStatement[]) => {
            const results = await target.batch(list);
            const sqls = list.map((s) => (s as unknown as { statement?: string }).statement ?? "");
            results.forEach((r, i) => {
              const table = /insert into "(\w+)"/.exec(sqls[i] ?? "")?.[1] ?? "?";
              read.set(table, (read.get(table) ?? 0) + (r.meta.rows_read ?? 0));
            });
            return results;
          };
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const n = 400;
    const at = Date.UTC(2022, 3, 1) * 1000;
    const rows = Array.from({ length: n }, (_, i) =>
      row({
        sessionId: `db-shapes-${i % 20}`,
        category: `db-shapes-${i % 4}`,
        name: `db-shapes-${i % 3}`,
        timestamp: at + i,
        contextBody: JSON.stringify({ country: "DE", device: i % 2 ? "mobile" : "desktop", n: i % 5 }),
        country: "DE",
        device: i % 2 ? "mobile" : "desktop",
      }),
    );
    await insertAll(drizzle(metering), rows);
    expect(await countWhere("type_counts WHERE category = 'db-shapes-0' AND name = '' AND app = ?", APP)).toBe(1);
    const typeReads = read.get("type_counts") ?? 0;
    const contextReads = read.get("context_value_counts") ?? 0;
    // Each event's key, row, type and context once or twice, plus the groups' few rows per shape:
    // 4.5 and 6 reads per event here, where the grouping run once per shape read 32 and 80.
    expect(typeReads).toBeGreaterThan(0);
    expect(typeReads).toBeLessThan(8 * n);
    expect(contextReads).toBeLessThan(8 * n);
  });

  it("stores more than 1000 rows with every statement under D1's 100 bound parameters, in one batch", async () => {
    const { db: recorded, bound, batches } = recordingD1(env.DB);
    const sessionId = "db-chunking-session";
    const rows = Array.from({ length: 1234 }, () => row({ sessionId }));
    const errors: NewErrorLogRow[] = Array.from({ length: 150 }, (_, i) => ({
      kind: "invalid_event",
      occurredAt: 1,
      payload: `{"i":${i}}`,
      reasons: "[]",
      source: "db-chunking",
      appId: null,
    }));
    await insertAll(recorded, rows, errors);

    expect(bound.length).toBeGreaterThan(1);
    // Every write in one batch (one transaction), after the one read of the generations it routes to.
    const writes = bound.slice(bound.length - batches.at(-1)!);
    expect(writes.filter((s) => /^insert into "events_g/i.test(s.sql)).length).toBeGreaterThanOrEqual(1);
    expect(batches).toHaveLength(2);
    for (const s of bound) expect(s.params, s.sql.slice(0, 60)).toBeLessThanOrEqual(D1_MAX_PARAMS);
    expect(await storedCount("session_id = ?", [sessionId])).toBe(1234);
    expect(await countWhere("error_log WHERE source = ?", "db-chunking")).toBe(150);
  });

  it("stores a duplicated event_id once, within one call and across calls", async () => {
    const eventId = crypto.randomUUID();
    const first = row({ eventId, sessionId: "db-dup", data: '{"copy":1}' });
    await insertAll(db, [first, row({ eventId, sessionId: "db-dup", data: '{"copy":2}' })]);
    await insertAll(db, [row({ eventId, sessionId: "db-dup", data: '{"copy":3}' }), row({ sessionId: "db-dup" })]);
    expect(await storedCount("event_id = ?", [eventId])).toBe(1);
    expect(await storedCount("session_id = ?", ["db-dup"])).toBe(2);
    // The first write wins; redeliveries never overwrite it.
    const [stored] = await storedRows<{ data: string }>("event_id = ?", [eventId]);
    expect(stored!.data).toBe('{"copy":1}');
  });

  it("writes events and error-log rows all or nothing", async () => {
    const good = row({ sessionId: "db-atomic" });
    const bad = row({ sessionId: "db-atomic", category: null as unknown as string }); // violates NOT NULL
    const error: NewErrorLogRow = {
      kind: "invalid_event",
      occurredAt: 1,
      payload: "{}",
      reasons: "[]",
      source: "db-atomic",
    };
    await expect(
      insertAll(db, [good, ...Array.from({ length: 30 }, () => row({ sessionId: "db-atomic" })), bad], [error]),
    ).rejects.toThrow();
    expect(await storedCount("session_id = ?", ["db-atomic"])).toBe(0);
    expect(await countWhere("error_log WHERE source = ?", "db-atomic")).toBe(0);
  });

  it("does nothing for nothing", async () => {
    await expect(insertAll(db, [], [])).resolves.toBeUndefined();
  });
});

describe("listEvents order", () => {
  const sessionId = "db-ties";
  const ts = Date.UTC(2022, 5, 1) * 1000;
  let all: EventRow[] = [];

  beforeAll(async () => {
    // 60 events at one instant, 20 a second later, 20 a second earlier, inserted shuffled.
    const rows = [
      ...Array.from({ length: 60 }, () => row({ sessionId, timestamp: ts })),
      ...Array.from({ length: 20 }, () => row({ sessionId, timestamp: ts + 1_000_000 })),
      ...Array.from({ length: 20 }, () => row({ sessionId, timestamp: ts - 1_000_000 })),
    ].sort(() => Math.random() - 0.5);
    await insertAll(db, rows);
    all = await listEvents(db, { sessionId }, { limit: 1000 });
  });

  it("orders by timestamp descending, ties by id descending", () => {
    expect(all).toHaveLength(100);
    for (let i = 1; i < all.length; i++) {
      const [a, b] = [all[i - 1]!, all[i]!];
      expect(a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.id > b.id)).toBe(true);
    }
  });

  it("orders ascending when asked, the exact reverse", async () => {
    const asc = await listEvents(db, { sessionId }, { limit: 1000, direction: "asc" });
    expect(asc.map((r) => r.id)).toEqual([...all].reverse().map((r) => r.id));
  });

  it("pages by offset over equal timestamps without overlap or gap", async () => {
    const ids: number[] = [];
    for (let offset = 0; offset < 100; offset += 7) {
      ids.push(...(await listEvents(db, { sessionId }, { limit: 7, offset })).map((r) => r.id));
    }
    expect(ids).toEqual(all.map((r) => r.id));
  });

  it("pages by position as the API does (a clean position reads one range), without overlap or gap, both ways", async () => {
    for (const direction of ["desc", "asc"] as const) {
      for (const size of [1, 7, 20, 59, 60, 61]) {
        const ids: number[] = [];
        let after: Position | undefined;
        for (;;) {
          const page = await listEvents(db, { sessionId }, { limit: size + 1, after, direction });
          ids.push(...page.slice(0, size).map((r) => r.id));
          const lookahead = page[size];
          if (!lookahead) break;
          after = {
            timestamp: lookahead.timestamp,
            id: lookahead.id,
            tie: page[size - 1]!.timestamp === lookahead.timestamp,
          };
        }
        const expected = all.map((r) => r.id);
        expect(ids, `${direction}, pages of ${size}`).toEqual(direction === "desc" ? expected : expected.reverse());
      }
    }
  });

  it("pages by position over equal timestamps without overlap or gap, both ways", async () => {
    for (const direction of ["desc", "asc"] as const) {
      const ids: number[] = [];
      let after: Position | undefined;
      for (;;) {
        // As the API pages: one row of lookahead, which is where the next page starts.
        const page = await listEvents(db, { sessionId }, { limit: 9 + 1, after, direction });
        ids.push(...page.slice(0, 9).map((r) => r.id));
        const lookahead = page[9];
        if (!lookahead) break;
        after = { timestamp: lookahead.timestamp, id: lookahead.id };
      }
      const expected = all.map((r) => r.id);
      expect(ids).toEqual(direction === "desc" ? expected : expected.reverse());
    }
  });
});

describe("rows read per page", () => {
  // A few thousand rows over 40 sessions, 4 categories and 5 names, in ~2000 distinct timestamps
  // over ten days (so timestamps tie), spread with a fixed pseudo-random sequence.
  const ROWS = 4000;
  const DAY = 86_400_000_000;
  const T0 = Date.UTC(2023, 0, 1) * 1000;
  const LIMIT = 20;
  const SLACK = 5;
  const categories = ["rr-view", "rr-click", "rr-submit", "rr-scroll"];
  const names = ["rr-home", "rr-cart", "rr-pay", "rr-help", "rr-faq"];
  let seeded: EventRow[] = [];

  beforeAll(async () => {
    let state = 42;
    const random = () => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
    const rows = Array.from({ length: ROWS }, () =>
      row({
        sessionId: `rr-session-${Math.floor(random() * 40)}`,
        category: pick(categories),
        name: pick(names),
        timestamp: T0 + Math.floor(random() * 2000) * ((10 * DAY) / 2000),
      }),
    );
    await insertAll(db, rows);
    seeded = await listEvents(db, { after: T0, before: T0 + 10 * DAY }, { limit: ROWS });
    expect(seeded).toHaveLength(ROWS);
  });

  const shapes: Record<string, EventFilters> = {
    "no filter": {},
    session_id: { sessionId: "rr-session-7" },
    category: { category: "rr-click" },
    name: { name: "rr-pay" },
    "category+name": { category: "rr-click", name: "rr-pay" },
  };
  const ranges: Record<string, Pick<EventFilters, "after" | "before">> = {
    "": {},
    " and a time range": { after: T0 + 2 * DAY, before: T0 + 8 * DAY },
    " and a lower bound": { after: T0 + 3 * DAY },
    " and an upper bound": { before: T0 + 7 * DAY },
  };

  const matching = (f: EventFilters) =>
    seeded.filter(
      (r) =>
        (f.sessionId === undefined || r.sessionId === f.sessionId) &&
        (f.category === undefined || r.category === f.category) &&
        (f.name === undefined || r.name === f.name) &&
        (f.after === undefined || r.timestamp >= f.after) &&
        (f.before === undefined || r.timestamp <= f.before),
    );

  /** The index ranges a filter merges: one per type it covers (the seed's one application). */
  const rangesFor = (f: EventFilters) =>
    f.sessionId !== undefined || (f.category !== undefined && f.name !== undefined)
      ? 1
      : f.category !== undefined
        ? names.length
        : f.name !== undefined
          ? categories.length
          : 1;

  /** What listEvents reads for one page from a position (D1's rows read on the generation tables). */
  const pageCost = (f: EventFilters, after?: Position) => listCost({ ...f }, { limit: LIMIT + 1, after });

  for (const [shape, base] of Object.entries(shapes)) {
    for (const [rangeName, range] of Object.entries(ranges)) {
      const f = { ...base, ...range };
      it(`reads about one page for ${shape}${rangeName}, first page and deep cursor position`, async () => {
        const expected = matching(f);
        expect(expected.length, "the seed must give this shape more than a few pages").toBeGreaterThan(3 * LIMIT);

        const first = await pageCost(f);
        expect(first.returned).toBe(LIMIT + 1);
        // One index range per (category, name) pair the filter covers, each read for a page and the
        // row past it at most, in each generation the page reaches (from a position inside a run of
        // equal timestamps, each range's two arms read a row past their ends: limit + 4).
        expect(first.rowsRead).toBeLessThanOrEqual(rangesFor(f) * (LIMIT + 2) * first.generations + SLACK);

        // A position two thirds of the way down the matching rows: reading must start there.
        const at = expected[Math.floor((expected.length * 2) / 3)]!;
        const deep = await pageCost(f, { timestamp: at.timestamp, id: at.id });
        // The position is the first row of its page (inclusive).
        expect(deep.returned).toBe(Math.min(LIMIT + 1, expected.length - Math.floor((expected.length * 2) / 3)));
        expect(deep.rowsRead).toBeLessThanOrEqual(rangesFor(f) * (LIMIT + 4) * deep.generations + SLACK);
      });
    }
  }

  // A session holds few events, so session+category/name reads the session's index range and
  // filters it: bounded by the session's size, not the table's. (A strict one-page bound would
  // need (session_id, category, timestamp) and (session_id, name, timestamp) indexes.)
  for (const [shape, base] of Object.entries({
    "session_id+category": { sessionId: "rr-session-7", category: "rr-click" },
    "session_id+name": { sessionId: "rr-session-7", name: "rr-pay" },
  } satisfies Record<string, EventFilters>)) {
    for (const [rangeName, range] of Object.entries(ranges)) {
      const f = { ...base, ...range };
      it(`reads at most the session's own events for ${shape}${rangeName}`, async () => {
        const sessionRows = matching({ sessionId: base.sessionId, ...range }).length;
        const expected = matching(f);
        const first = await pageCost(f);
        expect(first.returned).toBe(Math.min(LIMIT + 1, expected.length));
        expect(first.rowsRead).toBeLessThanOrEqual(sessionRows + first.generations);
        const at = expected[Math.floor(expected.length / 2)]!;
        const deep = await pageCost(f, { timestamp: at.timestamp, id: at.id });
        expect(deep.rowsRead).toBeLessThanOrEqual(sessionRows + deep.generations);
      });
    }
  }

  it("reads exactly one page (limit + 1 rows) from a position that starts its timestamp, in one range", async () => {
    for (const [shape, f] of [
      ["no filter", {}],
      [
        "scoped category+name and a range",
        { app: APP, category: "rr-click", name: "rr-pay", after: T0 + 2 * DAY, before: T0 + 8 * DAY },
      ],
    ] as const) {
      const expected = matching(f);
      // A row whose predecessor in the walk has another timestamp: what the API marks clean.
      const i = expected.findIndex((r, k) => k > expected.length / 2 && expected[k - 1]!.timestamp !== r.timestamp);
      const at = expected[i]!;
      const result = await listCost(
        { ...f },
        { limit: LIMIT + 1, after: { timestamp: at.timestamp, id: at.id, tie: false } },
      );
      expect(
        result.rows.map((r) => r.id),
        shape,
      ).toEqual(expected.slice(i, i + LIMIT + 1).map((r) => r.id));
      expect(result.rowsRead, shape).toBeLessThanOrEqual(LIMIT + 1 + SLACK);
    }
  });

  it("counts what it lists", async () => {
    for (const f of Object.values(shapes)) {
      const seededOnly = { ...f, after: T0 };
      expect(await countEvents(db, { ...seededOnly })).toBe(matching(seededOnly).length);
    }
  });

  it("lists the same rows the filters describe, in order", async () => {
    for (const shape of [
      ...Object.values(shapes),
      { sessionId: "rr-session-7", category: "rr-click", after: T0 + 2 * DAY },
    ]) {
      const f = { after: T0, ...shape };
      const rows = await listEvents(db, { ...f }, { limit: ROWS });
      expect(rows.map((r) => r.id)).toEqual(matching(f).map((r) => r.id));
    }
  });
});

describe("cursor pages inside a group of equal timestamps", () => {
  // 10,000 events sharing one timestamp (a batch flushed with one clock reading), with a few
  // around it: a page deep inside the group must seek to its id, not re-read the group's rest.
  const TIE = Date.UTC(2024, 2, 3, 12) * 1000;
  const GROUP = 10_000;
  const LIMIT = 50;
  const f: EventFilters = {
    category: "tie-category",
    name: "tie-name",
    after: TIE - 10 * 1_000_000,
    before: TIE + 10 * 1_000_000,
  };
  let group: EventRow[] = [];
  const mergeSlack = new Map<string, number>();

  beforeAll(async () => {
    const rows = [
      ...Array.from({ length: GROUP }, () =>
        row({ sessionId: "tie-session", category: "tie-category", name: "tie-name", timestamp: TIE }),
      ),
      // 60 single events a tenth of a second apart on each side of the group.
      ...Array.from({ length: 120 }, (_, i) =>
        row({
          sessionId: "tie-session",
          category: "tie-category",
          name: "tie-name",
          timestamp: TIE + (i < 60 ? i - 60 : i - 59) * 100_000,
        }),
      ),
    ];
    await insertAll(db, rows);
    group = await storedRows<EventRow>("category = 'tie-category' AND timestamp = ?", [TIE]);
    group.sort((a, b) => a.id - b.id);
    expect(group).toHaveLength(GROUP);
  });

  async function pageCost(filters: EventFilters, after: Position, direction: "asc" | "desc") {
    return listCost(filters, { limit: LIMIT + 1, after, direction });
  }

  // Scoped to the events' application (its own indexes) and across all applications (the global ones).
  const scopes: [string, Pick<EventFilters, "app">, number][] = [
    ["scoped", { app: APP }, 0],
    ["all applications", {}, 0],
  ];
  const shapes: Record<string, EventFilters> = {};
  for (const [scope, filters, extra] of scopes) {
    for (const [shape, base] of Object.entries({
      "category+name and a range": f,
      "no filter": {},
      category: { category: "tie-category" },
      session_id: { sessionId: "tie-session" },
    } satisfies Record<string, EventFilters>)) {
      shapes[`${shape}, ${scope}`] = { ...base, ...filters };
      mergeSlack.set(`${shape}, ${scope}`, shape === "session_id" || shape === "no filter" ? 0 : extra);
    }
  }
  for (const [shape, filters] of Object.entries(shapes)) {
    const slack = mergeSlack.get(shape)!;
    for (const direction of ["desc", "asc"] as const) {
      it(`reads one page (${LIMIT} + 1 rows) from the middle of the group, ${shape}, ${direction}`, async () => {
        const at = group[GROUP / 2]!;
        const { rowsRead, rows } = await pageCost(filters, { timestamp: TIE, id: at.id }, direction);
        expect(rows).toHaveLength(LIMIT + 1);
        // The page starts at the position and walks the group by id in the page's direction.
        const step = direction === "desc" ? -1 : 1;
        expect(rows.map((r) => r.id)).toEqual(
          group
            .slice(GROUP / 2 + (step < 0 ? -LIMIT : 0), GROUP / 2 + (step < 0 ? 1 : LIMIT + 1))
            .map((r) => r.id)
            .sort((a, b) => step * (a - b)),
        );
        expect(rowsRead).toBeLessThanOrEqual(LIMIT + 1 + slack);
      });

      it(`crosses from the group's last ids to the next timestamp without gap, ${shape}, ${direction}`, async () => {
        const edge = direction === "desc" ? group[10]! : group[GROUP - 11]!;
        const { rowsRead, rows } = await pageCost(filters, { timestamp: TIE, id: edge.id }, direction);
        expect(rows).toHaveLength(LIMIT + 1);
        expect(rows.slice(0, 11).every((r) => r.timestamp === TIE)).toBe(true);
        expect(rows[11]!.timestamp).toBe(direction === "desc" ? TIE - 100_000 : TIE + 100_000);
        // Plus the one index entry that ends the first read (the group's edge).
        expect(rowsRead).toBeLessThanOrEqual(LIMIT + 2 + slack);
      });
    }
  }
});

describe("a tenant with a thousandth of the events", () => {
  // 20,000 events of a big application and 20 of a small one, interleaved in time: a read key
  // scoped to the small one must read its own page, not a thousand of the big one's rows per row.
  const SMALL = 8;
  const T = Date.UTC(2025, 1, 1) * 1000;
  const LIMIT = 10;

  beforeAll(async () => {
    const rows = Array.from({ length: 20_020 }, (_, i) =>
      row({
        app: i % 1001 === 0 ? SMALL : APP,
        sessionId: `tenant-session-${i % 50}`,
        category: "tenant-category",
        name: i % 2 ? "tenant-a" : "tenant-b",
        timestamp: T + i * 1_000_000,
      }),
    );
    await insertAll(db, rows);
  });

  for (const [shape, f] of Object.entries({
    "no filter": {},
    category: { category: "tenant-category" },
    name: { name: "tenant-a" },
    "category+name and a range": {
      category: "tenant-category",
      name: "tenant-b",
      after: T,
      before: T + 30_000 * 1_000_000,
    },
  } satisfies Record<string, EventFilters>)) {
    it(`reads one page for the small application, ${shape}`, async () => {
      const result = await listCost({ ...f, app: SMALL }, { limit: LIMIT + 1 });
      expect(result.rows.length).toBeGreaterThan(0);
      expect(result.rows.every((r) => r.app === SMALL)).toBe(true);
      // A category names two types (tenant-a, tenant-b): two ranges of one page each.
      const ranges = "category" in f && !("name" in f) ? 2 : 1;
      expect(result.rowsRead).toBeLessThanOrEqual(ranges * (LIMIT + 1));
      expect(await countEvents(db, { ...f, app: SMALL, after: T, before: T + 30_000 * 1_000_000 })).toBe(
        await storedCount(`app = ? AND timestamp BETWEEN ? AND ?${"name" in f ? " AND name = ?" : ""}`, [
          SMALL,
          T,
          T + 30_000 * 1_000_000,
          ...("name" in f ? [f.name] : []),
        ]),
      );
    });
  }
});

describe("deep offsets across applications", () => {
  it("returns the same page as a walk from the start", async () => {
    const T = Date.UTC(2025, 6, 1) * 1000;
    const rows = Array.from({ length: 3000 }, (_, i) =>
      row({
        app: i % 3 === 0 ? 9 : APP,
        category: "deep-offset",
        name: "deep",
        timestamp: T + Math.floor(i / 2) * 1000,
      }),
    );
    await insertAll(db, rows);
    const f: EventFilters = { category: "deep-offset" };
    const all = await listEvents(db, f, { limit: 3000 });
    expect(all).toHaveLength(3000);
    for (const offset of [1, 999, 2950]) {
      const page = await listEvents(db, f, { limit: 100, offset });
      expect(
        page.map((r) => r.id),
        `offset ${offset}`,
      ).toEqual(all.slice(offset, offset + 100).map((r) => r.id));
      expect(page[0]).toMatchObject({ category: "deep-offset", name: "deep" });
      expect(page[0]!.eventId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

// A category across applications merges one range per (application, type): here 10 × 10 = 100.
// The merge is lazy: each range first reads its share of the page, and only the ranges that may
// still hold part of it read more, so a page spread over the ranges reads about limit + 3k rows,
// not k × (limit + 1); a page that one range holds alone costs that range one more read, for what the page still needs.
describe("a lazy merge of many ranges", () => {
  const T = Date.UTC(2025, 9, 1) * 1000;
  const LIMIT = 100;
  const APPS = Array.from({ length: 10 }, (_, i) => 300 + i);
  const NAMES = Array.from({ length: 10 }, (_, i) => `lazy-${i}`);

  beforeAll(async () => {
    // 6,000 events spread over every (application, name), in a shuffled order of time; then 300
    // newer events that one (application, name) holds alone.
    const spread = Array.from({ length: 6000 }, (_, i) =>
      row({
        app: APPS[(i * 7) % 10]!,
        category: "lazy-merge",
        name: NAMES[(i * 3 + Math.floor(i / 10)) % 10]!,
        sessionId: `lazy-session-${i % 40}`,
        timestamp: T + ((i * 7919) % 6000) * 1_000_000,
      }),
    );
    const skewed = Array.from({ length: 300 }, (_, i) =>
      row({
        app: APPS[4]!,
        category: "lazy-skew",
        name: NAMES[2]!,
        sessionId: "lazy-skew-session",
        timestamp: T + (7000 + i) * 1_000_000,
      }),
    );
    const others = Array.from({ length: 990 }, (_, i) =>
      row({
        app: APPS[i % 10]!,
        category: "lazy-skew",
        name: NAMES[Math.floor(i / 10) % 10]!,
        sessionId: "lazy-skew-session",
        timestamp: T + (i % 99) * 1_000_000,
      }),
    );
    await insertAll(db, [...spread, ...skewed, ...others]);
  });

  /** Every matching row, in the page's order, read one application and one name at a time. */
  async function everyMatching(category: string, direction: "asc" | "desc") {
    const rows: EventRow[] = [];
    for (const app of APPS)
      for (const name of NAMES) rows.push(...(await listEvents(db, { category, name, app }, { limit: 10_000 })));
    const sign = direction === "desc" ? -1 : 1;
    return rows.sort((a, b) => sign * (a.timestamp - b.timestamp || a.id - b.id));
  }

  for (const direction of ["desc", "asc"] as const) {
    it(`reads about a page, not k pages, for a page spread over 100 ranges (${direction})`, async () => {
      const expected = await everyMatching("lazy-merge", direction);
      expect(expected).toHaveLength(6000);
      const first = await listCost({ category: "lazy-merge" }, { limit: LIMIT + 1, direction });
      expect(first.rows.map((r) => r.id)).toEqual(expected.slice(0, LIMIT + 1).map((r) => r.id));
      // 100 ranges × 3 rows at first, and the few that hold more of the page read again (300 rows
      // read here in both orders; a read of every range for a page read 6,100).
      expect(first.rowsRead).toBeLessThanOrEqual(LIMIT + 1 + 5 * 100);
      expect(first.rowsRead).toBeLessThan((100 * (LIMIT + 1)) / 10);
      // One round of 100 ranges, 25 in each statement (nested compounds of 5, D1's limit), in each
      // generation the read passes (an ascending read starts at the oldest, which other tests fill).
      expect(first.statements).toBeLessThanOrEqual(4 * first.generations);

      // From a position deep inside, and by offset: the same rows as the full order.
      const at = 3210;
      const deep = await listCost(
        { category: "lazy-merge" },
        { limit: LIMIT + 1, direction, after: { timestamp: expected[at]!.timestamp, id: expected[at]!.id } },
      );
      expect(deep.rows.map((r) => r.id)).toEqual(expected.slice(at, at + LIMIT + 1).map((r) => r.id));
      // (from a position, each range's first arm seeks inside the position's timestamp: a row more each)
      expect(deep.rowsRead).toBeLessThanOrEqual(LIMIT + 1 + 6 * 100);
      const offset = await listEvents(db, { category: "lazy-merge" }, { limit: LIMIT, offset: 777, direction });
      expect(offset.map((r) => r.id)).toEqual(expected.slice(777, 777 + LIMIT).map((r) => r.id));
    });

    it(`finds a page that one range of 100 holds alone, within k × (limit + 1) rows (${direction})`, async () => {
      const expected = await everyMatching("lazy-skew", direction);
      expect(expected).toHaveLength(1290);
      const page = await listCost({ category: "lazy-skew" }, { limit: LIMIT + 1, direction });
      expect(page.rows.map((r) => r.id)).toEqual(expected.slice(0, LIMIT + 1).map((r) => r.id));
      expect(page.rowsRead).toBeLessThanOrEqual(100 * (LIMIT + 1));
      if (direction === "desc") {
        // The newest 300 are one range's: after its share, it reads what the page still needs at
        // most (the page's size less the rows read so far at or before its last one), in one more
        // round where growing steps took two more (693 rows read here, 699 then).
        expect(page.rows.every((r) => r.app === APPS[4] && r.name === NAMES[2])).toBe(true);
        expect(page.rowsRead).toBeLessThan((100 * (LIMIT + 1)) / 10);
        // 25 ranges per statement: 4 statements in the first round, 1 in the second.
        expect(page.statements).toBeLessThanOrEqual(5);
        // The same page again on this isolate: the range that held it starts with as many, one round.
        const again = await listCost({ category: "lazy-skew" }, { limit: LIMIT + 1, direction });
        expect(again.rows.map((r) => r.id)).toEqual(page.rows.map((r) => r.id));
        expect(again.statements).toBeLessThanOrEqual(4);
        expect(again.rowsRead).toBeLessThanOrEqual(page.rowsRead);
      }
    });
  }
});

describe("a session looked up across applications", () => {
  it("seeks each application's (app, session_id) instead of reading every session", async () => {
    const T = Date.UTC(2025, 10, 1) * 1000;
    await insertAll(
      db,
      Array.from({ length: 3000 }, (_, i) => row({ sessionId: `many-sessions-${i}`, timestamp: T + i })),
    );
    const m = meteredDb();
    const rows = await listEvents(m.db, { sessionId: "many-sessions-1234" }, { limit: 10 });
    expect(rows.map((r) => r.timestamp)).toEqual([T + 1234]);
    const lookup = m.statements.filter((s) => /from "sessions" where .*"session_id" = \?/i.test(s.sql));
    expect(lookup).toHaveLength(1);
    const pairs = (await env.DB.prepare("SELECT count(*) AS n FROM generation_apps").first<{ n: number }>())!.n;
    // The (generation, application) list read once, then one seek per application.
    expect(await rowsRead(lookup)).toBeLessThanOrEqual(3 * pairs + 2);
    expect(await rowsRead(lookup)).toBeLessThan(100);
  });
});

describe("a read that guesses the filter's numbers", () => {
  it("keeps the read started on the isolate's last answer when the lookups agree, and reads again when they do not", async () => {
    const T = Date.UTC(2025, 11, 1) * 1000;
    await insertAll(db, [row({ category: "guess-category", name: "guess-a", timestamp: T })]);
    const f: EventFilters = { category: "guess-category" };
    let reads = 0;
    const page = () =>
      withFilters(db, f, (r) => {
        reads++;
        return listEvents(db, f, { limit: 10 }, {}, r);
      });
    expect((await page()).map((e) => e.name)).toEqual(["guess-a"]);
    expect(reads).toBe(1);
    // The same answer: the read begun on the guess is the one returned.
    expect((await page()).map((e) => e.name)).toEqual(["guess-a"]);
    expect(reads).toBe(2);
    // A new name in the category is a new type the guess lacks: the page still has its event.
    await insertAll(db, [row({ category: "guess-category", name: "guess-b", timestamp: T + 1 })]);
    expect((await page()).map((e) => e.name)).toEqual(["guess-b", "guess-a"]);
    expect(reads).toBe(4);
    expect((await page()).map((e) => e.name)).toEqual(["guess-b", "guess-a"]);
    expect(reads).toBe(5);
  });
});
