// What a route reads from D1: the app is called with a DB binding whose read sessions record every
// statement they bind (SQL and parameters); the test then replays them on the real binding, which
// reports the rows each one read (D1's meta.rows_read). Key lookups and writes use the plain binding
// and are not counted: this measures the route's own reads.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { createApp } from "../../src/app";
import { BASE } from "./api";

export interface Statement {
  sql: string;
  params: unknown[];
}

/** Forwards everything to `target`, methods bound to it, except what `override` answers. */
function wrap<T extends object>(target: T, override: (prop: string | symbol) => unknown): T {
  return new Proxy(target, {
    get(t, prop) {
      const replaced = override(prop);
      if (replaced !== undefined) return replaced;
      const value = Reflect.get(t, prop, t) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

/** Calls the app once with a metered DB; returns the response and the statements its reads bound. */
export async function metered(path: string, headers: Record<string, string>) {
  const statements: Statement[] = [];
  /** The calls that reached D1, each a batch or one statement run alone: the SQL of its statements. */
  const calls: string[][] = [];
  const sqlOf = new WeakMap<object, string>();
  const counted = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const c = wrap(stmt, (prop) =>
      prop === "bind"
        ? (...params: unknown[]) => counted(stmt.bind(...params), sql)
        : prop === "all" || prop === "raw" || prop === "run" || prop === "first"
          ? (...args: unknown[]) => {
              calls.push([sql]);
              return (stmt[prop] as (...a: unknown[]) => unknown).apply(stmt, args);
            }
          : undefined,
    );
    sqlOf.set(c, sql);
    return c;
  };
  const recordBinds = (stmt: D1PreparedStatement, sql: string) =>
    wrap(stmt, (prop) =>
      prop === "bind"
        ? (...params: unknown[]) => {
            statements.push({ sql, params });
            return counted(stmt.bind(...params), sql);
          }
        : undefined,
    );
  const session = (s: D1DatabaseSession) =>
    wrap(s, (prop) =>
      prop === "prepare"
        ? (sql: string) => recordBinds(s.prepare(sql), sql)
        : prop === "batch"
          ? (list: D1PreparedStatement[]) => {
              calls.push(list.map((st) => sqlOf.get(st) ?? "?"));
              return s.batch(list);
            }
          : undefined,
    );
  const db = wrap(env.DB, (prop) =>
    prop === "withSession" ? (b?: string) => session(env.DB.withSession(b as D1SessionConstraint)) : undefined,
  );
  const ctx = createExecutionContext();
  const res = await createApp().fetch(
    new Request(`${BASE}${path}`, { headers: { "cf-connecting-ip": `meter-${crypto.randomUUID()}`, ...headers } }),
    { ...env, DB: db },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { res, statements, calls };
}

/** Rows D1 reads to run these statements again, in the state the database is in now. */
export async function rowsRead(statements: Statement[]): Promise<number> {
  let total = 0;
  for (const s of statements)
    total += (
      await env.DB.prepare(s.sql)
        .bind(...s.params)
        .all()
    ).meta.rows_read;
  return total;
}

/**
 * A Drizzle database over the real binding that records every statement it binds (SQL and
 * parameters), for tests of D1 functions: `rowsRead` replays them for what D1 reports reading.
 */
export function meteredDb(real: D1Database = env.DB) {
  const statements: Statement[] = [];
  const binding = wrap(real, (prop) =>
    prop === "prepare"
      ? (sql: string) => {
          const stmt = real.prepare(sql);
          return wrap(stmt, (p) =>
            p === "bind"
              ? (...params: unknown[]) => {
                  statements.push({ sql, params });
                  return stmt.bind(...params);
                }
              : undefined,
          );
        }
      : undefined,
  );
  return { db: drizzle(binding), statements };
}

/** The statements that read events (a generation's table), not the lists and dictionaries around them. */
export const eventReads = (statements: Statement[]) => statements.filter((s) => /from "events_g/i.test(s.sql));
