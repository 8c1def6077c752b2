// The Eye's client: send events (createTracker) and read them back (createQueryClient).
export { createTracker, Tracker, BEACON_MAX_BYTES } from "./tracker.js";
export type { TrackedEvent, TrackOptions, TrackerError, TrackerOptions, FlushResult } from "./tracker.js";
export { createQueryClient, QueryClient, EyeError } from "./query.js";
export type { EventFilters, Page, QueryClientOptions, StoredEvent } from "./query.js";
export { sessionId, resetSessionId } from "./session.js";
export { uuidv7 } from "./uuid.js";
export type { Fetch } from "./http.js";
export { SERVER_LIMITS } from "./generated/server.js";
export type { EventInput, EventQuery, FieldError } from "./generated/server.js";
