// The one seam to Sentry: fetch, queue and scheduled all build their client here.
// No SENTRY_DSN means no client, not a crash. Keys never leave: Authorization and ?key= are not sent.
import { Toucan } from "toucan-js";

declare global {
  interface Env {
    /** Optional secret: where errors go. Unset locally and in tests unless a test sets it. */
    SENTRY_DSN?: string;
  }
}

const SAFE_HEADERS = ["user-agent", "content-type", "content-length", "content-encoding", "origin", "referer", "cf-ray"];

export type Sentry = Toucan;

export function createSentry(env: Env, ctx: Pick<ExecutionContext, "waitUntil">, request?: Request): Sentry | undefined {
  if (!env.SENTRY_DSN) return undefined;
  return new Toucan({
    dsn: env.SENTRY_DSN,
    context: ctx,
    request,
    requestDataOptions: {
      allowedHeaders: SAFE_HEADERS,
      allowedSearchParams: /^(?!key$|cursor$)/,
      allowedCookies: false,
      allowedIps: false,
    },
  });
}
