// GET routes: events filtered, ordered and paginated (limit/offset as the original, or a cursor),
// one session's events in the order they happened, the error log and its summary.
import { Hono } from "hono";
import { directoryKnowing } from "../db/applications";
import type { Db } from "../db/db";
import { countErrors, listErrors, summaryQueries } from "../db/error-log";
import { countEvents } from "../db/event-counts";
import { type EventFilters, listEvents, type Position, type ReadOptions, withFilters } from "../db/event-reads";
import { renderEvent } from "../db/render";
import type { ErrorLogRow, EventRow } from "../db/schema";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { appOf, filtersOf, parseQuery, scopeOf } from "../request/query-string";
import { readSession } from "../request/read-session";
import { storageFrom } from "../shared/config";
import { ApiError } from "../shared/errors";
import { type EventQuery, errorQuery, errorSummaryQuery, eventQuery, label } from "../shared/schemas";
import { formatTimestamp, HOUR, nowMicros } from "../shared/timestamp";

const DEFAULT_LIMIT = 100;

/** What the event reads take from the settings: HOT_DAYS, for a generation span not set yet. */
export const readOptions = (env: Env): ReadOptions => ({ hotDays: storageFrom(env).hotDays });

// Cursor: base64url of [timestamp, id], the first row of the page it points to.
// A third element, 0, says the row is the first of its timestamp in the walk (Position.tie).
export function encodeCursor(p: Position): string {
  const value = p.tie === false ? [p.timestamp, p.id, 0] : [p.timestamp, p.id];
  return btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor(token: string): Position {
  const bad = () =>
    new ApiError("invalid_query", "invalid query parameter cursor: not a cursor this server issued", {
      errors: [{ field: "cursor", message: "cursor is malformed" }],
    });
  let value: unknown;
  try {
    value = JSON.parse(atob(token.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    throw bad();
  }
  if (
    !Array.isArray(value) ||
    (value.length !== 2 && value.length !== 3) ||
    !value.every((n) => Number.isSafeInteger(n))
  )
    throw bad();
  if (value.length === 3 && value[2] !== 0) throw bad();
  return { timestamp: value[0] as number, id: value[1] as number, tie: value.length === 2 };
}

/** Python's `urllib.parse.quote_plus`, which DRF's links are encoded with. */
const quotePlus = (s: string) =>
  encodeURIComponent(s)
    .replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");

/** Python's string order: by code point (JavaScript's default sort compares UTF-16 units). */
const byCodePoint = (a: string, b: string) => {
  const [x, y] = [[...a], [...b]];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
};

/**
 * The request's URL with some parameters set (or removed, when undefined), written as DRF's
 * `replace_query_param`/`remove_query_param` write it: parameters sorted by name, repeated
 * values kept in order, encoded with `quote_plus`. A client comparing links sees the original's.
 */
function linkWith(url: URL, set: Record<string, string | number | undefined>): string {
  const params = new Map<string, string[]>();
  for (const [key, value] of url.searchParams) params.set(key, [...(params.get(key) ?? []), value]);
  for (const [key, value] of Object.entries(set)) {
    if (value === undefined) params.delete(key);
    else params.set(key, [String(value)]);
  }
  const query = [...params.keys()]
    .sort(byCodePoint)
    .flatMap((key) => params.get(key)!.map((value) => `${quotePlus(key)}=${quotePlus(value)}`))
    .join("&");
  return `${url.origin}${url.pathname}${query === "" ? "" : `?${query}`}${url.hash}`;
}

/** DRF's LimitOffsetPagination links: absolute, keeping the other parameters, null at the ends. */
function offsetLinks(url: URL, limit: number, offset: number, count: number) {
  return {
    next: offset + limit < count ? linkWith(url, { limit, offset: offset + limit }) : null,
    previous: offset <= 0 ? null : linkWith(url, { limit, offset: offset - limit > 0 ? offset - limit : undefined }),
  };
}

async function renderPage(db: Db, head: Record<string, unknown>, rows: EventRow[]): Promise<Response> {
  const apps = await directoryKnowing(db, new Set(rows.map((r) => r.app)));
  const prefix = JSON.stringify(head).slice(0, -1);
  const body = `${prefix}${prefix.length > 1 ? "," : ""}"results":[${rows.map((r) => renderEvent(r, apps.idOf(r.app))).join(",")}]}`;
  return new Response(body, { headers: { "content-type": "application/json; charset=UTF-8" } });
}

/** Serves one page of events in either pagination mode. */
async function eventsPage(db: Db, url: URL, q: EventQuery, f: EventFilters, direction: "asc" | "desc", o: ReadOptions) {
  const limit = q.limit ?? DEFAULT_LIMIT;
  if (q.cursor !== undefined || q.pagination === "cursor") {
    if (q.offset !== undefined) {
      throw new ApiError("invalid_query", "invalid query parameter offset: cursor pagination takes no offset", {
        errors: [{ field: "offset", message: "offset cannot be combined with a cursor" }],
      });
    }
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    // One row of lookahead: it tells whether there is a next page, and is where that page starts.
    const rows = await withFilters(db, f, (r) => listEvents(db, f, { limit: limit + 1, after, direction }, o, r), o);
    const lookahead = rows[limit];
    // Where the next page starts, and whether rows of its timestamp were on this page.
    const tie = lookahead !== undefined && rows[limit - 1]?.timestamp === lookahead.timestamp;
    const next = lookahead
      ? linkWith(url, {
          cursor: encodeCursor({ timestamp: lookahead.timestamp, id: lookahead.id, tie }),
          pagination: "cursor",
        })
      : null;
    return renderPage(db, { next, previous: null }, rows.slice(0, limit));
  }
  const offset = q.offset ?? 0;
  // The page and its count side by side, with the filter's numbers looked up once for both.
  const [rows, count] = await withFilters(
    db,
    f,
    (r) => Promise.all([listEvents(db, f, { limit, offset, direction }, o, r), countEvents(db, f, o, r)]),
    o,
  );
  return renderPage(db, { count, ...offsetLinks(url, limit, offset, count) }, rows);
}

export const eventsQuery = new Hono<AppEnv>().get("/", requireKey("read"), readSession, async (c) => {
  const q = parseQuery(eventQuery, c.req.queries());
  const db = c.get("reads")!;
  return eventsPage(db, new URL(c.req.url), q, filtersOf(q, scopeOf(c)), "desc", readOptions(c.env));
});

export const sessions = new Hono<AppEnv>().get("/:session_id/events", requireKey("read"), readSession, async (c) => {
  const sessionId = label.safeParse(c.req.param("session_id"));
  if (!sessionId.success) {
    throw new ApiError("invalid_query", `invalid session id: ${sessionId.error.issues[0]?.message}`, {
      errors: [{ field: "session_id", message: `session_id ${sessionId.error.issues[0]?.message}` }],
    });
  }
  const q = parseQuery(eventQuery, c.req.queries());
  const db = c.get("reads")!;
  const f = { ...filtersOf(q, scopeOf(c)), sessionId: sessionId.data };
  return eventsPage(db, new URL(c.req.url), q, f, "asc", readOptions(c.env));
});

function renderError(r: ErrorLogRow) {
  return {
    id: r.id,
    kind: r.kind,
    occurred_at: formatTimestamp(r.occurredAt),
    application: r.appId,
    category: r.category,
    name: r.name,
    field: r.field,
    rule: r.rule,
    payload: r.payload,
    reasons: JSON.parse(r.reasons) as unknown,
    source: r.source,
  };
}

export const errorsQuery = new Hono<AppEnv>()
  .get("/", requireKey("read"), readSession, async (c) => {
    const q = parseQuery(errorQuery, c.req.queries());
    const db = c.get("reads")!;
    const f = {
      kind: q.kind,
      appId: appOf(c, q.app_id),
      category: q.category,
      name: q.name,
      field: q.field,
      rule: q.rule,
      after: q.occurred_after,
      before: q.occurred_before,
    };
    const limit = q.limit ?? DEFAULT_LIMIT;
    const offset = q.offset ?? 0;
    const [rows, count] = await Promise.all([listErrors(db, f, limit, offset), countErrors(db, f)]);
    return c.json({ count, ...offsetLinks(new URL(c.req.url), limit, offset, count), results: rows.map(renderError) });
  })
  .get("/summary", requireKey("read"), readSession, async (c) => {
    const q = parseQuery(errorSummaryQuery, c.req.queries());
    const db = c.get("reads")!;
    // Whole hours, since the counts are hourly: the window widens to the start of the hour holding
    // `after` and the end of the hour holding `before`; by default the 24 hours up to this one's end.
    if (q.after !== undefined && q.before !== undefined && q.after > q.before) {
      throw new ApiError("invalid_query", "invalid query parameter after: after is later than before", {
        errors: [{ field: "after", message: "after must not be later than before" }],
      });
    }
    const lastHour = Math.floor((q.before ?? nowMicros()) / HOUR);
    const firstHour = q.after !== undefined ? Math.min(Math.floor(q.after / HOUR), lastHour) : lastHour - 23;
    const appId = appOf(c, q.app_id);
    const limit = q.limit ?? DEFAULT_LIMIT;
    // One more group than asked tells whether there are more.
    const [groups, totals] = await db.batch(
      summaryQueries(db, { firstHour, lastHour, appId, kind: q.kind }, limit + 1),
    );
    const orNull = (s: string) => (s === "" ? null : s);
    return c.json({
      window: {
        after: formatTimestamp(firstHour * HOUR),
        before: formatTimestamp((lastHour + 1) * HOUR),
        hours: lastHour - firstHour + 1,
      },
      application: appId ?? null,
      total: totals.reduce((n, t) => n + t.n, 0),
      totals: Object.fromEntries(totals.map((t) => [t.kind, t.n])),
      truncated: groups.length > limit,
      results: groups.slice(0, limit).map((g) => ({
        kind: g.kind,
        rule: orNull(g.rule),
        category: orNull(g.category),
        name: orNull(g.name),
        field: orNull(g.field),
        count: g.n,
      })),
    });
  });
