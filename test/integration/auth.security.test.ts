// Trusted clients, from an attacker's side: missing, unknown, revoked and misused keys,
// keys in URLs, origins, application scoping, dev keys in production, rate limits.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import { cachedKey, clearKeyCache, hashKey, LOCAL_FAILURES, lookupKey } from "../../src/request/auth";
import {
  api,
  BASE,
  bearer,
  DEV_READ_KEY,
  DEV_WRITE_KEY,
  type EventPage,
  freshLimiterWindow,
  makeApp,
  makeEvent,
  postEvents,
  waitForCount,
} from "../helpers/api";

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ success: false, code });
  expect(body.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}

describe("keys", () => {
  it("refuses a POST without a key (401, WWW-Authenticate) and stores nothing", async () => {
    const event = makeEvent();
    const res = await postEvents(event, { authorization: "" });
    await expectError(res, 401, "unauthorized");
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    await postEvents(makeEvent({ session_id: event.session_id, name: "sentinel" }));
    const page = await waitForCount(`/api/event/?session_id=${event.session_id}`, 1);
    expect(page.results[0]!.name).toBe("sentinel");
  });

  it("refuses unknown, malformed and oversized keys with 401", async () => {
    for (const authorization of ["Bearer eye_w_nope", "Basic Zm9vOmJhcg==", "Bearer", `Bearer ${"x".repeat(10_000)}`]) {
      const body = await expectError(await postEvents(makeEvent(), { authorization }), 401, "unauthorized");
      expect(JSON.stringify(body)).not.toContain("eye_w_nope");
    }
  });

  it("gives 403 to the right key for the wrong job", async () => {
    const app = await makeApp();
    await expectError(await postEvents(makeEvent(), bearer(app.readKey)), 403, "forbidden");
    await expectError(await api("/api/event/", { headers: bearer(app.writeKey) }), 403, "forbidden");
    await expectError(await api("/api/errors/", { headers: bearer(app.writeKey) }), 403, "forbidden");
  });

  it("accepts a write key as ?key= with text/plain, as sendBeacon sends it", async () => {
    const app = await makeApp();
    const event = makeEvent();
    const res = await api(`/api/event/?key=${app.writeKey}`, {
      method: "POST",
      headers: { authorization: "", "content-type": "text/plain;charset=UTF-8" },
      body: JSON.stringify(event),
    });
    expect(res.status).toBe(202);
    const page = await waitForCount(`/api/event/?session_id=${event.session_id}`, 1);
    expect(page.results[0]!.application).toBe(app.appId);
  });

  it("never takes a read key from the URL, even a valid one", async () => {
    const app = await makeApp();
    const body = await expectError(
      await api(`/api/event/?key=${app.readKey}`, { headers: { authorization: "" } }),
      401,
      "unauthorized",
    );
    expect(body.message).toMatch(/URL/);
    expect(JSON.stringify(body)).not.toContain(app.readKey);
  });

  it("stops a revoked key within the key cache TTL", async () => {
    const app = await makeApp();
    expect((await postEvents(makeEvent(), bearer(app.writeKey))).status).toBe(202);
    await env.DB.prepare("UPDATE api_keys SET revoked_at = 1 WHERE id = ?").bind(app.keyIds.write).run();
    // The test pool sets KEY_CACHE_SECONDS to 1; production's bound is 60 s.
    await new Promise((r) => setTimeout(r, 1100));
    await expectError(await postEvents(makeEvent(), bearer(app.writeKey)), 401, "unauthorized");
  });

  it("stops a revoked key within 60 s even when KEY_CACHE_SECONDS asks for longer (the setting is clamped)", async () => {
    const app = await makeApp();
    const { fetch } = countingEnv({ KEY_CACHE_SECONDS: "3600" });
    const ip = `revoked-${crypto.randomUUID()}`;
    const dryRun = () => fetch("/api/event/validate", { ...post(app.writeKey), ip });
    // Only the clock is faked: the key cache's expiry is read from Date.now().
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    try {
      const start = Date.now();
      expect((await dryRun()).status).toBe(200);
      await env.DB.prepare("UPDATE api_keys SET revoked_at = 1 WHERE id = ?").bind(app.keyIds.write).run();
      vi.setSystemTime(start + 30_000);
      expect((await dryRun()).status, "still trusted from the cache after 30 s").toBe(200);
      vi.setSystemTime(start + 60_001);
      await expectError(await dryRun(), 401, "unauthorized");
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses the dev keys unless ENVIRONMENT is development", async () => {
    const app = createApp();
    const request = new Request(`${BASE}/api/event/`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_WRITE_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(makeEvent()),
    });
    const ctx = createExecutionContext();
    const res = await app.fetch(request, { ...env, ENVIRONMENT: "production" }, ctx);
    await waitOnExecutionContext(ctx);
    await expectError(res, 401, "unauthorized");
  });
});

describe("application scoping", () => {
  it("stamps events with the sending application and shows a scoped read key only its own", async () => {
    const a = await makeApp();
    const b = await makeApp();
    const all = await makeApp({ readScope: "all" });
    const session = `shared-${crypto.randomUUID()}`;
    await postEvents(makeEvent({ session_id: session, name: "from a" }), bearer(a.writeKey));
    await postEvents(makeEvent({ session_id: session, name: "from b" }), bearer(b.writeKey));
    const path = `/api/event/?session_id=${session}`;
    await waitForCount(path, 2);
    const seenBy = async (key: string) => {
      const res = await api(path, { headers: bearer(key) });
      const page = (await res.json()) as { count: number; results: { name: string; application: string }[] };
      return page.results.map((r) => `${r.application}:${r.name}`);
    };
    expect(await seenBy(a.readKey)).toEqual([`${a.appId}:from a`]);
    expect(await seenBy(b.readKey)).toEqual([`${b.appId}:from b`]);
    expect((await seenBy(all.readKey)).sort()).toEqual([`${a.appId}:from a`, `${b.appId}:from b`].sort());
    const sessionView = await api(`/api/sessions/${session}/events`, { headers: bearer(a.readKey) });
    expect(((await sessionView.json()) as { results: unknown[] }).results).toHaveLength(1);
  });
});

/**
 * env.DB wrapped to count the key lookups the app makes (statements on api_keys): not the payload
 * schemas' reads, which their own 1-s cache in tests lets happen at any time.
 */
function countingEnv(overrides: Partial<Env> = {}) {
  const counter = { statements: 0 };
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare")
        return (query: string) => {
          if (/\bapi_keys\b/.test(query)) counter.statements++;
          return target.prepare(query);
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const app = createApp();
  const fetch = async (path: string, init: RequestInit & { ip: string }) => {
    const ctx = createExecutionContext();
    const headers = new Headers(init.headers);
    headers.set("cf-connecting-ip", init.ip);
    const res = await app.fetch(new Request(`${BASE}${path}`, { ...init, headers }), { ...env, DB, ...overrides }, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
  return { counter, fetch };
}

const post = (key: string) => ({
  method: "POST",
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  body: JSON.stringify(makeEvent()),
});

describe("failed authentications", () => {
  it("are limited per client address: after 20 counted unknown keys the address gets 429 without any D1 lookup", async () => {
    await freshLimiterWindow(60, 15_000);
    const { counter, fetch } = countingEnv();
    const ip = `flooder-${crypto.randomUUID()}`;
    // The first LOCAL_FAILURES an isolate counts itself; the binding counts the next 20.
    const allowed = LOCAL_FAILURES + 20;
    for (let i = 0; i < allowed; i++)
      await expectError(
        await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip }),
        401,
        "unauthorized",
      );
    expect(counter.statements).toBe(allowed);
    const refused = await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip });
    await expectError(refused, 429, "rate_limited");
    expect(refused.headers.get("retry-after")).toBe("60");
    // From now on this isolate refuses the address before hashing its way to D1: no lookups at all.
    const before = counter.statements;
    for (let i = 0; i < 30; i++)
      await expectError(
        await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip }),
        429,
        "rate_limited",
      );
    await expectError(
      await fetch("/api/event/?limit=1", { headers: { authorization: `Bearer eye_r_${crypto.randomUUID()}` }, ip }),
      429,
      "rate_limited",
    );
    expect(counter.statements).toBe(before);
    // Another address is unaffected.
    await expectError(
      await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip: `other-${crypto.randomUUID()}` }),
      401,
      "unauthorized",
    );
  });

  it("count an IPv6 client's whole /64 as one address", async () => {
    await freshLimiterWindow(60, 15_000);
    const { fetch } = countingEnv();
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:7`;
    for (let i = 0; i < LOCAL_FAILURES + 20; i++) {
      const ip = `${prefix}:${i.toString(16)}::${(i + 1).toString(16)}`; // a fresh address inside the same /64 each time
      await expectError(
        await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip }),
        401,
        "unauthorized",
      );
    }
    await expectError(
      await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip: `${prefix}:ffff::9` }),
      429,
      "rate_limited",
    );
    await expectError(
      await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip: `${prefix.slice(0, -1)}8::1` }),
      401,
      "unauthorized",
    );
  });

  it("cost no limiter call for an address that fails once (a botnet), and are counted from an address's third failure", async () => {
    let calls = 0;
    const limiter = {
      limit: async (o: { key: string }) => {
        calls++;
        return env.AUTH_LIMITER.limit(o);
      },
    } as unknown as RateLimit;
    const { fetch } = countingEnv({ AUTH_LIMITER: limiter });
    for (let i = 0; i < 50; i++)
      await expectError(
        await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip: `bot-${crypto.randomUUID()}` }),
        401,
        "unauthorized",
      );
    expect(calls).toBe(0);
    const ip = `repeat-${crypto.randomUUID()}`;
    for (let i = 0; i < LOCAL_FAILURES + 3; i++)
      await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip });
    expect(calls).toBe(3);
  });

  it("never lock out a known-good key: a client behind the flooding address keeps sending", async () => {
    await freshLimiterWindow(60, 15_000);
    const app = await makeApp();
    const { counter, fetch } = countingEnv({ KEY_CACHE_SECONDS: "60" });
    const ip = `shared-nat-${crypto.randomUUID()}`;
    expect((await fetch("/api/event/", { ...post(app.writeKey), ip })).status).toBe(202);
    for (let i = 0; i < 40; i++) await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip });
    await expectError(await fetch("/api/event/", { ...post(`eye_w_${crypto.randomUUID()}`), ip }), 429, "rate_limited");
    const before = counter.statements;
    const res = await fetch("/api/event/", { ...post(app.writeKey), ip });
    expect(res.status, await res.clone().text()).toBe(202);
    expect(counter.statements, "the good key came from the cache").toBe(before);
  });

  it("never evict a known-good key: 10,001 distinct unknown keys leave it cached", async () => {
    clearKeyCache();
    const app = await makeApp();
    const db = drizzle(env.DB);
    const good = hashKey(app.writeKey);
    expect(await lookupKey(db, good, 600_000)).toMatchObject({ kind: "write", appId: app.appId });
    // More distinct unknown keys than the cache holds (each is one D1 read, as a flood costs).
    for (let wave = 0; wave < 10_001; wave += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, 10_001 - wave) }, () =>
          lookupKey(db, hashKey(crypto.randomUUID()), 600_000),
        ),
      );
    }
    expect(cachedKey(good)).toMatchObject({ kind: "write", appId: app.appId });
  }, 300_000); // 10,001 D1 reads: about 90 s on a loaded 2-core machine
});

describe("event ids per application", () => {
  it("never lets one application's event_id suppress another's event (write keys are public)", async () => {
    const victim = await makeApp();
    const attacker = await makeApp();
    const all = await makeApp({ readScope: "all" });
    const eventId = crypto.randomUUID();
    const session = `idspace-${crypto.randomUUID()}`;
    // The attacker claims the id first; the victim's event with that id must still be stored.
    expect(
      (
        await postEvents(
          makeEvent({ session_id: session, name: "squat", event_id: eventId }),
          bearer(attacker.writeKey),
        )
      ).status,
    ).toBe(202);
    await waitForCount(`/api/event/?session_id=${session}`, 1);
    expect(
      (await postEvents(makeEvent({ session_id: session, name: "real", event_id: eventId }), bearer(victim.writeKey)))
        .status,
    ).toBe(202);
    // The same application resending its id still stores it once.
    expect(
      (
        await postEvents(
          makeEvent({ session_id: session, name: "real again", event_id: eventId }),
          bearer(victim.writeKey),
        )
      ).status,
    ).toBe(202);
    const page = await waitForCount(`/api/event/?session_id=${session}`, 2);
    expect(page.results.map((r) => `${r.application}:${r.name}:${r.event_id}`).sort()).toEqual(
      [`${attacker.appId}:squat:${eventId}`, `${victim.appId}:real:${eventId}`].sort(),
    );
    const names = async (key: string) =>
      ((await (await api(`/api/event/?session_id=${session}`, { headers: bearer(key) })).json()) as EventPage).results
        .map((r) => `${r.application}:${r.name}`)
        .sort();
    expect(await names(victim.readKey)).toEqual([`${victim.appId}:real`]);
    expect(await names(attacker.readKey)).toEqual([`${attacker.appId}:squat`]);
    // A key for every application sees both events under the one id, each with its application.
    expect(await names(all.readKey)).toEqual([`${attacker.appId}:squat`, `${victim.appId}:real`].sort());
  });
});

describe("origins and CORS", () => {
  it("clips a long refused Origin in the 403 message, as every echo of client input", async () => {
    const app = await makeApp({ origins: ["https://shop.example"] });
    const origin = `https://${"a".repeat(10_000)}.example`;
    const body = await expectError(
      await postEvents(makeEvent(), { ...bearer(app.writeKey), origin }),
      403,
      "forbidden",
    );
    expect(String(body.message)).toMatch(/^origin https:\/\/a+… may not send events for this application$/);
    expect(JSON.stringify(body).length).toBeLessThan(400);
  });

  it("lets only the application's origins send with its write key", async () => {
    const app = await makeApp({ origins: ["https://shop.example"] });
    const ok = await postEvents(makeEvent(), { ...bearer(app.writeKey), origin: "https://shop.example" });
    expect(ok.status).toBe(202);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    await expectError(
      await postEvents(makeEvent(), { ...bearer(app.writeKey), origin: "https://evil.example" }),
      403,
      "forbidden",
    );
  });

  it("answers an ingestion preflight at once, for any origin", async () => {
    const res = await api("/api/event/", {
      method: "OPTIONS",
      headers: {
        origin: "https://any.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://any.example");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(res.headers.get("access-control-max-age")).toBe("86400");
  });

  it("sends CORS headers on the read API to the origins READ_CORS_ORIGINS lists, and to no other", async () => {
    const READ_CORS_ORIGINS = "https://data.example, https://bi.example";
    const app = createApp();
    const call = async (method: string, origin: string, headers: Record<string, string> = {}) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`${BASE}/api/event/?limit=1`, {
          method,
          headers: { origin, authorization: `Bearer ${DEV_READ_KEY}`, "cf-connecting-ip": "cors-client", ...headers },
        }),
        { ...env, READ_CORS_ORIGINS },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      await res.arrayBuffer();
      return res;
    };
    const preflight = { "access-control-request-method": "GET", "access-control-request-headers": "authorization" };
    for (const origin of ["https://data.example", "https://bi.example"]) {
      const get = await call("GET", origin);
      expect(get.status).toBe(200);
      expect(get.headers.get("access-control-allow-origin")).toBe(origin);
      expect(get.headers.get("access-control-expose-headers")).toContain("X-D1-Bookmark");
      const options = await call("OPTIONS", origin, preflight);
      expect(options.status).toBe(204);
      expect(options.headers.get("access-control-allow-origin")).toBe(origin);
      expect(options.headers.get("access-control-allow-methods")?.split(",")).toContain("GET");
      expect(options.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    }
    // Another origin, one that only starts like a listed one, and the list's text itself get nothing.
    for (const origin of ["https://evil.example", "https://data.example.evil", READ_CORS_ORIGINS]) {
      const get = await call("GET", origin);
      expect(get.status).toBe(200);
      expect(get.headers.get("access-control-allow-origin"), origin).toBeNull();
      expect((await call("OPTIONS", origin, preflight)).headers.get("access-control-allow-origin"), origin).toBeNull();
    }
  });

  it("sends no CORS headers on the read API unless configured", async () => {
    const res = await api("/api/event/?limit=1", { headers: { origin: "https://any.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await api("/api/event/", {
      method: "OPTIONS",
      headers: { origin: "https://any.example", "access-control-request-method": "GET" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("rate limiting", () => {
  it("answers 429 with Retry-After once one client passes the write key's budget", async () => {
    // The limiter counts in wall-clock windows of 10 s, so the budget may renew once during the
    // run: the first 100 requests are always accepted, and a 429 comes within two windows' worth.
    const client = `limited-${crypto.randomUUID()}`;
    const statuses: number[] = [];
    let refused: Response | undefined;
    while (!refused && statuses.length < 300) {
      const res = await postEvents(makeEvent(), { "cf-connecting-ip": client });
      statuses.push(res.status);
      if (res.status === 429) refused = res;
      else await res.arrayBuffer();
    }
    expect(statuses.slice(0, 100)).toEqual(Array(100).fill(202));
    expect(refused, `no 429 in ${statuses.length} requests`).toBeDefined();
    expect(statuses.length).toBeLessThanOrEqual(201);
    expect(refused!.headers.get("retry-after")).toBe("10");
    await expectError(refused!, 429, "rate_limited");
    // Another client with the same key is unaffected.
    expect((await postEvents(makeEvent(), { "cf-connecting-ip": `other-${crypto.randomUUID()}` })).status).toBe(202);
  });

  it("remembers a refusal in the isolate for a second: within it, 429 without a limiter call", async () => {
    let calls = 0;
    const limiter = {
      limit: async (o: { key: string }) => {
        calls++;
        return env.WRITE_LIMITER.limit(o);
      },
    } as unknown as RateLimit;
    const { fetch } = countingEnv({ WRITE_LIMITER: limiter });
    const ip = `memo-${crypto.randomUUID()}`;
    // The dry run is behind the same limiter and queues nothing: the budget is spent cheaply.
    const dryRun = () => fetch("/api/event/validate", { ...post(DEV_WRITE_KEY), ip });
    let refused: Response | undefined;
    let refusalSentAt = 0;
    for (let sent = 0; !refused && sent < 300; sent++) {
      refusalSentAt = Date.now();
      const res = await dryRun();
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(200);
    }
    expect(refused, "the limiter never refused").toBeDefined();
    const refusedAt = Date.now();
    const callsAtRefusal = calls;
    // Within the memo's second (it began after the refused request was sent): refused, and the binding is not asked.
    let within = 0;
    while (Date.now() - refusalSentAt < 900 && within < 200) {
      await expectError(await dryRun(), 429, "rate_limited");
      within++;
    }
    expect(within).toBeGreaterThan(0);
    expect(calls, `${within} requests within the memo second`).toBe(callsAtRefusal);
    // After it, the binding is asked again (and answers as its window says).
    await new Promise((r) => setTimeout(r, Math.max(0, refusedAt + 1_100 - Date.now())));
    await dryRun();
    expect(calls).toBe(callsAtRefusal + 1);
  });
});

describe("responses", () => {
  it("carries secure headers and a request id on every response, errors included", async () => {
    for (const res of [
      await api("/api/event/?limit=1"),
      await api("/nope"),
      await api("/api/event/", { method: "DELETE" }),
    ]) {
      expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
  });
});
