// The route table the document is written from: every path and method, its parameters, its key,
// what it answers and with which errors.
import type * as z from "zod/mini";
import { POSTHOG_CAPTURE_PATHS } from "../ingest/posthog";
import { SEGMENT_CALLS } from "../ingest/segment";
import {
  errorQuery,
  errorSummaryQuery,
  eventId,
  eventQuery,
  exportQuery,
  ingestQuery,
  label,
  MAX_LIMIT,
  MAX_OFFSET,
  MAX_STATS_SERIES,
  posthogQuery,
  receiptQuery,
  segmentQuery,
  statsQuery,
} from "../shared/schemas";
import type { DocLimits } from "./json-schema";
import type { SchemaName } from "./responses";
import { POSTHOG_MAPPING, SEGMENT_MAPPING } from "./sdk-schemas";

/** Who may call: `segment` and `posthog` take the write key where those SDKs carry it (docs/sdks.md). */
export type Auth = "write" | "read" | "read-optional" | "none" | "segment" | "posthog";

export interface Route {
  method: "get" | "post";
  path: string;
  tag: string;
  summary: string;
  description?: string;
  auth: Auth;
  query?: z.ZodMiniObject;
  /** What a parameter means on this route, where it differs from PARAMS. */
  notes?: Record<string, string>;
  pathParams?: Record<string, { schema: z.ZodMiniType; description: string }>;
  /** Takes the event batch (POST). */
  events?: boolean;
  /** Takes another body: an SDK's (its schema, what it is, the media types read). */
  body?: { schema: SchemaName; description: string; media: string[] };
  /** Reads through a D1 session: X-D1-Bookmark in and out. */
  bookmark?: boolean;
  /** A static file (public/), served before the Worker: none of the Worker's headers. */
  asset?: boolean;
  ok: Record<string, { description: string; schema?: SchemaName; media?: string; text?: string; headers?: string[] }>;
  errors: number[];
}

const READ_ERRORS = [400, 401, 403, 429, 500];
const WRITE_ERRORS = [400, 401, 403, 413, 415, 429, 500];

/** What each query parameter means, wherever it appears. */
export const PARAMS: Record<string, string> = {
  session_id: "only this session's events (exact)",
  category: "only this category (exact); an empty value means no filter",
  name: "only this name (exact); an empty value means no filter",
  timestamp_after: "events at or after this instant: a timestamp as events take them, or a date alone (midnight UTC)",
  timestamp_before: "events at or before this instant (inclusive), written as timestamp_after",
  timestamp_start: "alias of timestamp_after (when both are given, the later applies)",
  timestamp_end: "alias of timestamp_before (when both are given, the earlier applies)",
  limit: `rows per page, 1–${MAX_LIMIT}; default 100`,
  offset: `rows to skip, 0–${MAX_OFFSET}; offset pagination only (use the cursor beyond)`,
  pagination:
    "`cursor` for cursor pages (follow `next`), which never repeat an event nor skip one stored before the walk began; default `offset`",
  cursor: "where the next page starts, from a cursor page's `next` link",
  kind: "`invalid_event` (refused at the edge), `malformed_message` (unreadable queue message), `consumer_failure` (a write being retried), `dead_letter` (given up)",
  app_id:
    "an application id: a key for every application reads that one; a scoped key may name only its own (else 403)",
  field: "the first reason's field (`timestamp`, `data/price`)",
  rule: "the first reason's rule (`future`, `minimum`, `invalid_type`)",
  occurred_after: "entries at or after this instant",
  occurred_before: "entries at or before this instant",
  after: "the window's start, widened to the whole hour (default: 23 hours before `before`'s hour)",
  before: "the window's end, widened to the end of its hour (default: now)",
  interval: "bucket width: `hour` (default) or `day` (UTC)",
  by: "split the series by `category` (default) or `name`",
  country:
    "only events from this country: an ISO 3166-1 alpha-2 code as Cloudflare reports it (`XX` unknown, `T1` Tor), any case; events without context never match",
  device: "only events from this device type (parsed from User-Agent); events without context never match",
  dry_run:
    "`1` or `true`: the dry run, answered per message (the event each would become, or why not); nothing stored or logged",
  compression:
    "`gzip-js` or `gzip` (the body is gzip; also read without this, by its first bytes), `base64` (a form's `data=` is base64); `lz64` is refused (415)",
  page: "the page the events happened on (`location.href`): its `utm_*` parameters go into each event's `context`; nothing else of it is kept",
  referrer:
    "the page's referrer (`document.referrer`): its host goes into each event's `context` as `referrer_host`; nothing else of it is kept",
};

const SDK_ERRORS = [400, 401, 403, 413, 415, 429, 500, 503];
const SDK_MEDIA = ["application/json", "text/plain", "application/x-www-form-urlencoded"];

/** Segment's routes: each call by its name and analytics.js's letter, the batches, metrics and settings. */
function segmentRoutes(limits: DocLimits): Route[] {
  const answered = {
    "200": {
      description:
        "every message stored (`success: true`), or some, with why the others were refused; with ?dry_run=1, per message (SdkDryRun)",
      schema: "SegmentAnswer" as const,
    },
  };
  const calls: Route[] = SEGMENT_CALLS.map(([path, type]) => ({
    method: "post",
    path: `/v1/${path}`,
    tag: "segment",
    summary: path.length === 1 ? `Segment ${type} (analytics.js's /v1/${path})` : `Segment ${type}`,
    description: `One ${type} message; body at most ${Math.min(32 * 1024, limits.maxBodyBytes)} bytes (Segment's limit per call). The mapping: POST /v1/batch.`,
    auth: "segment",
    query: segmentQuery,
    body: { schema: "SegmentMessage", description: `a ${type} message (\`type\` may be left out)`, media: SDK_MEDIA },
    ok: answered,
    errors: SDK_ERRORS,
  }));
  const batches: Route[] = ["batch", "b"].map((path) => ({
    method: "post",
    path: `/v1/${path}`,
    tag: "segment",
    summary: path === "b" ? "Segment batch (analytics.js's batching /v1/b)" : "Segment batch",
    description:
      `At most ${limits.maxEventsPerRequest} messages and ${Math.min(500 * 1024, limits.maxBodyBytes)} bytes (Segment's limit per batch), each message at most 32 KB; ` +
      "the batch's `context` and `integrations` merged under each message's own." +
      (path === "batch" ? `\n\n${SEGMENT_MAPPING}` : " The mapping: POST /v1/batch."),
    auth: "segment",
    query: segmentQuery,
    body: { schema: "SegmentBatch", description: "messages, each with its `type`", media: SDK_MEDIA },
    ok: answered,
    errors: SDK_ERRORS,
  }));
  return [
    ...calls,
    ...batches,
    {
      method: "post",
      path: "/v1/m",
      tag: "segment",
      summary: "analytics.js's metrics",
      description:
        "Answered so analytics.js does not report a failure; nothing is kept. The settings below turn the metrics off.",
      auth: "none",
      ok: { "200": { description: "taken, kept nowhere", schema: "Ok" } },
      errors: [],
    },
    {
      method: "get",
      path: "/v1/projects/{writeKey}/settings",
      tag: "segment",
      summary: "analytics.js's settings",
      description:
        "What analytics.js loads from its `cdnURL`: the Segment.io destination, sending to this host, with the key as its `apiKey`; metrics off. Cached 5 minutes.",
      auth: "none",
      pathParams: { writeKey: { schema: label, description: "the write key analytics.js was loaded with" } },
      ok: { "200": { description: "the settings", schema: "SegmentSettings" } },
      errors: [],
    },
  ];
}

/** PostHog's routes: capture at every path its libraries use, the configuration, flags, recordings. */
function posthogRoutes(limits: DocLimits): Route[] {
  const capture: Route[] = POSTHOG_CAPTURE_PATHS.map((path) => ({
    method: "post",
    path: `${path}/`,
    tag: "posthog",
    summary: `PostHog capture (${path}/)`,
    description:
      `Events: \`{api_key, batch, sent_at}\`, an array, or one event; at most ${limits.maxEventsPerRequest} events and ${limits.maxBodyBytes} bytes (also once inflated).` +
      (path === "/batch" ? `\n\n${POSTHOG_MAPPING}` : " The mapping: POST /batch/."),
    auth: "posthog",
    query: posthogQuery,
    body: { schema: "PosthogBody", description: "a batch, an array of events, or one event", media: SDK_MEDIA },
    ok: {
      "200": {
        description:
          "every event stored, or some, with why the others were refused (always 200: posthog-js sends again on any other 2xx); with ?dry_run=1, per event (SdkDryRun)",
        schema: "PosthogAnswer",
      },
    },
    errors: SDK_ERRORS,
  }));
  const flags = (path: string, summary: string): Route => ({
    method: "post",
    path,
    tag: "posthog",
    summary,
    description: "No feature flags are defined: every flag is off. The body is not read.",
    auth: "none",
    ok: { "200": { description: "no flags, and the configuration", schema: "PosthogFlags" } },
    errors: [],
  });
  const token = { token: { schema: label, description: "the project token posthog-js was given: the write key" } };
  return [
    ...capture,
    {
      method: "get",
      path: "/array/{token}/config",
      tag: "posthog",
      summary: "posthog-js's remote configuration",
      description:
        "Autocapture on, gzip, and everything that would load a script or send elsewhere off (recordings, heatmaps, web vitals, dead clicks, exceptions, surveys, flags). Cached 5 minutes.",
      auth: "none",
      pathParams: token,
      ok: { "200": { description: "the configuration", schema: "PosthogConfig" } },
      errors: [],
    },
    {
      method: "get",
      path: "/array/{token}/config.js",
      tag: "posthog",
      summary: "posthog-js's remote configuration, as the script its default bundle loads",
      description: "Sets `window._POSTHOG_REMOTE_CONFIG[token]` to the configuration above. Cached 5 minutes.",
      auth: "none",
      pathParams: token,
      ok: { "200": { description: "a script", media: "application/javascript", text: "JavaScript" } },
      errors: [],
    },
    flags("/flags/", "Feature flags (none)"),
    flags("/decide/", "Feature flags and configuration, for older clients (none)"),
    {
      method: "post",
      path: "/s/",
      tag: "posthog",
      summary: "Session recordings: refused",
      description:
        "The Eye does not collect session recordings: 404, before the body is read (posthog-js drops a 4xx).",
      auth: "none",
      ok: {},
      errors: [404],
    },
  ];
}

export function routes(limits: DocLimits): Route[] {
  const eventsPage = {
    "200": { description: "one page of events", schema: "EventPage" as const, headers: ["X-D1-Bookmark"] },
  };
  return [
    {
      method: "post",
      path: "/api/event/",
      tag: "ingestion",
      summary: "Send one event or a batch",
      description:
        `One event object, or an array of 1–${limits.maxEventsPerRequest}; body at most ${limits.maxBodyBytes} bytes (also once inflated). ` +
        "`text/plain` (what `navigator.sendBeacon` sends) is read as JSON; `Content-Encoding: gzip` is accepted. Valid events are queued and " +
        "stored within seconds; invalid ones are refused one by one (`errors`) and logged (GET /api/errors/). Each stored event gets the request's " +
        "`context` (country, region, city, timezone, continent, ASN; browser, OS, device type; with `page`/`referrer`, the referrer's host and UTM " +
        "parameters) unless its application turned context off; the client's IP address is never stored.",
      auth: "write",
      query: ingestQuery,
      events: true,
      ok: {
        "202": {
          description:
            "all events queued (`success: true`), or some, with why the others were refused (`success: false`)",
          schema: "IngestAccepted",
        },
      },
      errors: [...WRITE_ERRORS, 503],
    },
    {
      method: "post",
      path: "/api/event/validate",
      tag: "ingestion",
      summary: "Dry run: what would be accepted",
      description:
        "The same bodies and checks as POST /api/event/, answered per event (with the event_id each would be stored under); stores and logs nothing.",
      auth: "write",
      events: true,
      ok: {
        "200": { description: "each event, accepted (with its event_id) or refused (with why)", schema: "DryRun" },
      },
      errors: WRITE_ERRORS,
    },
    {
      method: "get",
      path: "/api/event/",
      tag: "events",
      summary: "Query events",
      description:
        "Newest first. Offset pages (`count`, `next`, `previous`, as the original's) or, with `pagination=cursor`, cursor pages (`next` only) that cost " +
        "the same however deep. `count` is exact. Each event carries its `context` (where and on what it happened, or null).",
      auth: "read",
      query: eventQuery,
      bookmark: true,
      ok: eventsPage,
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/event/{event_id}",
      tag: "events",
      summary: "Delivery receipt: one stored event",
      description: "The stored event, as one result of GET /api/event/, or 404 while it is not stored (yet).",
      auth: "read",
      query: receiptQuery,
      notes: {
        app_id:
          "the application whose event to read, when several stored this event_id (else 409); a scoped key may name only its own",
      },
      pathParams: { event_id: { schema: eventId, description: "the event's id (any case)" } },
      bookmark: true,
      ok: { "200": { description: "the stored event", schema: "StoredEvent", headers: ["X-D1-Bookmark"] } },
      errors: [...READ_ERRORS, 404, 409],
    },
    {
      method: "get",
      path: "/api/sessions/{session_id}/events",
      tag: "events",
      summary: "One session's events, oldest first",
      auth: "read",
      query: eventQuery,
      notes: { session_id: "ignored here: the path names the session" },
      pathParams: { session_id: { schema: label, description: "the session's id, as events carry it" } },
      bookmark: true,
      ok: eventsPage,
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/export",
      tag: "events",
      summary: "Export a time range as NDJSON",
      description:
        `Every event in a time range of at most ${limits.exportMaxDays} days (EXPORT_MAX_DAYS), from the R2 archive and D1, one JSON event per line ` +
        "(the shape of StoredEvent), by application and hour, not sorted. timestamp_after and timestamp_before (or their aliases) are required.",
      auth: "read",
      query: exportQuery,
      notes: {
        timestamp_after: "required (or timestamp_start): the range's start, inclusive",
        timestamp_before: "required (or timestamp_end): the range's end, inclusive",
      },
      bookmark: true,
      ok: {
        "200": {
          description: "the events, one JSON object (StoredEvent) per line",
          media: "application/x-ndjson",
          text: "lines of StoredEvent",
          headers: ["X-D1-Bookmark", "X-Archive-Watermark"],
        },
      },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/stats/counts",
      tag: "events",
      summary: "Events counted per hour or day, by category or name",
      description:
        "Counts from the hourly roll-ups (never the events), in whole buckets; the largest series first, the rest summed into `other`. " +
        "`country` or `device` (one of them) counts only events with that context, from the roll-ups by context.",
      auth: "read",
      query: statsQuery,
      notes: {
        limit: `series, 1–${MAX_STATS_SERIES}; default 10 (the rest are summed into \`other\`)`,
        timestamp_after: "the window's start, widened to its bucket (default: the last 24 hours, or 30 days by day)",
        timestamp_before: "the window's end, widened to its bucket (default: now)",
      },
      bookmark: true,
      ok: {
        "200": {
          description: "counts per bucket: totals and series",
          schema: "StatsCounts",
          headers: ["X-D1-Bookmark"],
        },
      },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/errors/",
      tag: "monitoring",
      summary: "The error log, newest first",
      description: "Refused events, malformed and dead-lettered messages, failed writes: why, and what was sent.",
      auth: "read",
      query: errorQuery,
      notes: { category: "the refused event's category (exact)", name: "the refused event's name (exact)" },
      bookmark: true,
      ok: { "200": { description: "one page of entries", schema: "ErrorLogPage", headers: ["X-D1-Bookmark"] } },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/errors/summary",
      tag: "monitoring",
      summary: "Error-log entries counted by kind, rule, type and field",
      description: "Sums hourly counts over whole hours (never the log itself), largest first, with totals per kind.",
      auth: "read",
      query: errorSummaryQuery,
      notes: { limit: `groups, 1–${MAX_LIMIT}; default 100 (\`truncated\` says whether there are more)` },
      bookmark: true,
      ok: { "200": { description: "the counts", schema: "ErrorSummary", headers: ["X-D1-Bookmark"] } },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/api/health",
      tag: "service",
      summary: "Liveness, version, storage",
      description:
        "No key needed; with a read key for every application also `storage` (database size, hot window, archive watermark and backlog).",
      auth: "read-optional",
      bookmark: true,
      ok: {
        "200": { description: "D1 answers", schema: "Health", headers: ["X-D1-Bookmark"] },
        "503": { description: "D1 does not answer (`status: degraded`)", schema: "Health" },
      },
      errors: READ_ERRORS,
    },
    {
      method: "get",
      path: "/",
      tag: "service",
      summary: "The service, its version and endpoints",
      description: "JSON; a browser (Accept: text/html) gets the same as a small HTML page. Also at /api/.",
      auth: "none",
      ok: { "200": { description: "what this is and where the docs are", schema: "Service" } },
      errors: [],
    },
    {
      method: "get",
      path: "/api/",
      tag: "service",
      summary: "The same as GET /",
      auth: "none",
      ok: { "200": { description: "what this is and where the docs are", schema: "Service" } },
      errors: [],
    },
    {
      method: "get",
      path: "/api/openapi.json",
      tag: "service",
      summary: "This document",
      description:
        "A static file generated from the zod schemas the routes validate with (`npm run openapi`); the reference page at /docs renders it.",
      auth: "none",
      asset: true,
      ok: { "200": { description: "OpenAPI 3.1", media: "application/json", text: "an OpenAPI 3.1 document" } },
      errors: [],
    },
    ...segmentRoutes(limits),
    ...posthogRoutes(limits),
  ];
}
