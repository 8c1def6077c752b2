// The Eye's client: send events (createTracker) and read them back (createQueryClient).

export type { EventInput, EventQuery, FieldError } from "./generated/server.js";
export { SERVER_LIMITS } from "./generated/server.js";
export type { Fetch } from "./http.js";
export type { EventFilters, Page, QueryClientOptions, StoredEvent } from "./query.js";
export { createQueryClient, EyeError, QueryClient } from "./query.js";
export { resetSessionId, sessionId } from "./session.js";
export type { FlushResult, TrackedEvent, TrackerError, TrackerOptions, TrackOptions } from "./tracker.js";
export { BEACON_MAX_BYTES, createTracker, Tracker } from "./tracker.js";
export { uuidv7 } from "./uuid.js";
