// Edge context: where and on what a request's events happened, worked out once per request and
// shared by all of its events. Location comes from Cloudflare (request.cf), browser, OS and device
// type from User-Agent (bowser), the campaign from the page the client names. Never the client's
// address: nothing here reads cf-connecting-ip, and request.cf's finer fields (coordinates,
// postal code, metro code) are left out.
import Bowser from "bowser";
import type { ContextMode } from "../db/schema";
import { BoundedCache } from "../shared/bounded-cache";
import type { EventContext } from "../shared/schemas";

/** The request.cf fields taken. */
interface CfFields {
  country?: unknown;
  region?: unknown;
  city?: unknown;
  timezone?: unknown;
  continent?: unknown;
  asn?: unknown;
}

/** Header that stands in for request.cf under `npm run dev` and tests; ignored unless ENVIRONMENT is "development". */
export const DEV_CF_HEADER = "x-eye-dev-cf";

/** Longest context string kept (a city, a campaign): longer ones are cut. */
const MAX_TEXT = 150;

const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v.slice(0, MAX_TEXT) : undefined);

/** Device types bowser reports; anything else it recognises as a device is "other". */
const DEVICES = new Set(["desktop", "mobile", "tablet", "tv", "bot"]);

interface Agent {
  browser?: string;
  os?: string;
  device?: string;
}

// One parse per distinct User-Agent per isolate: a site's visitors share a few hundred strings,
// and a parse costs ~20 µs (BENCHMARKS.md "Edge context").
const agents = new BoundedCache<Agent>(2_000);
const AGENT_TTL_MS = 3_600_000;

/** Browser, OS and device type from a User-Agent string. */
export function parseAgent(ua: string | null | undefined): Agent {
  if (!ua) return {};
  const key = ua.slice(0, 512);
  const hit = agents.get(key);
  if (hit) return hit;
  let agent: Agent = {};
  try {
    const r = Bowser.parse(key);
    const type = r.platform.type;
    agent = {
      browser: text(r.browser.name),
      os: text(r.os.name),
      device: type ? (DEVICES.has(type) ? type : "other") : undefined,
    };
  } catch {
    // An unparseable string is no context, not an error.
  }
  agents.set(key, agent, AGENT_TTL_MS);
  return agent;
}

const UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"] as const;

/** The referrer's host and the page's UTM parameters, from the URLs the client sent (?page=, ?referrer=). */
export function campaignOf(page: string | undefined, referrer: string | undefined): EventContext {
  const out: EventContext = {};
  const url = (s: string | undefined) => {
    if (!s || s.length > 4096) return undefined;
    try {
      const u = new URL(s);
      return u.protocol === "http:" || u.protocol === "https:" ? u : undefined;
    } catch {
      return undefined;
    }
  };
  const ref = url(referrer);
  if (ref) out.referrer_host = text(ref.hostname);
  const p = url(page);
  if (p)
    for (const k of UTM) {
      const v = text(p.searchParams.get(k));
      if (v !== undefined) out[k] = v;
    }
  return out;
}

/** request.cf, or in development the JSON of the stand-in header. */
function cfOf(request: Request, development: boolean): CfFields {
  if (development) {
    const header = request.headers.get(DEV_CF_HEADER);
    if (header) {
      try {
        const value: unknown = JSON.parse(header);
        if (typeof value === "object" && value !== null) return value as CfFields;
      } catch {
        // A malformed stand-in is ignored.
      }
    }
  }
  return (request.cf ?? {}) as CfFields;
}

/**
 * The context of a request's events, or null when the application turned it off (or nothing is
 * known). "country" keeps the country and continent alone: no region, city, timezone or network.
 * `userAgent` stands in for the request's User-Agent where an SDK names the browser's in the event
 * (a server-side library's request carries its own).
 */
export function contextOf(
  request: Request,
  mode: ContextMode,
  options: { development?: boolean; page?: string; referrer?: string; userAgent?: string } = {},
): EventContext | null {
  if (mode === "off") return null;
  const cf = cfOf(request, options.development === true);
  const country = text(cf.country)?.toUpperCase();
  const ctx: EventContext = { country, continent: text(cf.continent) };
  if (mode === "on") {
    ctx.region = text(cf.region);
    ctx.city = text(cf.city);
    ctx.timezone = text(cf.timezone);
    const asn = typeof cf.asn === "number" ? cf.asn : Number(cf.asn);
    if (Number.isSafeInteger(asn) && asn > 0) ctx.asn = asn;
  }
  Object.assign(
    ctx,
    parseAgent(options.userAgent ?? request.headers.get("user-agent")),
    campaignOf(options.page, options.referrer),
  );
  for (const k of Object.keys(ctx) as (keyof EventContext)[]) if (ctx[k] === undefined) delete ctx[k];
  return Object.keys(ctx).length === 0 ? null : ctx;
}
