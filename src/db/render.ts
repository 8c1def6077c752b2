// One event as JSON text, the way every reader sees it: the query API's results, the archive's
// NDJSON lines and the export stream all write this one shape, the event's context included.

import { formatTimestamp } from "../shared/timestamp";
import type { EventRow } from "./schema";

/**
 * The original's fields, in its order, then ours. `data` is spliced in as stored (the JSON text
 * of an object); `application` is the application's id (events store its number).
 */
export function renderEvent(
  r: Pick<EventRow, "sessionId" | "timestamp" | "category" | "name" | "data" | "eventId" | "receivedAt"> & {
    contextBody?: string | null;
  },
  application: string | null,
): string {
  return (
    `{"session_id":${JSON.stringify(r.sessionId)},"timestamp":"${formatTimestamp(r.timestamp)}",` +
    `"category":${JSON.stringify(r.category)},"name":${JSON.stringify(r.name)},"data":${r.data},` +
    `"event_id":"${r.eventId}","received_at":"${formatTimestamp(r.receivedAt)}","application":${JSON.stringify(application)},` +
    // The context as stored: the JSON text of an object the Worker itself wrote (context.ts).
    `"context":${r.contextBody ?? "null"}}`
  );
}
