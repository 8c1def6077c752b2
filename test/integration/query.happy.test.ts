// GET /api/event/ and /api/sessions/{id}/events over events stored through the real pipeline (SPEC §4):
// every filter and alias, inclusive bounds, order, limit/offset links as the original, cursor scans.
import { beforeAll, describe, expect, it } from "vitest";
import {
  api as apiAs,
  BASE,
  bearer,
  type EventPage,
  getJson as getJsonAs,
  makeApp,
  makeEvent,
  postEvents,
  waitForCount,
} from "../helpers/api";
import { metered } from "../helpers/read-meter";

// The file's events belong to an application of its own, and every read goes through its read
// key: whole-listing counts ("every event", "the whole store") are this file's events only.
let app: Awaited<ReturnType<typeof makeApp>>;
const api = (path: string, init: RequestInit = {}) =>
  apiAs(path, { ...init, headers: { ...bearer(app.readKey), ...(init.headers as Record<string, string>) } });
const getJson = (path: string) => getJsonAs(path, { headers: bearer(app.readKey) });

interface Seed {
  key: string;
  session_id: string;
  category: string;
  name: string;
  timestamp: string;
  micros: number;
}

const S1 = `q-s1-${crypto.randomUUID()}`;
const S2 = `q-s2 ión 😀 ${crypto.randomUUID()}`;
const micros = (iso: string) => Date.parse(iso) * 1000 + Number(/\.\d{3}(\d{3})Z$/.exec(iso)?.[1] ?? 0);

// Filter grid: 2 sessions × 2 categories × 2 names × 3 instants around midnight 2021-03-02 UTC.
const INSTANTS: [string, string][] = [
  ["2021-03-01 23:59:59.999999", "2021-03-01T23:59:59.999999Z"],
  ["2021-03-02T01:00:00+01:00", "2021-03-02T00:00:00.000000Z"],
  ["2021-03-02 12:30:00.243860", "2021-03-02T12:30:00.243860Z"],
];
const grid: Seed[] = [];
for (const session_id of [S1, S2])
  for (const category of ["q-view", "q-click"])
    for (const name of ["q-home", "q-cart"])
      for (const [timestamp, iso] of INSTANTS)
        grid.push({ key: `g${grid.length}`, session_id, category, name, timestamp, micros: micros(iso) });

// 130 events for limit/offset pagination, one second apart.
const paged: Seed[] = Array.from({ length: 130 }, (_, i) => ({
  key: `p${i}`,
  session_id: `q-page-${i % 3}`,
  category: "q-page",
  name: "q-step",
  timestamp: new Date(Date.UTC(2021, 4, 1) + i * 1000).toISOString(),
  micros: (Date.UTC(2021, 4, 1) + i * 1000) * 1000,
}));

// 1000 events for cursor scans: 600 at one instant, the rest in groups of 4 per instant.
const TIE = Date.UTC(2021, 5, 1, 12);
const tied: Seed[] = Array.from({ length: 1000 }, (_, i) => {
  const ms = i < 600 ? TIE : TIE - 1000 * (1 + Math.floor((i - 600) / 4));
  return {
    key: `t${i}`,
    session_id: `q-tie-${i % 7}`,
    category: "q-ties",
    name: i % 2 ? "q-odd" : "q-even",
    timestamp: new Date(ms).toISOString(),
    micros: ms * 1000,
  };
});

const ALL = [...grid, ...paged, ...tied];

beforeAll(async () => {
  app = await makeApp();
  const events = ALL.map((s) =>
    makeEvent({
      session_id: s.session_id,
      category: s.category,
      name: s.name,
      timestamp: s.timestamp,
      data: { key: s.key },
    }),
  );
  for (let i = 0; i < events.length; i += 500) {
    const res = await postEvents(events.slice(i, i + 500), bearer(app.writeKey));
    expect(res.status).toBe(202);
  }
  await waitForCount("/api/event/?limit=1", ALL.length, 30_000, { headers: bearer(app.readKey) });
}, 60_000);

const keysOf = (page: EventPage) => page.results.map((r) => (r.data as { key: string }).key);
const sorted = (xs: string[]) => [...xs].sort();
const expectKeys = (seeds: Seed[]) => sorted(seeds.map((s) => s.key));

/** Every page of a listing, following `next` until it is null. */
async function followNext(path: string): Promise<{ pages: EventPage[]; keys: string[] }> {
  const pages: EventPage[] = [];
  let url: string | null = `${BASE}${path}`;
  while (url) {
    expect(url.startsWith(`${BASE}/api/`), url).toBe(true);
    const page: EventPage = await getJson(url.slice(BASE.length));
    pages.push(page);
    url = page.next;
    if (pages.length > 500) throw new Error("next never became null");
  }
  return { pages, keys: pages.flatMap(keysOf) };
}

describe("filters", () => {
  const cases: [string, (s: Seed) => boolean][] = [
    [`session_id=${encodeURIComponent(S1)}`, (s) => s.session_id === S1],
    [`session_id=${encodeURIComponent(S2)}`, (s) => s.session_id === S2],
    ["category=q-view", (s) => s.category === "q-view"],
    ["name=q-cart", (s) => s.name === "q-cart"],
    ["category=q-click&name=q-home", (s) => s.category === "q-click" && s.name === "q-home"],
    [`session_id=${encodeURIComponent(S2)}&category=q-view`, (s) => s.session_id === S2 && s.category === "q-view"],
    [`session_id=${encodeURIComponent(S1)}&name=q-cart`, (s) => s.session_id === S1 && s.name === "q-cart"],
    [
      `session_id=${encodeURIComponent(S1)}&category=q-click&name=q-cart`,
      (s) => s.session_id === S1 && s.category === "q-click" && s.name === "q-cart",
    ],
    ["category=q-ties&name=q-odd", (s) => s.category === "q-ties" && s.name === "q-odd"],
    ["category=no-such-category", () => false],
  ];
  for (const [query, match] of cases) {
    it(`returns exactly the matching events for ${query}`, async () => {
      const page = await getJson(`/api/event/?${query}&limit=1000`);
      const expected = ALL.filter(match);
      expect(page.count).toBe(expected.length);
      expect(sorted(keysOf(page))).toEqual(expectKeys(expected));
    });
  }

  it("looks a filter's category, name and session up once for the page and its count", async () => {
    for (const query of [`session_id=${encodeURIComponent(S1)}&category=q-click`, "category=q-view", "name=q-cart"]) {
      const { res, statements } = await metered(`/api/event/?${query}`, bearer(app.readKey));
      expect(res.status).toBe(200);
      const lookups = (table: string) =>
        statements.filter((s) =>
          new RegExp(`from "${table}" where \\(?"${table}"\\."(category|name|session_id)" = \\?`, "i").test(s.sql),
        );
      expect(lookups("event_types").length, query).toBe(query.includes("category") || query.includes("name") ? 1 : 0);
      expect(lookups("sessions").length, query).toBe(query.includes("session_id") ? 1 : 0);
    }
  });

  it("reads a page, its count and the filter's lookups in one D1 call on a warm isolate", async () => {
    for (const query of [
      "",
      `session_id=${encodeURIComponent(S1)}`,
      "category=q-click",
      "name=q-cart",
      "category=q-click&name=q-home",
    ]) {
      const first = await metered(`/api/event/?${query}`, bearer(app.readKey));
      const again = await metered(`/api/event/?${query}`, bearer(app.readKey));
      expect(again.res.status).toBe(200);
      // The same answer as the first read, which waited for its lookups.
      expect(await again.res.json()).toEqual(await first.res.json());
      // The first call carries the generations' list, the lookups, the newest generation's page
      // read and the count; a page the newest generation cannot fill reads the next one after it.
      const [call, ...later] = again.calls;
      expect(
        call!.some((s) => /from "generations"/.test(s)),
        query,
      ).toBe(true);
      expect(
        call!.some((s) => /^SELECT \*, 0 AS r FROM/.test(s)),
        query,
      ).toBe(true);
      expect(
        call!.some((s) => /type_counts|count\(\*\)/.test(s)),
        query,
      ).toBe(true);
      if (query.includes("category") || query.includes("name"))
        expect(
          call!.some((s) => /from "event_types"/.test(s)),
          query,
        ).toBe(true);
      for (const c of later)
        expect(
          c.every((s) => /^SELECT \*, 0 AS r FROM/.test(s)),
          query,
        ).toBe(true);
    }
  });

  it("treats timestamp_after and timestamp_before as inclusive bounds, to the microsecond", async () => {
    const at = "2021-03-02T12:30:00.243860Z";
    const q = (params: string) => getJson(`/api/event/?category=q-view&${params}&limit=1000`).then(keysOf).then(sorted);
    const exactly = expectKeys(grid.filter((s) => s.category === "q-view" && s.micros === micros(at)));
    expect(await q(`timestamp_after=2021-03-02T12:30:00.243860&timestamp_before=2021-03-02T12:30:00.243860`)).toEqual(
      exactly,
    );
    expect(await q(`timestamp_after=2021-03-02T12:30:00.243861`)).toEqual([]);
    expect(await q(`timestamp_before=2021-03-02T12:30:00.243859`)).toEqual(
      expectKeys(grid.filter((s) => s.category === "q-view" && s.micros < micros(at))),
    );
  });

  it("reads a date alone as midnight UTC", async () => {
    const midnight = Date.UTC(2021, 2, 2) * 1000;
    const q = (params: string) =>
      getJson(`/api/event/?category=q-click&${params}&limit=1000`).then(keysOf).then(sorted);
    const clicks = grid.filter((s) => s.category === "q-click");
    expect(await q("timestamp_after=2021-03-02")).toEqual(expectKeys(clicks.filter((s) => s.micros >= midnight)));
    expect(await q("timestamp_before=2021-03-02")).toEqual(expectKeys(clicks.filter((s) => s.micros <= midnight)));
    expect(await q("timestamp_after=2021-03-02&timestamp_before=2021-03-02")).toEqual(
      expectKeys(clicks.filter((s) => s.micros === midnight)),
    );
    // The same bound written with an offset (a '+' must be percent-encoded in a query string).
    expect(await q(`timestamp_after=${encodeURIComponent("2021-03-02T01:00:00+01:00")}`)).toEqual(
      await q("timestamp_after=2021-03-02"),
    );
  });

  it("takes timestamp_start and timestamp_end as aliases, the tighter bound winning when both are given", async () => {
    const q = (params: string) => getJson(`/api/event/?category=q-page&${params}&limit=1000`).then(keysOf);
    const start = "2021-05-01T00:00:10Z";
    const end = "2021-05-01T00:01:00Z";
    const expected = await q(`timestamp_after=${start}&timestamp_before=${end}`);
    expect(expected).toHaveLength(51);
    expect(await q(`timestamp_start=${start}&timestamp_end=${end}`)).toEqual(expected);
    expect(await q(`timestamp_start=${start}&timestamp_before=${end}`)).toEqual(expected);
    expect(
      await q(`timestamp_after=2021-05-01&timestamp_start=${start}&timestamp_end=${end}&timestamp_before=2021-05-02`),
    ).toEqual(expected);
    expect(await q(`timestamp_after=${start}&timestamp_start=2021-05-01T00:00:50Z`)).toHaveLength(80);
  });

  it("ignores parameters it does not know, as the original did", async () => {
    const page = await getJson("/api/event/?category=q-page&format=json&page=3&limit=1");
    expect(page.count).toBe(130);
  });
});

describe("order", () => {
  it("lists newest first with ties in one stable order", async () => {
    const first = await getJson("/api/event/?limit=1000");
    const times = first.results.map((r) => micros(r.timestamp as string));
    for (let i = 1; i < times.length; i++) expect(times[i - 1]! >= times[i]!).toBe(true);
    const again = await getJson("/api/event/?limit=1000");
    expect(keysOf(again)).toEqual(keysOf(first));
  });

  it("renders each result with the original's fields first, then ours", async () => {
    const page = await getJson(`/api/event/?session_id=${encodeURIComponent(S1)}&limit=1`);
    const result = page.results[0]!;
    expect(Object.keys(result)).toEqual([
      "session_id",
      "timestamp",
      "category",
      "name",
      "data",
      "event_id",
      "received_at",
      "application",
      "context",
    ]);
    expect(result.timestamp).toBe("2021-03-02T12:30:00.243860Z");
    const res = await api("/api/event/?limit=1");
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("limit/offset pagination", () => {
  it("writes next/previous as DRF did: parameters sorted by name, repeated ones kept, encoded with quote_plus", async () => {
    // Expected strings from Python: Django REST framework's replace_query_param/remove_query_param.
    const page = await getJson(
      "/api/event/?session_id=a%20b+c&category=x*y~z!&name=%E2%82%AC&x=&x=2&Z=1&_=1&limit=100&offset=100",
    );
    expect(page.next).toBeNull();
    expect(page.previous).toBe(
      `${BASE}/api/event/?Z=1&_=1&category=x%2Ay~z%21&limit=100&name=%E2%82%AC&session_id=a+b+c&x=&x=2`,
    );
    const deeper = await getJson(
      "/api/event/?session_id=a%20b+c&category=x*y~z!&name=%E2%82%AC&x=&x=2&Z=1&_=1&limit=100&offset=200",
    );
    expect(deeper.previous).toBe(
      `${BASE}/api/event/?Z=1&_=1&category=x%2Ay~z%21&limit=100&name=%E2%82%AC&offset=100&session_id=a+b+c&x=&x=2`,
    );
  });

  it("pages by 100 by default with absolute next/previous links that keep the other parameters", async () => {
    const first = await getJson("/api/event/?category=q-page&name=q-step");
    expect(first.count).toBe(130);
    expect(first.results).toHaveLength(100);
    expect(first.previous).toBeNull();
    expect(first.next).toBe(`${BASE}/api/event/?category=q-page&limit=100&name=q-step&offset=100`);

    const second = await getJson(first.next!.slice(BASE.length));
    expect(second.results).toHaveLength(30);
    expect(second.next).toBeNull();
    expect(second.previous).toBe(`${BASE}/api/event/?category=q-page&limit=100&name=q-step`);
    expect([...keysOf(first), ...keysOf(second)]).toEqual(paged.map((s) => s.key).reverse());
  });

  it("walks forward with next and back with previous, visiting every event once", async () => {
    const path = "/api/event/?timestamp_after=2021-05-01&category=q-page&limit=40";
    const { pages, keys } = await followNext(path);
    expect(pages.map((p) => p.results.length)).toEqual([40, 40, 40, 10]);
    expect(keys).toEqual(paged.map((s) => s.key).reverse());
    expect(pages.map((p) => p.count)).toEqual([130, 130, 130, 130]);

    const last = pages[3]!;
    expect(last.previous).toBe(`${BASE}/api/event/?category=q-page&limit=40&offset=80&timestamp_after=2021-05-01`);
    const back = await getJson(last.previous!.slice(BASE.length));
    expect(keysOf(back)).toEqual(keysOf(pages[2]!));
    expect(back.previous).toBe(`${BASE}/api/event/?category=q-page&limit=40&offset=40&timestamp_after=2021-05-01`);
    const second = await getJson(back.previous!.slice(BASE.length));
    expect(second.previous).toBe(`${BASE}/api/event/?category=q-page&limit=40&timestamp_after=2021-05-01`);
  });

  it("serves up to 1000 results a page", async () => {
    const page = await getJson("/api/event/?limit=1000");
    expect(page.count).toBe(ALL.length);
    expect(page.results).toHaveLength(1000);
    expect(page.next).toBe(`${BASE}/api/event/?limit=1000&offset=1000`);
  });

  it("returns an empty last page past the end, with a link back", async () => {
    const page = await getJson("/api/event/?category=q-page&offset=500&limit=100");
    expect(page.results).toEqual([]);
    expect(page.next).toBeNull();
    expect(page.previous).toBe(`${BASE}/api/event/?category=q-page&limit=100&offset=400`);
  });
});

describe("cursor pagination", () => {
  it("visits every event exactly once through 600 equal timestamps, in the offset order", async () => {
    const { pages, keys } = await followNext("/api/event/?category=q-ties&pagination=cursor&limit=37");
    expect(keys).toHaveLength(1000);
    expect(new Set(keys).size).toBe(1000);
    expect(sorted(keys)).toEqual(expectKeys(tied));
    const offsetOrder = keysOf(await getJson("/api/event/?category=q-ties&limit=1000"));
    expect(keys).toEqual(offsetOrder);
    for (const page of pages) expect(page.previous).toBeNull();
    expect(pages[0]!.next).toMatch(
      /^http:\/\/eye\.test\/api\/event\/\?category=q-ties&cursor=[A-Za-z0-9_-]+&limit=37&pagination=cursor$/,
    );
    expect(pages.at(-1)!.next).toBeNull();
  });

  it("scans the whole store, and honours the filters and bounds on every page", async () => {
    const all = await followNext("/api/event/?pagination=cursor&limit=250");
    expect(all.keys).toHaveLength(ALL.length);
    expect(new Set(all.keys).size).toBe(ALL.length);

    const bounded = await followNext(
      `/api/event/?pagination=cursor&limit=9&name=q-even&timestamp_before=${new Date(TIE - 1).toISOString()}`,
    );
    expect(sorted(bounded.keys)).toEqual(expectKeys(tied.filter((s) => s.name === "q-even" && s.micros < TIE * 1000)));
  });

  it("starts a cursor scan from a first page without a cursor parameter", async () => {
    const page = await getJson("/api/event/?category=q-page&pagination=cursor&limit=5");
    expect(keysOf(page)).toEqual(["p129", "p128", "p127", "p126", "p125"]);
    expect(page.count).toBeUndefined();
  });
});

describe("GET /api/sessions/{session_id}/events", () => {
  it("lists one session's events in the order they occurred", async () => {
    const page = await getJson(`/api/sessions/${encodeURIComponent(S2)}/events`);
    const expected = grid.filter((s) => s.session_id === S2);
    expect(page.count).toBe(expected.length);
    const times = page.results.map((r) => micros(r.timestamp as string));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(page.results[0]!.timestamp).toBe("2021-03-01T23:59:59.999999Z");
    expect(sorted(keysOf(page))).toEqual(expectKeys(expected));
  });

  it("pages a session oldest first, by offset or cursor, with the same filters available", async () => {
    const session = "q-tie-3";
    const expected = tied.filter((s) => s.session_id === session);
    const byOffset = await followNext(`/api/sessions/${session}/events?limit=30`);
    const byCursor = await followNext(`/api/sessions/${session}/events?pagination=cursor&limit=30`);
    expect(byOffset.keys).toHaveLength(expected.length);
    expect(byCursor.keys).toEqual(byOffset.keys);
    expect(byOffset.keys).toEqual(keysOf(await getJson(`/api/event/?session_id=${session}&limit=1000`)).reverse());
    const odd = await getJson(`/api/sessions/${session}/events?name=q-odd&limit=1000`);
    expect(sorted(keysOf(odd))).toEqual(expectKeys(expected.filter((s) => s.name === "q-odd")));
  });

  it("returns an empty page for a session it has never seen", async () => {
    const page = await getJson(`/api/sessions/never-seen-${crypto.randomUUID()}/events`);
    expect(page).toMatchObject({ count: 0, next: null, previous: null, results: [] });
  });
});

describe("HEAD", () => {
  it("answers HEAD on the query routes without a body", async () => {
    const res = await api("/api/event/?limit=1", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });
});
