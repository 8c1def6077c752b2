// Query strings: validated against their zod schema (a bad value is a 400 naming it), and the
// event filters they ask for, within what the read key may see. Used by every GET route that reads events.
import type { Context } from "hono";
import type * as z from "zod/mini";
import type { EventFilters } from "../db/event-reads";
import { ApiError, clip } from "../shared/errors";
import type { EventQuery } from "../shared/schemas";
import type { AppEnv } from "./app-env";

/**
 * Validates a query string; a bad value is a 400 that names the parameter. A parameter the
 * schema knows, given twice, is refused rather than silently taking one of the values.
 */
export function parseQuery<S extends z.ZodMiniObject>(schema: S, queries: Record<string, string[]>): z.output<S> {
  const repeated = Object.keys(queries).filter((key) => Object.hasOwn(schema.shape, key) && queries[key]!.length > 1);
  if (repeated.length > 0) {
    throw new ApiError("invalid_query", `invalid query parameter ${repeated.join(", ")}: given more than once`, {
      errors: repeated.map((field) => ({ field, message: `${field} is given more than once` })),
    });
  }
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(queries).map(([k, v]) => [k, v[0]])));
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((issue) => {
    const field = String(issue.path[0] ?? "query");
    return { field, message: issue.message.startsWith(field) ? issue.message : `${field} ${issue.message}` };
  });
  throw new ApiError(
    "invalid_query",
    `invalid query parameter ${errors.map((e) => e.field).join(", ")}: ${errors[0]!.message}`,
    { errors },
  );
}

/** The tighter of two optional bounds. */
const tighter = (pick: (a: number, b: number) => number, a?: number, b?: number) =>
  a === undefined ? b : b === undefined ? a : pick(a, b);

/** The event filters a query string asks for, the timestamp aliases folded into one range. */
export function filtersOf(
  q: Pick<
    EventQuery,
    "session_id" | "category" | "name" | "timestamp_after" | "timestamp_before" | "timestamp_start" | "timestamp_end"
  > &
    Partial<Pick<EventQuery, "country" | "device">>,
  scope: { app?: number },
): EventFilters {
  return {
    sessionId: q.session_id,
    category: q.category,
    name: q.name,
    country: q.country,
    device: q.device,
    app: scope.app,
    after: tighter(Math.max, q.timestamp_after, q.timestamp_start),
    before: tighter(Math.min, q.timestamp_before, q.timestamp_end),
  };
}

/** What a read key may see: its application (by number), or every application. */
export function scopeOf(c: Context<AppEnv>): { app?: number } {
  return c.get("appId") !== undefined ? { app: c.get("appNum") ?? NO_APP } : {};
}

/**
 * The scope of a key whose application has no number yet (none has stored an event): a number no
 * row carries. Not ALL_APPS (−1), which the roll-ups use for "every application": a count scoped
 * to it would count everyone's events.
 */
export const NO_APP = -2;

/**
 * The application a read covers when the query names one (`app_id`): a scoped key's own, always;
 * a key for every application, the one named, or all (undefined). A scoped key naming another
 * application is refused (403) rather than answered with nothing, which would read as "none there".
 */
export function appOf(c: Context<AppEnv>, asked: string | undefined): string | undefined {
  const own = c.get("appId");
  if (own === undefined || asked === undefined || asked === own) return own ?? asked;
  throw new ApiError("forbidden", `this read key is scoped to application ${own}; it cannot read ${clip(asked)}`, {
    errors: [{ field: "app_id", message: `app_id must be ${own} (the key's application) or absent` }],
  });
}
