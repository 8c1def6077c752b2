// The lake on a laptop (issue 17), end to end under a real `wrangler dev --test-scheduled` with a
// one-day hot window: events posted three days late are archived and purged by the first cron runs;
// `npm run lake -- pull` mirrors the archive into a folder that DuckDB reads (@duckdb/node-api):
// every event once, its timestamps TIMESTAMPs, the same rows as GET /api/export.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevWorker, startDevWorker } from "../helpers/dev-worker";

const ROOT = path.resolve(import.meta.dirname, "../..");
const NODE = existsSync(path.join(ROOT, "node_modules/.bin/node"))
  ? path.join(ROOT, "node_modules/.bin/node")
  : process.execPath;
const WRITE = { authorization: "Bearer eye_dev_write_key", "content-type": "application/json" };
const READ = { authorization: "Bearer eye_dev_read_key" };
const HOUR = 3_600_000;
const NOW = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

let worker: DevWorker;
const dir = mkdtempSync(path.join(tmpdir(), "eye-lake-"));
const sessions = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];

beforeAll(async () => {
  worker = await startDevWorker("eye-lake-state-", ["/api/health"], { testScheduled: true, vars: { HOT_DAYS: "1" } });
}, 180_000);
afterAll(async () => {
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const count = async (query: string) =>
  ((await (await fetch(`${worker.url}/api/event/?${query}`, { headers: READ })).json()) as { count: number }).count;

async function cronRun() {
  const res = await fetch(`${worker.url}/__scheduled?cron=*/5+*+*+*+*`);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

function lake(...args: string[]) {
  return execFileSync(NODE, ["scripts/lake.mjs", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
  });
}

describe("the lake", () => {
  it("archives and purges a few dozen events three days old within a few cron runs of wrangler dev", async () => {
    const old = Array.from({ length: 48 }, (_, i) => ({
      session_id: sessions[i % 3],
      category: "lake",
      name: ["view", "click"][i % 2],
      data: { i, path: `/p/${i % 5}`, nested: { ok: i % 2 === 0 } },
      timestamp: iso(NOW - 72 * HOUR + i * 37 * 60_000 + 123),
    }));
    const fresh = [0, 1].map((i) => ({
      session_id: sessions[0],
      category: "lake",
      name: "view",
      data: { fresh: i },
      timestamp: iso(NOW - i * 1000),
    }));
    for (const [body, cf] of [
      [old.slice(0, 24), { country: "DE", continent: "EU", city: "Berlin", asn: 3320 }],
      [old.slice(24), undefined],
      [fresh, undefined],
    ] as const) {
      const res = await fetch(`${worker.url}/api/event/`, {
        method: "POST",
        headers: {
          ...WRITE,
          ...(cf ? { "x-eye-dev-cf": JSON.stringify(cf) } : {}),
          "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(202);
    }
    for (let t = Date.now(); (await count("category=lake")) < 50; ) {
      expect(Date.now() - t).toBeLessThan(30_000);
      await new Promise((r) => setTimeout(r, 250));
    }
    const before = `category=lake&timestamp_before=${iso(NOW - 24 * HOUR)}`;
    expect(await count(before)).toBe(48);
    let runs = 0;
    while ((await count(before)) > 0) {
      expect(runs++).toBeLessThan(3);
      await cronRun();
    }
    expect(runs).toBeLessThanOrEqual(3);
    expect(await count("category=lake")).toBe(2);
    const health = (await (await fetch(`${worker.url}/api/health`, { headers: READ })).json()) as {
      storage: { archive: { backlog_events: number } };
    };
    expect(health.storage.archive.backlog_events).toBe(0);
  }, 120_000);

  it("is pulled into a folder of Parquet that DuckDB reads: every event once, its timestamps TIMESTAMPs, the rows of GET /api/export", async () => {
    const res = await fetch(
      `${worker.url}/api/export?timestamp_after=${iso(NOW - 96 * HOUR)}&timestamp_before=${iso(NOW + 60_000)}&category=lake`,
      { headers: READ },
    );
    expect(res.status).toBe(200);
    const exported = (await res.text())
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(exported).toHaveLength(50);

    const out = lake("pull", dir, "--persist-to", worker.persist);
    expect(out).toMatch(/objects live/);
    expect(lake("pull", dir, "--persist-to", worker.persist)).toMatch(/ 0 copied/);
    expect(
      lake("list", "--persist-to", worker.persist)
        .trim()
        .split("\n")
        .every((k) => /^events\/app_id=[^/]+\/date=\d{4}-\d{2}-\d{2}\/part-[\d-]+(-c\d+)?(-e\d+)?\.parquet$/.test(k)),
    ).toBe(true);

    const duck = await (await DuckDBInstance.create(":memory:")).connect();
    const query = async (sql: string) => (await duck.runAndReadAll(sql)).getRowObjectsJson();
    const files = `read_parquet('${dir}/events/**/*.parquet', hive_partitioning = true)`;
    const [counts] = await query(
      `SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM ${files} WHERE category = 'lake'`,
    );
    expect(counts).toEqual({ n: "50", ids: "50" });
    const [types] = await query(
      `SELECT typeof(timestamp) AS ts, typeof(received_at) AS rec, typeof(seq) AS seq, typeof(data) AS data, typeof(app_id) AS app FROM ${files} LIMIT 1`,
    );
    expect(types).toEqual({
      ts: "TIMESTAMP WITH TIME ZONE",
      rec: "TIMESTAMP WITH TIME ZONE",
      seq: "BIGINT",
      data: "VARCHAR",
      app: "VARCHAR",
    });
    // The same rows as the export: every field, the timestamps to the microsecond (UTC).
    const rows = await query(
      `SELECT event_id, session_id, category, name, data, app_id, application, country, city, asn, browser,
         strftime(timezone('UTC', timestamp), '%Y-%m-%dT%H:%M:%S.%fZ') AS ts,
         strftime(timezone('UTC', received_at), '%Y-%m-%dT%H:%M:%S.%fZ') AS received
       FROM ${files} WHERE category = 'lake' ORDER BY event_id`,
    );
    const byId = new Map(exported.map((e) => [e.event_id as string, e]));
    for (const r of rows) {
      const e = byId.get(r.event_id as string)!;
      expect(e, String(r.event_id)).toBeDefined();
      // The export leaves out zero microseconds (as the original did); DuckDB's %f always writes six digits.
      const micros = (s: unknown) => (/\.\d{6}Z$/.test(String(s)) ? String(s) : String(s).replace(/Z$/, ".000000Z"));
      expect(micros(e.timestamp)).toBe(r.ts);
      expect(micros(e.received_at)).toBe(r.received);
      expect({
        session_id: r.session_id,
        category: r.category,
        name: r.name,
        data: JSON.parse(String(r.data)),
        app: r.app_id,
        application: r.application,
      }).toEqual({
        session_id: e.session_id,
        category: e.category,
        name: e.name,
        data: e.data,
        app: e.application,
        application: e.application,
      });
      const ctx = (e.context ?? {}) as Record<string, unknown>;
      expect({
        country: r.country,
        city: r.city,
        asn: r.asn === null ? null : Number(r.asn),
        browser: r.browser,
      }).toEqual({
        country: ctx.country ?? null,
        city: ctx.city ?? null,
        asn: ctx.asn ?? null,
        browser: ctx.browser ?? null,
      });
    }
    // A time filter and a session lookup, as an analyst writes them.
    const [{ n: inHour }] = (await query(
      `SELECT count(*) AS n FROM ${files} WHERE category = 'lake' AND timestamp >= TIMESTAMPTZ '${iso(NOW - 72 * HOUR)}' AND timestamp < TIMESTAMPTZ '${iso(NOW - 71 * HOUR)}'`,
    )) as [{ n: string }];
    expect(Number(inHour)).toBe(
      exported.filter(
        (e) => Date.parse(String(e.timestamp)) < NOW - 71 * HOUR && Date.parse(String(e.timestamp)) >= NOW - 72 * HOUR,
      ).length,
    );
    const [{ n: ofSession }] = (await query(
      `SELECT count(*) AS n FROM ${files} WHERE session_id = '${sessions[1]}'`,
    )) as [{ n: string }];
    expect(Number(ofSession)).toBe(16);
  }, 120_000);
});
