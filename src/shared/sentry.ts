// The one seam to Sentry: fetch, queue and scheduled all build their client here.
// No SENTRY_DSN means no client, not a crash. Keys never leave: Authorization and ?key= are not sent;
// nor do IP addresses (allowedIps false; cf-connecting-ip and x-forwarded-for are not allowed headers).
// Every report names its release (this package's version) and environment (ENVIRONMENT); each
// handler tags its own name (`handler`: fetch, queue, scheduled) and what it served.
import { Toucan } from "toucan-js";
import { name, version } from "../../package.json";

declare global {
  interface Env {
    /** Optional secret: where errors go. Unset locally and in tests unless a test sets it. */
    SENTRY_DSN?: string;
  }
}

const SAFE_HEADERS = [
  "user-agent",
  "content-type",
  "content-length",
  "content-encoding",
  "origin",
  "referer",
  "cf-ray",
];

export type Sentry = Toucan;

/** What Sentry calls this build. */
export const RELEASE = `${name}@${version}`;

/** A client for one invocation; with a request, one tagged `handler: fetch` (queue and scheduled tag their own). */
export function createSentry(
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
  request?: Request,
): Sentry | undefined {
  if (!env.SENTRY_DSN) return undefined;
  const sentry = new Toucan({
    dsn: env.SENTRY_DSN,
    release: RELEASE,
    environment: env.ENVIRONMENT,
    context: ctx,
    request,
    requestDataOptions: {
      allowedHeaders: SAFE_HEADERS,
      // Not the key, a cursor, or the page and referrer URLs a POST names for its context (they can hold anything).
      allowedSearchParams: /^(?!key$|cursor$|page$|referrer$)/,
      allowedCookies: false,
      allowedIps: false,
    },
  });
  if (request) sentry.setTag("handler", "fetch");
  return sentry;
}
