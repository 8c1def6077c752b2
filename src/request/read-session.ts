// Reads through D1's Sessions API: in production a GET may be answered by a read replica near the
// user instead of the primary. Each request reads from one session, so its statements see one
// consistent state (a page and its count, an export's watermark and the rows above it). The
// session's bookmark goes back in `X-D1-Bookmark`; a client that sends it on its next request
// reads a state at least that new (pages of one walk never step back in time). Writes (the
// consumer, the cron) and key lookups stay on the primary through the plain binding.
import { drizzle } from "drizzle-orm/d1";
import type { MiddlewareHandler } from "hono";
import { coalesced } from "../db/coalesce";
import { ApiError } from "../shared/errors";
import type { AppEnv } from "./app-env";

export const BOOKMARK_HEADER = "X-D1-Bookmark";

/** What D1 bookmarks look like (hex groups joined by dashes); anything else is refused before D1 sees it. */
const BOOKMARK = /^[0-9a-f]{1,32}(-[0-9a-f]{1,32}){0,7}$/i;

export const readSession: MiddlewareHandler<AppEnv> = async (c, next) => {
  const bookmark = c.req.header(BOOKMARK_HEADER);
  if (bookmark !== undefined && !BOOKMARK.test(bookmark)) {
    throw new ApiError("bad_request", `${BOOKMARK_HEADER} is not a bookmark this service issued`, {
      errors: [{ field: BOOKMARK_HEADER, message: "malformed bookmark" }],
    });
  }
  // Without a bookmark the first read may go to any replica: the query API tolerates a state a
  // moment old (events reach D1 through the queue a moment after they are accepted anyway).
  const session = c.env.DB.withSession(bookmark ?? "first-unconstrained");
  // What the request reads at once (a page, its count, the filter's lookups) goes as one batch.
  c.set("reads", drizzle(coalesced(session) as unknown as D1Database));
  c.set("readsRaw", session);
  await next();
  const reached = session.getBookmark();
  if (reached) c.header(BOOKMARK_HEADER, reached);
};
