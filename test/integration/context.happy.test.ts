// Edge context (issue 11): each stored event carries where and on what it happened, from its
// request's cf (injected here as `new Request(url, { cf })` would be by Cloudflare) and User-Agent,
// and the campaign from ?page= and ?referrer=; per application it can be coarsened to the country
// or turned off; the client's IP address reaches no store (D1, R2), no log and no Sentry report.
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ARCHIVE_ROOT, archiveLines } from "../../src/archive/objects";
import { renderArchived } from "../../src/archive/rows";
import { DEV_CF_HEADER, parseAgent } from "../../src/ingest/context";
import { maintain } from "../../src/maintain/scheduled";
import { clearKeyCache } from "../../src/request/auth";
import { api, bearer, DEV_READ_KEY, type EventPage, getJson, makeApp, makeEvent, waitForCount } from "../helpers/api";
import { objectEvents } from "../helpers/archive";
import { metered, rowsRead } from "../helpers/read-meter";

/** An address no test uses elsewhere: it must not appear anywhere it could be kept. */
const IP = "198.51.100.237";
const IP6 = "2001:db8:4f2a:77::1";

const BERLIN = {
  country: "DE",
  region: "Berlin",
  city: "Berlin",
  timezone: "Europe/Berlin",
  continent: "EU",
  asn: 3320,
  // Finer than a city, and never kept.
  latitude: "52.52000",
  longitude: "13.40500",
  postalCode: "10115",
  metroCode: "0",
  colo: "TXL",
};

const UA = {
  iphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  windows:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  ipad: "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
};

const PAGE =
  "https://shop.example/spring?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale&utm_term=shoes&utm_content=hero&x=1";
const REFERRER = "https://news.example.org/articles/42?ref=abc";

/** POSTs events the way Cloudflare would hand them to the Worker: with request.cf and the client's address. */
function send(
  events: unknown[],
  o: { key: string; cf?: object; ua?: string; ip?: string; query?: string; headers?: Record<string, string> },
) {
  return api(`/api/event/${o.query ? `?${o.query}` : ""}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...bearer(o.key),
      "user-agent": o.ua ?? UA.windows,
      "cf-connecting-ip": o.ip ?? IP,
      ...o.headers,
    },
    body: JSON.stringify(events),
    ...(o.cf ? { cf: o.cf } : {}),
  } as RequestInit);
}

async function setContext(appId: string, mode: "on" | "country" | "off") {
  await env.DB.prepare("UPDATE applications SET context = ? WHERE id = ?").bind(mode, appId).run();
  clearKeyCache();
}

describe("parseAgent (bowser)", () => {
  it("tells browser, OS and device type apart", () => {
    expect(parseAgent(UA.iphone)).toEqual({ browser: "Safari", os: "iOS", device: "mobile" });
    expect(parseAgent(UA.windows)).toEqual({ browser: "Chrome", os: "Windows", device: "desktop" });
    expect(parseAgent(UA.ipad)).toEqual({ browser: "Safari", os: "iOS", device: "tablet" });
    expect(parseAgent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")).toMatchObject({
      browser: "Googlebot",
      device: "bot",
    });
    expect(parseAgent("")).toEqual({});
    expect(parseAgent("curl/8.5.0")).toEqual({});
  });
});

describe("context at ingestion", () => {
  it("stores the request's location, agent and campaign beside each event of the batch, once for all of them", async () => {
    const app = await makeApp();
    const session = `ctx-${crypto.randomUUID()}`;
    const events = [1, 2, 3].map((i) => makeEvent({ session_id: session, data: { i } }));
    const res = await send(events, {
      key: app.writeKey,
      cf: BERLIN,
      ua: UA.iphone,
      query: `page=${encodeURIComponent(PAGE)}&referrer=${encodeURIComponent(REFERRER)}`,
    });
    expect(res.status).toBe(202);
    const page = await waitForCount(`/api/event/?session_id=${session}`, 3);
    const expected = {
      country: "DE",
      continent: "EU",
      region: "Berlin",
      city: "Berlin",
      timezone: "Europe/Berlin",
      asn: 3320,
      browser: "Safari",
      os: "iOS",
      device: "mobile",
      referrer_host: "news.example.org",
      utm_source: "newsletter",
      utm_medium: "email",
      utm_campaign: "spring-sale",
      utm_term: "shoes",
      utm_content: "hero",
    };
    for (const r of page.results) {
      expect(r.context).toEqual(expected);
      // Beside the event, never inside what the client sent.
      expect(Object.keys(r.data as object)).toEqual(["i"]);
    }
    // The receipt shows it too.
    const receipt = await getJson<Record<string, unknown>>(
      `/api/event/${page.results[0]!.event_id as string}?app_id=${app.appId}`,
    );
    expect(receipt.context).toEqual(expected);
    // One contexts row for the batch; the events point at it and carry the two filter values.
    const rows = await env.DB.prepare("SELECT context, country, device FROM events WHERE session_id = ?")
      .bind(session)
      .all<{ context: number; country: string; device: string }>();
    expect(new Set(rows.results.map((r) => r.context)).size).toBe(1);
    expect(rows.results.every((r) => r.country === "DE" && r.device === "mobile")).toBe(true);
  });

  it("keeps the country (and continent) alone for an application set to country, and nothing for one set to off", async () => {
    const coarse = await makeApp();
    const off = await makeApp();
    await setContext(coarse.appId, "country");
    await setContext(off.appId, "off");
    const s1 = `ctx-${crypto.randomUUID()}`;
    const s2 = `ctx-${crypto.randomUUID()}`;
    const q = `page=${encodeURIComponent(PAGE)}&referrer=${encodeURIComponent(REFERRER)}`;
    expect(
      (await send([makeEvent({ session_id: s1 })], { key: coarse.writeKey, cf: BERLIN, ua: UA.iphone, query: q }))
        .status,
    ).toBe(202);
    expect(
      (await send([makeEvent({ session_id: s2 })], { key: off.writeKey, cf: BERLIN, ua: UA.iphone, query: q })).status,
    ).toBe(202);
    const [a] = (await waitForCount(`/api/event/?session_id=${s1}`, 1)).results;
    expect(a!.context).toEqual({
      country: "DE",
      continent: "EU",
      browser: "Safari",
      os: "iOS",
      device: "mobile",
      referrer_host: "news.example.org",
      utm_source: "newsletter",
      utm_medium: "email",
      utm_campaign: "spring-sale",
      utm_term: "shoes",
      utm_content: "hero",
    });
    const [b] = (await waitForCount(`/api/event/?session_id=${s2}`, 1)).results;
    expect(b!.context).toBeNull();
    const row = await env.DB.prepare("SELECT context, country, device FROM events WHERE session_id = ?")
      .bind(s2)
      .first();
    expect(row).toEqual({ context: null, country: null, device: null });
  });

  it("takes effect within the key cache's bound when the operator changes it", async () => {
    const app = await makeApp();
    const s1 = `ctx-${crypto.randomUUID()}`;
    const s2 = `ctx-${crypto.randomUUID()}`;
    await send([makeEvent({ session_id: s1 })], { key: app.writeKey, cf: BERLIN });
    await env.DB.prepare("UPDATE applications SET context = 'off' WHERE id = ?").bind(app.appId).run();
    // KEY_CACHE_SECONDS is 1 in tests.
    await new Promise((r) => setTimeout(r, 1_100));
    await send([makeEvent({ session_id: s2 })], { key: app.writeKey, cf: BERLIN });
    expect((await waitForCount(`/api/event/?session_id=${s1}`, 1)).results[0]!.context).toMatchObject({
      country: "DE",
    });
    expect((await waitForCount(`/api/event/?session_id=${s2}`, 1)).results[0]!.context).toBeNull();
  });

  it("honours the stand-in header only in development", async () => {
    const app = await makeApp();
    const s1 = `ctx-${crypto.randomUUID()}`;
    const s2 = `ctx-${crypto.randomUUID()}`;
    const header = { [DEV_CF_HEADER]: JSON.stringify({ country: "jp", city: "Osaka" }) };
    await send([makeEvent({ session_id: s1 })], { key: app.writeKey, headers: header });
    expect((await waitForCount(`/api/event/?session_id=${s1}`, 1)).results[0]!.context).toMatchObject({
      country: "JP",
      city: "Osaka",
    });

    const { createApp } = await import("../../src/app");
    const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
    const ctx = createExecutionContext();
    const res = await createApp().fetch(
      new Request("http://eye.test/api/event/", {
        method: "POST",
        headers: { "content-type": "application/json", ...bearer(app.writeKey), "cf-connecting-ip": IP, ...header },
        body: JSON.stringify([makeEvent({ session_id: s2 })]),
        cf: BERLIN,
      }),
      { ...env, ENVIRONMENT: "production" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(202);
    const stored = (await waitForCount(`/api/event/?session_id=${s2}`, 1)).results[0]!.context as Record<
      string,
      unknown
    > | null;
    // In production the context is request.cf's, whatever the stand-in header claims.
    expect(stored).toMatchObject({ country: "DE", city: "Berlin", region: "Berlin", continent: "EU" });
  });
});

describe("filters by country and device", () => {
  let app: Awaited<ReturnType<typeof makeApp>>;
  beforeAll(async () => {
    app = await makeApp();
    const at = (h: number) => `2020-06-01 ${String(h).padStart(2, "0")}:30:00`;
    // DE mobile ×4 (two hours), FR desktop ×3, DE desktop ×2, no context ×1.
    await send(
      [0, 1, 2, 3].map((i) => makeEvent({ category: "nav", timestamp: at(10 + (i % 2)) })),
      { key: app.writeKey, cf: BERLIN, ua: UA.iphone },
    );
    await send(
      [0, 1, 2].map(() => makeEvent({ category: "click", timestamp: at(10) })),
      { key: app.writeKey, cf: { ...BERLIN, country: "FR", city: "Paris" }, ua: UA.windows },
    );
    await send(
      [0, 1].map(() => makeEvent({ category: "click", timestamp: at(11) })),
      { key: app.writeKey, cf: BERLIN, ua: UA.windows },
    );
    await setContext(app.appId, "off");
    await send([makeEvent({ category: "nav", timestamp: at(10) })], { key: app.writeKey, cf: BERLIN, ua: UA.iphone });
    await setContext(app.appId, "on");
    await waitForCount(`/api/event/?timestamp_after=2020-06-01&timestamp_before=2020-06-02`, 10);
  });
  const list = (q: string) =>
    getJson(`/api/event/?timestamp_after=2020-06-01&timestamp_before=2020-06-02&${q}`, {
      headers: bearer(app.readKey),
    });

  it("reads the global index for a key that reads every application", async () => {
    const { statements } = await metered(`/api/event/?pagination=cursor&limit=2&country=FR`, bearer(DEV_READ_KEY));
    const reads = statements.filter((s) => /from "events"/.test(s.sql));
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${reads[0]!.sql}`)
      .bind(...reads[0]!.params)
      .all<{ detail: string }>();
    expect(plan.results.map((r) => r.detail).join("\n")).toMatch(/USING INDEX events_country /);
  });

  it("answers GET /api/event/ with only the matching events, and exact counts", async () => {
    expect((await list("country=DE")).count).toBe(6);
    expect((await list("country=de")).count).toBe(6);
    expect((await list("country=FR")).count).toBe(3);
    expect((await list("device=mobile")).count).toBe(4);
    expect((await list("device=desktop")).count).toBe(5);
    expect((await list("country=DE&device=desktop")).count).toBe(2);
    expect((await list("country=DE&category=click")).count).toBe(2);
    const page = await list("country=FR&pagination=cursor");
    expect(page.results.every((r) => (r.context as { country: string }).country === "FR")).toBe(true);
    // Whole hours from the roll-ups agree with the rows.
    const day = await getJson<EventPage>(
      "/api/event/?timestamp_after=2020-06-01T10:00:00Z&timestamp_before=2020-06-01T11:59:59.999999Z&country=DE",
      { headers: bearer(app.readKey) },
    );
    expect(day.count).toBe(6);
  });

  it("exports only the matching events by country and device, from D1 and from the archive alike", async () => {
    const range = "timestamp_after=2020-06-01&timestamp_before=2020-06-02";
    const exported = async (q: string) => {
      const res = await api(`/api/export?${range}&${q}`, { headers: bearer(app.readKey) });
      expect(res.status).toBe(200);
      return (await res.text())
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { context: { country?: string; device?: string } | null });
    };
    const check = async () => {
      const de = await exported("country=DE");
      expect(de).toHaveLength(6);
      expect(de.every((e) => e.context?.country === "DE")).toBe(true);
      expect(await exported("device=mobile")).toHaveLength(4);
      expect(await exported("country=DE&device=desktop")).toHaveLength(2);
      expect(await exported("country=FR&device=mobile")).toHaveLength(0);
    };
    await check(); // above the archive watermark: read from D1
    // Sealed into archive objects (read from R2), kept in D1 (no purge: the other tests count them).
    await maintain({ ...env, HOT_DAYS: "100000" });
    const sealed = await env.DB.prepare("SELECT archived_through AS t FROM storage_state").first<{ t: number }>();
    const ours = await env.DB.prepare("SELECT min(id) AS lo FROM events WHERE app = ?")
      .bind(app.num)
      .first<{ lo: number }>();
    expect(sealed!.t).toBeGreaterThanOrEqual(ours!.lo); // some of them now come from R2
    await check();
    expect((await api(`/api/export?${range}&device=phone`, { headers: bearer(app.readKey) })).status).toBe(400);
  });

  it("refuses values that are no country or device", async () => {
    expect((await api("/api/event/?country=Germany")).status).toBe(400);
    expect((await api("/api/event/?device=phone")).status).toBe(400);
    expect((await api("/api/stats/counts?country=DE&device=mobile")).status).toBe(400);
  });

  it("counts by country and device in GET /api/stats/counts, from context_counts only", async () => {
    const q = "timestamp_after=2020-06-01T10:00:00Z&timestamp_before=2020-06-01T11:59:59Z";
    const de = await getJson<{ total: number; country: string; series: { category: string; total: number }[] }>(
      `/api/stats/counts?${q}&country=de`,
      { headers: bearer(app.readKey) },
    );
    expect(de.country).toBe("DE");
    expect(de.total).toBe(6);
    expect(de.series).toEqual([
      { category: "nav", total: 4, counts: [2, 2] },
      { category: "click", total: 2, counts: [0, 2] },
    ]);
    const mobile = await getJson<{ total: number }>(`/api/stats/counts?${q}&device=mobile`, {
      headers: bearer(app.readKey),
    });
    expect(mobile.total).toBe(4);
    const { res, statements } = await metered(`/api/stats/counts?${q}&country=DE`, bearer(app.readKey));
    expect(res.status).toBe(200);
    expect(statements).toHaveLength(1);
    expect(statements[0]!.sql).toMatch(/from "context_counts"/);
    expect(statements[0]!.sql).not.toMatch(/"events"/);
    // Two hours × (nav, click, and the hour's total '') minus the empty click hour: 5 rows, +1 ending the range.
    expect(await rowsRead(statements)).toBeLessThanOrEqual(6);
  });

  it("reads a filtered cursor page from the country's (or device's) index: its rows, their contexts, one more", async () => {
    for (const q of ["country=DE", "device=mobile"]) {
      const { res, statements } = await metered(`/api/event/?pagination=cursor&limit=2&${q}`, bearer(app.readKey));
      expect(res.status).toBe(200);
      const reads = statements.filter((s) => /from "events"/.test(s.sql));
      // 3 index rows (2 + lookahead) and one contexts row for each.
      expect(await rowsRead(reads), q).toBeLessThanOrEqual(6);
      // The partial index built for the filter, led by the application (a scoped key).
      const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${reads[0]!.sql}`)
        .bind(...reads[0]!.params)
        .all<{ detail: string }>();
      const index = q.startsWith("country") ? "events_app_country" : "events_app_device";
      expect(plan.results.map((r) => r.detail).join("\n"), q).toMatch(new RegExp(`USING INDEX ${index} `));
      expect(plan.results.map((r) => r.detail).join("\n"), q).not.toMatch(/TEMP B-TREE/);
    }
  });
});

describe("the client's IP address", () => {
  const session = `ip-${crypto.randomUUID()}`;
  const logged: string[] = [];
  const spies: ReturnType<typeof vi.spyOn>[] = [];
  beforeAll(async () => {
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      spies.push(
        vi
          .spyOn(console, level)
          .mockImplementation(
            (...args: unknown[]) =>
              void logged.push(
                args
                  .map((a) =>
                    a instanceof Error ? `${a.message} ${a.stack}` : typeof a === "string" ? a : JSON.stringify(a),
                  )
                  .join(" "),
              ),
          ),
      );
    }
    const app = await makeApp();
    // Accepted events, an invalid one (error log), over IPv4 and IPv6, with the address also in X-Forwarded-For and X-Real-IP.
    for (const ip of [IP, IP6]) {
      const res = await send([makeEvent({ session_id: session }), { session_id: session, category: "x" }], {
        key: app.writeKey,
        cf: BERLIN,
        ip,
        headers: { "x-forwarded-for": ip, "x-real-ip": ip, "true-client-ip": ip },
      });
      expect(res.status).toBe(202);
    }
    await waitForCount(`/api/event/?session_id=${session}`, 2);
    // Archived to R2.
    await maintain(env);
  });
  afterAll(() => {
    for (const s of spies) s.mockRestore();
  });

  it("is in no D1 table", async () => {
    const tables = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
    ).all<{ name: string }>();
    expect(tables.results.length).toBeGreaterThan(5);
    for (const { name } of tables.results) {
      const rows = await env.DB.prepare(`SELECT * FROM "${name}"`).all();
      const text = JSON.stringify(rows.results);
      expect(text, name).not.toContain(IP);
      expect(text.toLowerCase(), name).not.toContain("2001:db8:4f2a");
    }
    // The error log did get the refused event (so the check above looked at a written row).
    const logged = await env.DB.prepare("SELECT count(*) AS n FROM error_log WHERE payload LIKE ?")
      .bind(`%${session}%`)
      .first<{ n: number }>();
    expect(logged!.n).toBe(2);
  });

  it("is in no R2 archive object", async () => {
    let seen = 0;
    let cursor: string | undefined;
    do {
      const listed = await env.ARCHIVE.list({
        prefix: `${ARCHIVE_ROOT}/`,
        cursor,
        include: ["customMetadata", "httpMetadata"],
      });
      for (const object of listed.objects) {
        expect(JSON.stringify(object)).not.toContain(IP);
        // The object's bytes too (a Parquet file's footer and statistics are not compressed), then its rows.
        const bytes = new TextDecoder("latin1").decode(await (await env.ARCHIVE.get(object.key))!.arrayBuffer());
        expect(bytes).not.toContain(IP);
        const lines = object.key.endsWith(".parquet")
          ? (await objectEvents(object.key)).map(renderArchived)
          : await Array.fromAsync(archiveLines(env.ARCHIVE, object.key));
        for (const line of lines) {
          if (line.includes(session)) seen++;
          expect(line).not.toContain(IP);
          expect(line.toLowerCase()).not.toContain("2001:db8:4f2a");
        }
      }
      cursor = listed.truncated ? listed.cursor : undefined;
    } while (cursor);
    expect(seen).toBe(2);
  });

  it("is in no log line and no Sentry report, also when the request fails", async () => {
    // A failure with the address on the request: the events table gone (the last test of this file).
    await env.DB.prepare("DROP TABLE events").run();
    const page = encodeURIComponent("https://secret-page.example/?email=someone%40example.com");
    const res = await api(`/api/event/?category=ip-test&page=${page}&referrer=${page}`, {
      headers: { "cf-connecting-ip": IP, "x-forwarded-for": IP },
      cf: BERLIN,
    } as RequestInit);
    expect(res.status).toBe(500);
    const requestId = res.headers.get("x-request-id")!;
    const deadline = Date.now() + 10_000;
    let envelopes: { body: string }[] = [];
    while (Date.now() < deadline) {
      envelopes = ((await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[]).filter((e) =>
        e.body.includes(requestId),
      );
      if (envelopes.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(envelopes.length).toBeGreaterThan(0);
    const all = ((await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[]).map((e) => e.body).join("\n");
    expect(all).not.toContain(IP);
    expect(all.toLowerCase()).not.toContain("2001:db8:4f2a");
    // Nor the page and referrer URLs a request names for its context (the query string goes, without them).
    expect(envelopes[0]!.body).toContain("ip-test");
    expect(all).not.toContain("secret-page");
    expect(logged.some((l) => l.includes(requestId))).toBe(true);
    for (const line of logged) expect(line).not.toContain(IP);
  });
});
