// What a generation row's numbers stand for: its type's (category, name), its session's id, its
// context's body. Each number means one value for good (the dictionaries' ids are AUTOINCREMENT:
// a deleted row's number is never given to another), so an isolate keeps what it has looked up,
// in bounded caches, and a page looks up only the numbers it has not seen — one D1 round trip for
// all three, reading one row per number, or none at all on a warm isolate.
import { sql } from "drizzle-orm";
import { BoundedCache } from "../shared/bounded-cache";
import type { Db } from "./db";
import { contexts, eventTypes, sessions } from "./schema";

const FOREVER = 24 * 60 * 60_000;
const types = new BoundedCache<{ category: string; name: string }>(20_000);
const sessionIds = new BoundedCache<string>(50_000);
const bodies = new BoundedCache<string>(20_000);

export interface Numbered {
  type: number;
  session: number;
  context: number | null;
}

export interface Values {
  category: string;
  name: string;
  sessionId: string;
  contextBody: string | null;
}

const json = (ids: Iterable<number>) => JSON.stringify([...ids]);

/** The values of every row's numbers, in the rows' order. */
export async function valuesOf(db: Db, rows: Numbered[]): Promise<Values[]> {
  const missing = { types: new Set<number>(), sessions: new Set<number>(), contexts: new Set<number>() };
  for (const r of rows) {
    if (!types.get(String(r.type))) missing.types.add(r.type);
    if (sessionIds.get(String(r.session)) === undefined) missing.sessions.add(r.session);
    if (r.context !== null && bodies.get(String(r.context)) === undefined) missing.contexts.add(r.context);
  }
  const lookups = [
    missing.types.size > 0
      ? db
          .select({ id: eventTypes.id, category: eventTypes.category, name: eventTypes.name })
          .from(eventTypes)
          .where(sql`${eventTypes.id} IN (SELECT value FROM json_each(${json(missing.types)}))`)
      : undefined,
    missing.sessions.size > 0
      ? db
          .select({ num: sessions.num, sessionId: sessions.sessionId })
          .from(sessions)
          .where(sql`${sessions.num} IN (SELECT value FROM json_each(${json(missing.sessions)}))`)
      : undefined,
    missing.contexts.size > 0
      ? db
          .select({ id: contexts.id, body: contexts.body })
          .from(contexts)
          .where(sql`${contexts.id} IN (SELECT value FROM json_each(${json(missing.contexts)}))`)
      : undefined,
  ].filter((q) => q !== undefined);
  if (lookups.length > 0) {
    const [first, ...rest] = lookups;
    const results = rest.length === 0 ? [await first!] : await db.batch([first!, ...rest]);
    for (const result of results as Record<string, unknown>[][])
      for (const row of result) {
        if ("category" in row) types.set(String(row.id), row as { category: string; name: string }, FOREVER);
        else if ("sessionId" in row) sessionIds.set(String(row.num), row.sessionId as string, FOREVER);
        else bodies.set(String(row.id), row.body as string, FOREVER);
      }
  }
  return rows.map((r) => {
    const type = types.get(String(r.type)) ?? { category: "", name: "" };
    return {
      category: type.category,
      name: type.name,
      sessionId: sessionIds.get(String(r.session)) ?? "",
      contextBody: r.context === null ? null : (bodies.get(String(r.context)) ?? null),
    };
  });
}

/** Forgets what the isolate has looked up (tests). */
export function clearDictionaries(): void {
  types.clear();
  sessionIds.clear();
  bodies.clear();
}
