// GET /api/event/{event_id}: a delivery receipt. The stored event, rendered as one result of
// GET /api/event/, or a 404 saying it is not stored (yet); one seek of the unique index
// events_event_id_app, so a client can afford to ask after each send.
import { and, eq, sql } from "drizzle-orm";
import { Hono } from "hono";
import { directoryKnowing, numberKnowing } from "../db/applications";
import type { Db } from "../db/db";
import { eventColumns } from "../db/event-reads";
import { renderEvent } from "../db/render";
import { events } from "../db/schema";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { appOf, parseQuery, scopeOf } from "../request/query-string";
import { readSession } from "../request/read-session";
import { ApiError } from "../shared/errors";
import { eventId as eventIdSchema, receiptQuery } from "../shared/schemas";

/**
 * The events stored under an event id: for one application (its number), at most one row; across
 * applications, at most two (one event id may be stored by several applications: two tell the
 * caller it must choose). Either way one range of events_event_id_app.
 */
export function findStored(db: Db, eventId: string, app?: number) {
  return (
    db
      .select(eventColumns)
      .from(events)
      // The id goes in as its 16 bytes, written as the insert writes them.
      .where(
        and(
          sql`${events.eventId} = unhex(${eventId.replace(/-/g, "")})`,
          app !== undefined ? eq(events.app, app) : undefined,
        ),
      )
      .limit(app !== undefined ? 1 : 2)
  );
}

export const receipt = new Hono<AppEnv>().get("/:event_id", requireKey("read"), readSession, async (c) => {
  const parsed = eventIdSchema.safeParse(c.req.param("event_id"));
  if (!parsed.success) {
    throw new ApiError("invalid_query", "invalid path parameter event_id: must be a UUID", {
      errors: [{ field: "event_id", message: "event_id must be a UUID" }],
    });
  }
  const id = parsed.data;
  const q = parseQuery(receiptQuery, c.req.queries());
  const db = c.get("reads")!;
  // A scoped key reads its own application's event only (scopeOf gives -1, which matches nothing,
  // when its application has no number yet); a key for every application, the one app_id names, or any.
  const appId = appOf(c, q.app_id);
  const app =
    c.get("appId") !== undefined
      ? scopeOf(c).app
      : appId !== undefined
        ? ((await numberKnowing(db, appId)) ?? -1)
        : undefined;
  const rows = await findStored(db, id, app);
  if (rows.length === 0) {
    throw new ApiError(
      "not_found",
      `event ${id} is not stored (yet): accepted events are stored within seconds; a refused one never is ` +
        "(GET /api/errors/), and one older than the hot window is in the archive only (GET /api/export)",
    );
  }
  if (rows.length > 1) {
    throw new ApiError("conflict", `event ${id} is stored by more than one application; add ?app_id= to choose one`, {
      errors: [{ field: "app_id", message: "app_id is required: more than one application stored this event_id" }],
    });
  }
  const row = rows[0]!;
  const application = appId ?? (await directoryKnowing(db, [row.app])).idOf(row.app);
  return new Response(renderEvent(row, application), {
    headers: { "content-type": "application/json; charset=UTF-8" },
  });
});
