// The read binding that sends what one turn reads as one D1 batch (src/db/coalesce.ts), against the
// real local D1: every caller gets the answer it would have had alone, in its own shape, and a
// statement that fails fails only its own caller.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { coalesced } from "../../src/db/coalesce";

/** The real binding, counting the calls that reach it. */
function counting() {
  const calls: string[] = [];
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "batch")
        return (list: D1PreparedStatement[]) => {
          calls.push(`batch of ${list.length}`);
          return target.batch(list);
        };
      if (prop === "prepare")
        return (query: string) => {
          const stmt = target.prepare(query);
          const count = (s: D1PreparedStatement): D1PreparedStatement =>
            new Proxy(s, {
              get(t, p) {
                if (p === "bind") return (...v: unknown[]) => count(t.bind(...v));
                const value = Reflect.get(t, p, t) as unknown;
                if (typeof value !== "function") return value;
                return (...a: unknown[]) => {
                  if (p === "all" || p === "raw" || p === "run" || p === "first") calls.push(String(p));
                  return (value as (...x: unknown[]) => unknown).apply(t, a);
                };
              },
            });
          return count(stmt);
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db, calls };
}

describe("coalesced", () => {
  beforeAll(async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS coalesce_t (a INTEGER, b TEXT)");
    await env.DB.prepare("INSERT INTO coalesce_t VALUES (1, 'x'), (2, 'y'), (3, NULL)").run();
  });

  it("answers reads issued together from one batch, each in the shape it asked for", async () => {
    const plain = env.DB;
    const { db, calls } = counting();
    const c = coalesced(db);
    const q = (d: D1Database) => [
      d.prepare("SELECT a, b FROM coalesce_t ORDER BY a").all(),
      d.prepare("SELECT a, b FROM coalesce_t WHERE a > ? ORDER BY a").bind(1).raw(),
      d.prepare("SELECT a, b FROM coalesce_t ORDER BY a").raw({ columnNames: true }),
      d.prepare("SELECT b FROM coalesce_t WHERE a = ?").bind(2).first("b"),
      d.prepare("SELECT a, b FROM coalesce_t WHERE a = ?").bind(3).first(),
      d.prepare("SELECT a FROM coalesce_t WHERE a = 99").first(),
      d.batch([d.prepare("SELECT count(*) AS n FROM coalesce_t"), d.prepare("SELECT max(a) AS m FROM coalesce_t")]),
    ];
    const together = await Promise.all(q(c));
    const alone = await Promise.all(q(plain));
    const rowsOf = (v: unknown) => (v && typeof v === "object" && "results" in v ? (v as D1Result).results : v);
    expect(together.map((v) => (Array.isArray(v) && v[0]?.results ? v.map(rowsOf) : rowsOf(v)))).toEqual(
      alone.map((v) => (Array.isArray(v) && v[0]?.results ? v.map(rowsOf) : rowsOf(v))),
    );
    expect(calls).toEqual(["batch of 8"]);
  });

  it("fails only the caller whose statement fails, and sends a read alone as it is", async () => {
    const { db, calls } = counting();
    const c = coalesced(db);
    const [good, bad, batch] = await Promise.allSettled([
      c.prepare("SELECT count(*) AS n FROM coalesce_t").first("n"),
      c.prepare("SELECT * FROM coalesce_no_such_table").all(),
      c.batch([c.prepare("SELECT 1 AS one")]),
    ]);
    expect(good).toEqual({ status: "fulfilled", value: 3 });
    expect(bad.status).toBe("rejected");
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/no such table: coalesce_no_such_table/);
    expect(batch.status).toBe("fulfilled");
    // The batch, then each caller again on its own.
    expect(calls).toEqual(["batch of 3", "first", "all", "batch of 1"]);

    calls.length = 0;
    expect(await c.prepare("SELECT 2 AS two").first("two")).toBe(2);
    expect(calls).toEqual(["first"]);
  });
});
