// PostHog's capture API: POST /e/, /i/v0/e/, /batch/ and /capture/ as posthog-js and posthog-node
// send them; the configuration posthog-js asks for (GET /array/{token}/config and config.js,
// POST /flags/, /decide/), answered with an empty one that keeps it from loading anything else;
// session recordings (/s/) refused. Point a PostHog library's host at The Eye and nothing else changes (docs/sdks.md).
import { type Context, Hono } from "hono";
import type { AppEnv } from "../request/app-env";
import { sdkHeaderKey } from "../request/auth";
import { parseQuery } from "../request/query-string";
import { limitsOf } from "../shared/config";
import { ApiError } from "../shared/errors";
import { posthogQuery } from "../shared/schemas";
import { nowMicros } from "../shared/timestamp";
import { hiddenProblems } from "./body";
import { mapPosthog, POSTHOG_CAPTURE_PATHS, posthogBody } from "./posthog";
import { admit, dryRunBody, ingestMessages, isDryRun, isObject, keyOf, noneAccepted } from "./sdk";
import { readSdkBody } from "./sdk-body";

/** The paths the CORS rule for SDKs covers (app.ts). */
export const POSTHOG_PREFIXES = [
  ...POSTHOG_CAPTURE_PATHS.map((p) => `${p}/*`),
  "/decide/*",
  "/flags/*",
  "/array/*",
  "/s/*",
];

const MISSING =
  "a write key is required: api_key or token in the body (PostHog's libraries), or Authorization: Bearer <key>";

/**
 * The remote configuration: autocapture on, gzip, and every feature that would load a script or
 * send elsewhere off (recordings, heatmaps, web vitals, dead clicks, exceptions, surveys: the last by
 * leaving the key out, as any value loads surveys.js); no feature flags, so no /flags/ request.
 */
export const REMOTE_CONFIG = {
  supportedCompression: ["gzip", "gzip-js"],
  autocapture_opt_out: false,
  elementsChainAsString: true,
  sessionRecording: false,
  capturePerformance: false,
  heatmaps: false,
  captureDeadClicks: false,
  autocaptureExceptions: false,
  hasFeatureFlags: false,
  toolbarParams: {},
  isAuthenticated: false,
  siteApps: [],
};

/** No flags, and the configuration too: /flags/ (v2 `flags`, v1 `featureFlags`) and the older /decide/ take the same answer. */
const FLAGS = {
  ...REMOTE_CONFIG,
  config: { enable_collect_everything: true },
  flags: {},
  featureFlags: {},
  featureFlagPayloads: {},
  errorsWhileComputingFlags: false,
};

/** A project token as it may appear in a path (The Eye's keys are letters, digits and `_`). */
const TOKEN = /^[A-Za-z0-9_-]{1,200}$/;

function tokenOf(c: Context<AppEnv>): string {
  const token = c.req.param("token") ?? "";
  if (!TOKEN.test(token)) throw new ApiError("not_found", "no configuration for this token");
  c.header("Cache-Control", "public, max-age=300");
  return token;
}

async function capture(c: Context<AppEnv>) {
  const receivedAt = nowMicros();
  const limits = limitsOf(c.env);
  const query = parseQuery(posthogQuery, c.req.queries());
  // A key in the header is checked before the body is read; one in the body (PostHog's way), after.
  const outside = sdkHeaderKey(c) ?? c.req.query("key");
  if (outside !== undefined) await admit(c, outside, MISSING);
  const body = await readSdkBody(c.req.raw, limits.maxBodyBytes);
  const parsed = posthogBody(body.value, limits.maxEventsPerRequest);
  const key = keyOf(c, parsed.keys);
  if (outside === undefined) await admit(c, key, MISSING);

  const envelope = isObject(body.value) && Array.isArray(body.value.batch) ? "batch" : undefined;
  const hidden = hiddenProblems(body.text, { envelope, numbersIn: null });
  const messages = parsed.messages.map((m) => mapPosthog(m, parsed.sentAt, receivedAt));
  const dryRun = isDryRun(query);
  const outcome = await ingestMessages(c, "posthog", messages, hidden, receivedAt, dryRun);
  if (dryRun) return c.json(dryRunBody(outcome));
  if (outcome.accepted === 0) return noneAccepted(c, outcome);
  // Exactly 200: posthog-js sends again on any other 2xx. `status: 1` is what PostHog answers.
  return c.json(
    outcome.errors.length === 0
      ? { status: 1, success: true, accepted: outcome.accepted }
      : { status: 1, success: false, accepted: outcome.accepted, errors: outcome.errors },
  );
}

export const posthog = new Hono<AppEnv>()
  .get("/array/:token/config", (c) => {
    tokenOf(c);
    return c.json(REMOTE_CONFIG);
  })
  // What posthog-js's default bundle loads first, as a script, before the JSON above.
  .get("/array/:token/config.js", (c) => {
    const token = tokenOf(c);
    const config = JSON.stringify({ config: REMOTE_CONFIG, siteApps: [] });
    return c.body(
      `(function(){var w=window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};w[${JSON.stringify(token)}]=${config};})();\n`,
      200,
      { "Content-Type": "application/javascript; charset=utf-8" },
    );
  })
  .post("/flags", (c) => c.json(FLAGS))
  .post("/decide", (c) => c.json(FLAGS))
  // Session recordings: refused before the body is read (a 4xx, which posthog-js drops rather than retries).
  .post("/s", () => {
    throw new ApiError(
      "not_found",
      "The Eye does not collect session recordings (POST /s/); its remote configuration turns them off",
    );
  });

for (const path of POSTHOG_CAPTURE_PATHS) posthog.post(path, capture);
