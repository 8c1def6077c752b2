// The Segment and PostHog routes' bodies and answers as zod schemas, for the document (the routes
// map messages by hand, src/ingest/segment.ts and posthog.ts, and their answers are checked against
// these by test/integration/openapi.happy.test.ts), and the mapping as the document says it.
import * as z from "zod/mini";
import { fieldError } from "./field-error";

const int = () => z.int();
const text = () => z.string();
const object = () => z.record(z.string(), z.unknown());
const id = () => z.union([z.string(), z.number()]);

export const segmentMessage = z.looseObject({
  type: z.optional(z.enum(["track", "page", "screen", "identify", "group", "alias"])),
  userId: z.optional(id()),
  anonymousId: z.optional(id()),
  event: z.optional(text()),
  name: z.optional(text()),
  category: z.optional(text()),
  properties: z.optional(object()),
  traits: z.optional(object()),
  groupId: z.optional(id()),
  previousId: z.optional(id()),
  context: z.optional(object()),
  integrations: z.optional(object()),
  messageId: z.optional(text()),
  timestamp: z.optional(text()),
  originalTimestamp: z.optional(text()),
  sentAt: z.optional(text()),
  writeKey: z.optional(text()),
});

export const segmentBatch = z.looseObject({
  batch: z.array(segmentMessage),
  writeKey: z.optional(text()),
  sentAt: z.optional(text()),
  context: z.optional(object()),
  integrations: z.optional(object()),
});

export const posthogEvent = z.looseObject({
  event: text(),
  distinct_id: z.optional(id()),
  properties: z.optional(object()),
  uuid: z.optional(text()),
  timestamp: z.optional(text()),
  offset: z.optional(z.number()),
  $set: z.optional(object()),
  $set_once: z.optional(object()),
  api_key: z.optional(text()),
});

export const posthogBody = z.union([
  z.looseObject({
    api_key: z.optional(text()),
    token: z.optional(text()),
    batch: z.array(posthogEvent),
    sent_at: z.optional(text()),
  }),
  z.array(posthogEvent),
  posthogEvent,
]);

export const segmentAccepted = z.union([
  z.strictObject({ success: z.literal(true), accepted: int() }),
  z.strictObject({ success: z.literal(false), accepted: int(), errors: z.array(fieldError) }),
]);

export const posthogAccepted = z.union([
  z.strictObject({ status: z.literal(1), success: z.literal(true), accepted: int() }),
  z.strictObject({ status: z.literal(1), success: z.literal(false), accepted: int(), errors: z.array(fieldError) }),
]);

export const sdkDryRun = z.strictObject({
  success: z.boolean(),
  accepted: int(),
  refused: int(),
  events: z.array(
    z.union([
      z.strictObject({
        index: int(),
        accepted: z.literal(true),
        event_id: text(),
        event: z.strictObject({
          session_id: text(),
          timestamp: text(),
          category: text(),
          name: text(),
          data: object(),
        }),
      }),
      z.strictObject({ index: int(), accepted: z.literal(false), errors: z.array(fieldError) }),
    ]),
  ),
});

/** What an event route of an SDK answers with 200: the SDK's acknowledgement, or with ?dry_run=1 the dry run. */
export const segmentAnswer = z.union([segmentAccepted, sdkDryRun]);
export const posthogAnswer = z.union([posthogAccepted, sdkDryRun]);

export const segmentSettings = z.strictObject({
  integrations: z.strictObject({
    "Segment.io": z.strictObject({ apiKey: text(), apiHost: text(), protocol: z.enum(["http", "https"]) }),
  }),
  metrics: z.strictObject({ sampleRate: z.literal(0) }),
});

export const posthogConfig = z.looseObject({
  supportedCompression: z.array(text()),
  autocapture_opt_out: z.boolean(),
  sessionRecording: z.literal(false),
  hasFeatureFlags: z.boolean(),
});

export const posthogFlags = z.looseObject({
  flags: object(),
  featureFlags: object(),
  featureFlagPayloads: object(),
  errorsWhileComputingFlags: z.boolean(),
});

export const ok = z.strictObject({ success: z.literal(true) });

/** The document's named schemas for the SDK routes. */
export const sdkShapes = {
  SegmentMessage: segmentMessage,
  SegmentBatch: segmentBatch,
  SegmentAccepted: segmentAccepted,
  SegmentAnswer: segmentAnswer,
  SegmentSettings: segmentSettings,
  PosthogEvent: posthogEvent,
  PosthogBody: posthogBody,
  PosthogAccepted: posthogAccepted,
  PosthogAnswer: posthogAnswer,
  PosthogConfig: posthogConfig,
  PosthogFlags: posthogFlags,
  SdkDryRun: sdkDryRun,
  Ok: ok,
};

/** The tags' descriptions (one line each: the renderer at /docs shows them beside the tag's name). */
export const SEGMENT_TAG =
  "Segment's HTTP Tracking API as @segment/analytics-node and analytics.js send it (docs/sdks.md); the mapping: POST /v1/batch";
export const POSTHOG_TAG =
  "PostHog's capture API as posthog-js and posthog-node send it (docs/sdks.md); the mapping: POST /batch/";

/** Segment's mapping, as docs/sdks.md says it: POST /v1/batch's description. */
export const SEGMENT_MAPPING = `Point the library's host at The Eye (analytics.js: \`cdnURL\`). The write key as HTTP Basic user (empty password), \`writeKey\`
in the body, Bearer or \`?key=\`; one key per request. Each message becomes one event, validated as POST /api/event/ validates events,
and stored once per \`messageId\`:

**session_id**: \`context.sessionId\`, else \`integrations["Actions Amplitude"].session_id\` or \`integrations.Amplitude.session_id\`,
else \`anonymousId\`, else \`userId\`.

**category**: the call type (track, page, screen, identify, group, alias).

**name**: track: \`event\`; page, screen: \`name\`, else \`properties.path\` (page: else \`context.page.path\`), else the type;
identify, group, alias: the type.

**data**: \`properties\`, \`traits\`, \`userId\`, \`anonymousId\`, \`groupId\`, \`previousId\`, \`category\`, and \`context\` without
\`context.ip\`: never an IP address, never the key.

**timestamp**: \`timestamp\` (else \`originalTimestamp\`) corrected for the device's clock, received_at − (sentAt − timestamp), to the
microsecond; as sent without sentAt; the receive time without either.

**event_id**: \`messageId\` if it is a UUID, else a UUID derived from it per application, so a resent message is stored once.

**context**: the edge context, with \`context.page.url\` (its UTM parameters), \`context.page.referrer\` (its host) and
\`context.userAgent\` from the message.

Limits: 32 KB a call and a message, 500 KB a batch (MAX_BODY_BYTES if smaller), MAX_EVENTS_PER_REQUEST messages. 200 when any message
is stored (\`errors\` name the others by index and the SDK's own field), 400 when none is. \`?dry_run=1\` answers per message, storing nothing.`;

/** PostHog's mapping, as docs/sdks.md says it: POST /batch/'s description. */
export const POSTHOG_MAPPING = `Point the library's \`api_host\` / \`host\` at The Eye. JSON, gzip (Content-Encoding, \`?compression=gzip-js\`,
or unmarked: the bytes 1f 8b), or a form whose \`data=\` is the JSON or its base64 (\`?compression=base64\`). The write key as
\`api_key\`, \`token\` or \`$token\` (the envelope's, an event's, or \`properties.token\`), Bearer or \`?key=\`; one key per request.
Each event becomes one event of The Eye, validated as POST /api/event/ validates events, and stored once per \`uuid\`:

**session_id**: \`properties.$session_id\`, else \`distinct_id\`.

**category**: $pageview, $pageleave → page; $screen → screen; $autocapture, $rageclick, $dead_click → autocapture; $identify, $set →
identify; $create_alias, $merge_dangerously → alias; $groupidentify → group; any other event → track.

**name**: \`event\`.

**data**: \`{properties, distinct_id, $set, $set_once, $unset}\` (those present), the properties without \`$ip\`, \`token\` and \`$token\`.

**timestamp**: \`timestamp\` corrected for the device's clock, received_at − (sent_at − timestamp), to the microsecond; without a
timestamp, the receive time less \`offset\` (ms).

**event_id**: \`uuid\` if it is a UUID, else a UUID derived from it per application, so a resent event is stored once.

**context**: the edge context, with \`$current_url\` (its UTM parameters), \`$referrer\` (its host) and \`$raw_user_agent\` from the properties.

Exactly 200 when any event is stored (posthog-js sends again on any other 2xx), 400 when none is. Session recordings (/s/, $snapshot)
are refused. \`?dry_run=1\` answers per event, storing nothing.`;
