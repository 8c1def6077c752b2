// The Eye's client: send events (createTracker) and read them back (createQueryClient).

export type { TrackedEvent } from "./event-queue.js";
export type { EventContext, EventInput, EventQuery, FieldError, StoredEvent } from "./generated/server.js";
export { SERVER_LIMITS } from "./generated/server.js";
export type { Fetch } from "./http.js";
export type { EventFilters, Page, QueryClientOptions } from "./query.js";
export { createQueryClient, EyeError, QueryClient } from "./query.js";
export { resetSessionId, sessionId } from "./session.js";
export { BEACON_MAX_BYTES, createTracker, Tracker } from "./tracker.js";
export type { FlushResult, TrackerError, TrackerOptions, TrackOptions } from "./tracker-options.js";
export { uuidv7 } from "./uuid.js";
