// GET /api/event/{event_id}: a delivery receipt. The stored event, rendered as one result of
// GET /api/event/, or a 404 saying it is not stored (yet); one seek of each live generation's
// unique (event_id, app) index, so a client can afford to ask after each send.
import { Hono } from "hono";
import { directoryKnowing, numberKnowing } from "../db/applications";
import { findByEventId } from "../db/event-reads";
import { renderEvent } from "../db/render";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { appOf, parseQuery, scopeOf } from "../request/query-string";
import { readSession } from "../request/read-session";
import { storageFrom } from "../shared/config";
import { ApiError } from "../shared/errors";
import { eventId as eventIdSchema, receiptQuery } from "../shared/schemas";

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
  const rows = await findByEventId(db, id, app, { hotDays: storageFrom(c.env).hotDays });
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
