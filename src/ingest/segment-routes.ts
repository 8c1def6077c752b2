// Segment's HTTP Tracking API: POST /v1/track, /v1/page, /v1/screen, /v1/identify, /v1/group,
// /v1/alias, /v1/batch and analytics.js's short forms (/v1/t … /v1/b), its metrics (/v1/m), and the
// settings analytics.js loads (GET /v1/projects/{writeKey}/settings). Point a Segment library's
// host at The Eye and nothing else changes (docs/sdks.md).
import { type Context, Hono } from "hono";
import type { AppEnv } from "../request/app-env";
import { sdkHeaderKey } from "../request/auth";
import { parseQuery } from "../request/query-string";
import { limitsOf } from "../shared/config";
import { segmentQuery } from "../shared/schemas";
import { nowMicros } from "../shared/timestamp";
import { hiddenProblems } from "./body";
import { admit, dryRunBody, ingestMessages, isDryRun, keyOf, noneAccepted } from "./sdk";
import { readSdkBody } from "./sdk-body";
import {
  mapSegment,
  SEGMENT_BATCH_BYTES,
  SEGMENT_CALLS,
  SEGMENT_MESSAGE_BYTES,
  type SegmentType,
  segmentBody,
} from "./segment";

/** The paths the CORS rule for SDKs covers (app.ts). */
export const SEGMENT_PREFIXES = ["/v1/*"];

const MISSING =
  "a write key is required: HTTP Basic with the key as the user (Segment's libraries), writeKey in the body, or Authorization: Bearer <key>";

/** One call (`type`) or a batch (`type` undefined): read, authenticated, mapped, through the pipeline, answered as Segment does. */
async function receive(c: Context<AppEnv>, type: SegmentType | undefined) {
  const receivedAt = nowMicros();
  const limits = limitsOf(c.env);
  const query = parseQuery(segmentQuery, c.req.queries());
  const batch = type === undefined;
  const segmentCap = batch ? SEGMENT_BATCH_BYTES : SEGMENT_MESSAGE_BYTES;
  const cap = Math.min(limits.maxBodyBytes, segmentCap);
  // A key in the header is checked before the body is read; one in the body, after.
  const outside = sdkHeaderKey(c) ?? c.req.query("key");
  if (outside !== undefined) await admit(c, outside, MISSING);
  const body = await readSdkBody(
    c.req.raw,
    cap,
    cap === segmentCap ? (batch ? "Segment's limit per batch" : "Segment's limit per call") : undefined,
  );
  const parsed = segmentBody(body.value, batch, limits.maxEventsPerRequest);
  const key = keyOf(c, parsed.keys);
  if (outside === undefined) await admit(c, key, MISSING);

  const hidden = hiddenProblems(body.text, { envelope: batch ? "batch" : undefined, numbersIn: null });
  const messages = parsed.messages.map((m) => mapSegment(m, type, parsed.sentAt, receivedAt));
  const dryRun = isDryRun(query);
  const outcome = await ingestMessages(c, "segment", messages, hidden, receivedAt, dryRun);
  if (dryRun) return c.json(dryRunBody(outcome));
  if (outcome.accepted === 0) return noneAccepted(c, outcome);
  // 200: Segment's libraries count any status under 400 as delivered, and never read the body.
  return c.json(
    outcome.errors.length === 0
      ? { success: true, accepted: outcome.accepted }
      : { success: false, accepted: outcome.accepted, errors: outcome.errors },
  );
}

export const segment = new Hono<AppEnv>()
  .post("/v1/batch", (c) => receive(c, undefined))
  .post("/v1/b", (c) => receive(c, undefined))
  // analytics.js's performance metrics: nothing The Eye keeps, answered so the library does not report a failure.
  .post("/v1/m", (c) => c.json({ success: true }))
  // analytics.js's settings (its cdnURL pointed at The Eye): Segment.io, the one destination, sending here.
  .get("/v1/projects/:writeKey/settings", (c) => {
    const url = new URL(c.req.url);
    c.header("Cache-Control", "public, max-age=300");
    return c.json({
      integrations: {
        "Segment.io": {
          apiKey: c.req.param("writeKey"),
          apiHost: `${url.host}/v1`,
          protocol: url.protocol.replace(":", ""),
        },
      },
      metrics: { sampleRate: 0 },
    });
  });

for (const [path, type] of SEGMENT_CALLS) segment.post(`/v1/${path}`, (c) => receive(c, type));
