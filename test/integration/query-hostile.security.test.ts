// GET /api/event/ (and the session and error-log routes) from an attacker's side: SQL
// metacharacters and 10 KB strings in every parameter, out-of-range numbers, forged and
// truncated cursors. Every answer is a 400 naming the parameter or exactly the right rows,
// never a 500, and the tables are intact afterwards.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { api, getJson, makeEvent } from "../helpers/api";
import { bySession, clientOf, expectError, expectNoLeak, stored } from "../helpers/hostile";
import { storedCount } from "../helpers/stored";

const client = clientOf("query");
const RUN = crypto.randomUUID();
const SESSION = `query-hostile-${RUN}`;

/** Stored events whose labels are themselves hostile: a filter must match them exactly, and only them. */
const LABELLED = [
  { session_id: "'; DROP TABLE events; --", category: "%", name: "_" },
  { session_id: `a%b_c ${RUN}`, category: "' OR '1'='1", name: "\\" },
  { session_id: `nul\u0000${RUN}`, category: "\u0000", name: '"; DROP TABLE events; --' },
];

const HOSTILE = [
  "'",
  '"',
  "' OR '1'='1",
  "' OR 1=1 --",
  "'; DROP TABLE events; --",
  '"; DROP TABLE events; --',
  "%",
  "_",
  "%%",
  "a%",
  "\\",
  "\u0000",
  "x\u0000' OR 1=1 --",
  "') UNION SELECT hash, 1, 1, 1, 1, 1, 1, 1, 1 FROM api_keys --",
  "1; DELETE FROM events",
  "NULL",
  "*",
  "$1",
  "?",
  "x".repeat(10_000),
];

const LABELS = ["session_id", "category", "name"] as const;
const TIMESTAMPS = ["timestamp_after", "timestamp_before", "timestamp_start", "timestamp_end"];
const OTHERS = ["limit", "offset", "cursor", "pagination"];

const b64url = (value: unknown) =>
  btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const cursorOf = (link: string | null) => (link ? new URL(link).searchParams.get("cursor") : null);

async function tableCounts() {
  const row = await env.DB.prepare(
    "SELECT (SELECT count(*) FROM api_keys) AS keys, (SELECT count(*) FROM applications) AS apps",
  ).first<{ keys: number; apps: number }>();
  const events = await storedCount();
  const tables = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all<{ name: string }>();
  return { ...row!, events, tables: tables.results.map((t) => t.name).sort() };
}

let before: Awaited<ReturnType<typeof tableCounts>>;
const seeded: Record<string, unknown>[] = [];

beforeAll(async () => {
  for (let i = 0; i < 5; i++) {
    seeded.push(
      makeEvent({ session_id: SESSION, name: `seed ${i}`, timestamp: `2022-03-0${i + 1} 10:00:00.00000${i}` }),
    );
  }
  for (const labels of LABELLED) seeded.push(makeEvent({ ...labels, data: { run: RUN } }));
  const res = await client.post(seeded);
  expect(await res.json()).toEqual({ success: true, accepted: seeded.length });
  await stored(SESSION, 5);
  for (const { session_id } of LABELLED) await stored(session_id);
  before = await tableCounts();
});

/** A 400 naming `param`, or a 200 whose rows are exactly those matching; never anything else. */
async function expectNamedOrExact(path: string, param: string, matches?: (row: Record<string, unknown>) => boolean) {
  const res = await api(path);
  const text = await res.clone().text();
  expect(res.status, `${path.slice(0, 200)} → ${text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status === 400 || !matches) {
    const body = await expectError(res, 400, "invalid_query", new RegExp(param));
    expect(body.errors?.map((e) => e.field)).toContain(param);
    return;
  }
  expect(res.status, text.slice(0, 300)).toBe(200);
  expectNoLeak(text, { sqlAllowed: true }); // rows may hold the SQL-looking labels stored above
  const page = JSON.parse(text) as { count: number; results: Record<string, unknown>[] };
  expect(page.results.every(matches), `${param}: a row that does not match`).toBe(true);
  return page;
}

describe("every filter, fed SQL metacharacters and 10 KB strings", () => {
  it("answers label filters with a 400 naming the parameter or exactly the rows holding that value", async () => {
    for (const param of LABELS) {
      for (const value of HOSTILE) {
        const page = await expectNamedOrExact(
          `/api/event/?${param}=${encodeURIComponent(value)}`,
          param,
          (r) => r[param] === value,
        );
        if (value.length > 150) expect(page, `${param} of ${value.length} characters`).toBeUndefined();
        else expect(page).toBeDefined();
        // The stored event carrying this exact value is found; LIKE-style wildcards match nothing else.
        const owner = LABELLED.find((l) => l[param] === value);
        if (owner) expect(page!.results.some((r) => r.session_id === owner.session_id)).toBe(true);
      }
    }
  });

  it("refuses every hostile value in timestamp, limit, offset, cursor and pagination with 400 naming it", async () => {
    for (const param of [...TIMESTAMPS, ...OTHERS]) {
      for (const value of HOSTILE) await expectNamedOrExact(`/api/event/?${param}=${encodeURIComponent(value)}`, param);
    }
  });

  it("does the same on a session's events and the error log", async () => {
    for (const value of HOSTILE) {
      const path = `/api/sessions/${encodeURIComponent(value)}/events`;
      const res = await api(path);
      if (value.length > 150) {
        await expectError(res, 400, "invalid_query", /session_id/);
        continue;
      }
      const text = await res.text();
      expect(res.status, `${path} → ${text.slice(0, 200)}`).toBe(200);
      const page = JSON.parse(text) as { results: Record<string, unknown>[] };
      expect(page.results.every((r) => r.session_id === value)).toBe(true);
      if (LABELLED.some((l) => l.session_id === value)) expect(page.results).toHaveLength(1);
      for (const param of ["limit", "offset", "cursor", "timestamp_after"]) {
        await expectNamedOrExact(
          `/api/sessions/${encodeURIComponent(SESSION)}/events?${param}=${encodeURIComponent(value)}`,
          param,
        );
      }
      for (const param of ["kind", "occurred_after", "occurred_before", "limit", "offset"]) {
        await expectNamedOrExact(`/api/errors/?${param}=${encodeURIComponent(value)}`, param);
      }
    }
  });

  it("ignores hostile parameter names and undecodable percent-escapes", async () => {
    const session = encodeURIComponent(SESSION);
    for (const query of [
      `__proto__=x&constructor=y&toString=1&hasOwnProperty=1&session_id=${session}`,
      `__proto__[session_id]=x&session_id=${session}`,
      `session_id=${session}&session_id[]=other&limit[]=5`,
      `session_id=${session}&%FF=1&%ZZ=2`,
    ]) {
      const res = await api(`/api/event/?${query}`);
      const text = await res.text();
      expect(res.status, `${query} → ${text.slice(0, 200)}`).toBe(200);
      expect(JSON.parse(text).count, query).toBe(5);
    }
    for (const value of ["%FF", "%ZZ", "%ED%A0%80", "%C0%AF"]) {
      const page = await expectNamedOrExact(`/api/event/?session_id=${value}`, "session_id", () => false);
      expect(page!.count).toBe(0);
      await expectNamedOrExact(`/api/event/?timestamp_after=${value}`, "timestamp_after");
    }
  });

  it("leaves every table intact", async () => {
    expect(await tableCounts()).toEqual(before);
    const { page } = await stored(SESSION, 5);
    expect(page.results.map((r) => r.name)).toEqual(["seed 4", "seed 3", "seed 2", "seed 1", "seed 0"]);
    for (const labels of LABELLED) expect((await stored(labels.session_id)).page.results[0]).toMatchObject(labels);
  });
});

describe("limit and offset out of range", () => {
  it("refuses bad limits and offsets with 400 naming the parameter", async () => {
    const cases: [string, string[]][] = [
      [
        "limit",
        ["-1", "0", "1001", "1.5", "", " 1", "+1", "1e2", "0x10", "NaN", "Infinity", "99999999999999999999999", "１"],
      ],
      ["offset", ["1e20", "-5", "100001", "1.5", "", "NaN", "-0", "99999999999999999999", "1e-5"]],
    ];
    for (const [param, values] of cases) {
      for (const value of values) {
        const body = await expectError(
          await api(`/api/event/?${param}=${encodeURIComponent(value)}`),
          400,
          "invalid_query",
          new RegExp(param),
        );
        expect(body.errors).toContainEqual({ field: param, message: expect.stringContaining(param) });
      }
    }
  });

  it("serves the edges of the ranges", async () => {
    const s = `session_id=${encodeURIComponent(SESSION)}`;
    expect((await getJson(`/api/event/?${s}&limit=1`)).results).toHaveLength(1);
    expect((await getJson(`/api/event/?${s}&limit=1000`)).results).toHaveLength(5);
    expect((await getJson(`/api/event/?${s}&limit=0002&offset=0003`)).results.map((r) => r.name)).toEqual([
      "seed 1",
      "seed 0",
    ]);
    const far = await getJson(`/api/event/?${s}&offset=100000`);
    expect(far).toMatchObject({ count: 5, next: null, results: [] });
    expect(far.previous).not.toBeNull();
  });

  it("serves timestamps at the ends of the calendar, or refuses them naming the parameter", async () => {
    const s = `session_id=${encodeURIComponent(SESSION)}`;
    for (const [param, value] of [
      ["timestamp_after", "0001-01-01"],
      ["timestamp_before", "9999-12-31T23:59:59.999999Z"],
      ["timestamp_start", "1000-01-01T00:00:00-23:59"],
      ["timestamp_end", "9999-12-31 23:59+00:00"],
    ]) {
      const page = await expectNamedOrExact(
        `/api/event/?${s}&${param}=${encodeURIComponent(value!)}`,
        param!,
        (r) => r.session_id === SESSION,
      );
      expect(page?.count, `${param}=${value}`).toBe(5);
    }
    for (const [param, value] of [
      ["timestamp_after", "10000-01-01"],
      ["timestamp_after", "0000-01-01"],
      ["timestamp_before", "2021-02-30"],
      ["timestamp_start", "2021-01-01T24:00"],
      ["timestamp_end", "2021-01-01T00:00+24:00"],
      ["timestamp_end", "-2021-01-01"],
    ]) {
      await expectNamedOrExact(`/api/event/?${param}=${encodeURIComponent(value!)}`, param!);
    }
  });
});

describe("cursors", () => {
  const s = () => `session_id=${encodeURIComponent(SESSION)}`;

  async function realCursor() {
    const first = await getJson(`/api/event/?${s()}&pagination=cursor&limit=2`);
    const cursor = cursorOf(first.next);
    expect(cursor).toBeTruthy();
    return { first, cursor: cursor! };
  }

  it("follows a real cursor to the next page, without overlap", async () => {
    const { first, cursor } = await realCursor();
    const second = await getJson(`/api/event/?${s()}&pagination=cursor&limit=2&cursor=${cursor}`);
    expect(first.results.map((r) => r.name)).toEqual(["seed 4", "seed 3"]);
    expect(second.results.map((r) => r.name)).toEqual(["seed 2", "seed 1"]);
  });

  it("treats a forged but well-formed cursor as a position: huge is before everything, negative after everything", async () => {
    const huge = await getJson(
      `/api/event/?${s()}&limit=2&cursor=${b64url([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER])}`,
    );
    expect(huge.results.map((r) => r.name)).toEqual(["seed 4", "seed 3"]);
    expect(huge.next).not.toBeNull();
    for (const position of [
      [-1, -1],
      [0, 0],
      [-Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER],
    ]) {
      expect(await getJson(`/api/event/?${s()}&cursor=${b64url(position)}`)).toEqual({
        next: null,
        previous: null,
        results: [],
      });
    }
    // Oldest first on a session's route: a negative position is before everything there.
    const asc = await getJson(`/api/sessions/${encodeURIComponent(SESSION)}/events?limit=2&cursor=${b64url([-1, -1])}`);
    expect(asc.results.map((r) => r.name)).toEqual(["seed 0", "seed 1"]);
  });

  it("refuses garbage, truncated and ill-typed cursors with 400 naming cursor", async () => {
    const { cursor } = await realCursor();
    const bad = [
      "!!!!",
      "%%%",
      "日本語",
      "====",
      "a",
      "eyJ", // the start of any base64 JSON object
      cursor.slice(0, -1),
      cursor.slice(0, -2),
      cursor.slice(0, -3),
      cursor.slice(0, Math.floor(cursor.length / 2)),
      `${cursor}x`,
      `${cursor}AAAA`,
      b64url([1e300, 1]),
      b64url([1.5, 2]),
      b64url(["1", 2]),
      b64url([1, 2, 3]),
      b64url([1, 2, 1]),
      b64url([1, 2, 0, 0]),
      b64url([1]),
      b64url({ timestamp: 1, id: 2 }),
      b64url(null),
      b64url([null, null]),
      b64url([Number.MAX_SAFE_INTEGER + 2, 1]),
      btoa("[1,2"),
      "A".repeat(10_000),
    ];
    for (const value of bad) {
      const body = await expectError(
        await api(`/api/event/?${s()}&cursor=${encodeURIComponent(value)}`),
        400,
        "invalid_query",
        /cursor/,
      );
      expect(body.errors?.map((e) => e.field)).toContain("cursor");
    }
  });

  it("refuses a cursor combined with an offset, naming offset", async () => {
    const { cursor } = await realCursor();
    await expectError(await api(`/api/event/?${s()}&cursor=${cursor}&offset=2`), 400, "invalid_query", /offset/);
  });

  it("leaves every table intact", async () => {
    expect(await tableCounts()).toEqual(before);
    expect((await getJson(bySession(SESSION))).count).toBe(5);
  });
});

describe("a read key scoped to an application that has no number yet", () => {
  it("sees nothing, and its count is 0 — not every application's count (the roll-ups' app -1)", async () => {
    const { makeApp, bearer, waitForCount } = await import("../helpers/api");
    const session = `numberless-${RUN}`;
    expect((await client.post([makeEvent({ session_id: session }), makeEvent({ session_id: session })])).status).toBe(
      202,
    );
    await waitForCount(bySession(session), 2);
    const app = await makeApp();
    // An application row as an older schema or a hand-written insert could leave it: no number.
    await env.DB.prepare("UPDATE applications SET num = NULL WHERE id = ?").bind(app.appId).run();
    const page = await getJson<{ count: number; results: unknown[] }>("/api/event/", { headers: bearer(app.readKey) });
    expect(page.results).toEqual([]);
    expect(page.count).toBe(0);
  });
});
