// An event between D1 and the archive: its Parquet row from the stored row, and back from the row
// to the line every reader sends (db/render.ts), the same line GET /api/export sends from D1.
import type { StoredEvent } from "../db/event-reads";
import { renderEvent } from "../db/render";
import type { EventContext } from "../shared/schemas";
import { dateOf, partitionApp } from "./objects";
import { type ArchivedEvent, CONTEXT_FIELDS } from "./parquet";

/** The archive row of a stored event of application `appId`. */
export function archivedOf(row: StoredEvent, appId: string | null): ArchivedEvent {
  return {
    seq: row.id,
    eventId: row.eventId,
    sessionId: row.sessionId,
    category: row.category,
    name: row.name,
    timestamp: row.timestamp,
    receivedAt: row.receivedAt,
    data: row.data,
    application: appId,
    context: row.contextBody ? (JSON.parse(row.contextBody) as EventContext) : null,
  };
}

/** The Parquet partition (application value, date) an event is archived under. */
export function partitionOfEvent(e: ArchivedEvent): { app: string; date: string } {
  return { app: partitionApp(e.application), date: dateOf(e.timestamp) };
}

/** The context's JSON in the order the Worker writes its fields (ingest/context.ts), or null. */
function contextBody(context: EventContext | null): string | null {
  if (!context) return null;
  const ordered: Record<string, unknown> = {};
  for (const f of CONTEXT_FIELDS) if (context[f] !== undefined) ordered[f] = context[f];
  return JSON.stringify(ordered);
}

/** The event's line, as every reader renders it. */
export function renderArchived(e: ArchivedEvent): string {
  return renderEvent({ ...e, contextBody: contextBody(e.context) }, e.application);
}
