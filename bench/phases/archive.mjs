// Phase `archive` (issue 17): what the Parquet archive costs and how fast it is read, through the real
// code in the probe. a) 100,000 events of 4 applications at 100 events/s through the real queue(), then
// the real maintenance until done: bytes per event, cron CPU (the runtime's workerd process) and wall
// time per 100,000 events, R2 puts; the same rows as gzip NDJSON in the older archive's layout and
// as Parquet with each page codec (hyparquet-writer in Node, the archive's own writer bundled);
// GET /api/export's events/s from D1 and from the archive. b) Simulated cron runs (the maintenance's
// clock moved 5 minutes a run) at 10 and 100 events/s of one application: R2 puts and live objects
// per hour before and after compaction, and one run at 1,000 events/s. c) 1,000,000 events archived,
// pulled with `npm run lake -- pull`, read with DuckDB (@duckdb/node-api): count, a time filter, a
// session lookup, a group-by; and how many events one run archives at most.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import { build } from "esbuild";
import { devCommand, prepareLocal, ROOT, Server, SNAP, STATE, writeProbeConfig } from "../lib/servers.mjs";
import { APPS } from "./storage.mjs";

export const budgetMinutes = ({ quick }) => (quick ? 8 : 25);
const HOUR = 3_600_000_000;
const RUN = 5 * 60 * 1000;
const CATEGORIES = ["page interaction", "navigation", "form", "media", "error"];
const NAMES = [
  "cta click",
  "page view",
  "submit",
  "play",
  "js error",
  "scroll",
  "link click",
  "field focus",
  "pause",
  "timeout",
];

/** README-shaped events, `rate` a second from `start` (µs), sessions of 20 events, the sessions over `apps` in turn. */
function events(n, { start, rate, apps = APPS, offset = 0 }) {
  const out = [];
  for (let k = 0; k < n; k++) {
    const i = k + offset;
    const session = Math.floor(i / 20);
    out.push({
      app: apps[session % apps.length],
      event: {
        event_id: crypto.randomUUID(),
        session_id: `s-${session}-${(session * 2654435761) % 100000}`,
        category: CATEGORIES[i % 5],
        name: NAMES[i % 10],
        data: `{"host":"www.xxxxx.com","path":"/p/${i % 500}","element":"chat bubble","x":${i % 1280}}`,
        timestamp: start + Math.floor((k * 1e6) / rate),
      },
    });
  }
  return out;
}

/** Stores events through the probe's real queue(): consumer batches of 5,000, messages of 250 of one application. */
async function store(probe, list) {
  for (let b = 0; b < list.length; b += 5000) {
    const byApp = new Map();
    for (const e of list.slice(b, b + 5000)) {
      if (!byApp.has(e.app)) byApp.set(e.app, []);
      byApp.get(e.app).push(e.event);
    }
    const messages = [];
    for (const [app, evs] of byApp)
      for (let i = 0; i < evs.length; i += 250)
        messages.push({ kind: "events", app, received_at: Date.now() * 1000, events: evs.slice(i, i + 250) });
    const res = await fetch(`${probe.url}/__bench/consume?variant=real`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages }),
    });
    if (!res.ok) throw new Error(`consume: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }
}

async function call(probe, p, method = "POST") {
  const res = await fetch(`${probe.url}${p}`, { method });
  const o = await res.json();
  if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(o)}`);
  return o;
}

/** One metered maintenance run: its summary, the R2 calls, wall seconds and the runtime's CPU seconds. */
async function maintain(probe, nowMs) {
  await call(probe, "/__bench/meter?on=1");
  const cpu0 = probe.cpuByRole().runtime;
  const t0 = performance.now();
  const { run, meter } = await call(probe, `/__bench/maintain${nowMs === undefined ? "" : `?now_ms=${nowMs}`}`);
  const out = {
    run,
    r2: meter.r2,
    d1: meter.maintain,
    seconds: (performance.now() - t0) / 1000,
    cpu: probe.cpuByRole().runtime - cpu0,
  };
  await call(probe, "/__bench/meter?on=0");
  return out;
}

/** Runs the maintenance until the archive is done (and, with `compacted`, until a run compacts nothing). */
async function untilArchived(probe, nowMs, { compacted = false } = {}) {
  const runs = [];
  for (let i = 0; i < 100; i++) {
    const r = await maintain(probe, nowMs);
    runs.push(r);
    if (r.run.archive.done && (!compacted || r.run.compact.compactions === 0)) break;
  }
  return runs;
}

/** The manifest's live objects: count, events, bytes. */
async function live(probe) {
  const { rows } = await call(probe, "/__bench/manifest", "GET");
  const l = rows.filter((r) => r.state === "live");
  return {
    objects: l.reduce((n, r) => n + r.objects, 0),
    events: l.reduce((n, r) => n + r.events, 0),
    bytes: l.reduce((n, r) => n + r.bytes, 0),
    textBytes: l.reduce((n, r) => n + r.text_bytes, 0),
    byOrigin: Object.fromEntries(l.map((r) => [r.origin, r.objects])),
  };
}

async function startProbe(name) {
  const config = writeProbeConfig();
  const persist = path.join(STATE, name);
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config });
  const probe = await Server.start(name, { persist, config, argv: devCommand() });
  return { probe, config, persist };
}

/** GET /api/export of a range through the probe (the real app): lines and events/s. */
async function exportRate(probe, after, before) {
  const t0 = performance.now();
  const res = await fetch(
    `${probe.url}/api/export?timestamp_after=${new Date(after / 1000).toISOString()}&timestamp_before=${new Date(before / 1000).toISOString()}`,
    {
      headers: { authorization: "Bearer eye_dev_read_key" },
    },
  );
  const text = await res.text();
  if (!res.ok) throw new Error(`export: ${res.status} ${text.slice(0, 300)}`);
  const seconds = (performance.now() - t0) / 1000;
  const lines = text.split("\n").filter(Boolean);
  return { events: lines.length, seconds, perSecond: lines.length / seconds, bytes: text.length, lines };
}

/** The archive's own Parquet writer (src/archive/parquet.ts), bundled for Node. */
async function parquetModule() {
  const outfile = path.join(STATE, "archive-parquet.mjs");
  await build({
    entryPoints: [path.join(SNAP, "src/archive/parquet.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "warning",
  });
  return import(`${outfile}?t=${Date.now()}`);
}

/** The archive's and compaction's bounds, from the code under test (src/maintain/archive.ts, compaction.ts, scheduled.ts). */
async function limitsModule() {
  const outfile = path.join(STATE, "archive-limits.mjs");
  await build({
    stdin: {
      contents: [
        `export { RANGE_LIMITS, RUN_LIMITS } from "./src/maintain/archive.ts";`,
        `export { MIN_OBJECTS, SMALL, TARGET } from "./src/maintain/compaction.ts";`,
        `export { STEP_BUDGET_MS } from "./src/maintain/scheduled.ts";`,
      ].join("\n"),
      resolveDir: SNAP,
      loader: "js",
    },
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "warning",
  });
  const m = await import(`${outfile}?t=${Date.now()}`);
  return {
    range: m.RANGE_LIMITS,
    run: m.RUN_LIMITS,
    small: m.SMALL,
    target: m.TARGET,
    minObjects: m.MIN_OBJECTS,
    stepMs: m.STEP_BUDGET_MS,
  };
}

/**
 * R2 puts and live objects per day for one application at `rate` events/s, from the policy: a cron run
 * every 5 minutes archives what arrived since the last in ranges of at most range.events events (one
 * object per range and date); compaction merges runs of at least minObjects neighbouring small objects
 * (fewer than small.events) of today, at most target.events together, and an earlier date's at two.
 * One run archives at most run.bytes of text (and the step's time budget: `perRunMeasured` events).
 */
export function perDay(rate, L, textBytesPerEvent, perRunMeasured) {
  const runs = 288;
  const arriving = rate * 300;
  const perRunCap = Math.min(
    Math.floor(L.run.bytes / textBytesPerEvent),
    (Math.floor((L.run.objects - L.range.partitions) / 1) + 1) * L.range.events,
    perRunMeasured ?? Infinity,
  );
  // The objects are those of what arrives (a run that cannot archive it all leaves a backlog to the next).
  const full = Math.floor(arriving / L.range.events);
  const rest = arriving - full * L.range.events;
  const objectsPerRun = full + (rest > 0 ? 1 : 0);
  const putsBefore = runs * objectsPerRun;
  // Small objects are neighbours only when a run writes nothing but one small object.
  const allSmall = full === 0 && rest < L.small.events;
  let live = putsBefore;
  let compactionPuts = 0;
  if (allSmall) {
    const group = Math.max(L.minObjects, 2);
    const merged = Math.floor(runs / group);
    compactionPuts = merged;
    live = merged + (runs - merged * group);
    // The closed date's leftovers merge at two, into neighbours that are still small.
    if (runs - merged * group >= 2) {
      compactionPuts += 1;
      live = merged + 1;
    }
  }
  return {
    rate,
    arriving: arriving * runs,
    perRun: arriving,
    perRunCap,
    keepsUp: perRunCap >= arriving,
    objectsPerRun,
    putsBefore,
    liveBefore: putsBefore,
    putsAfter: putsBefore + compactionPuts,
    liveAfter: live,
  };
}

/** Bytes and CPU of the same events in each format: gzip NDJSON in the older archive's layout, and the archive's live objects rewritten with each page codec. */
async function formats(probe, parquet, lines) {
  // The older archive: one object per application, hour and block of 10,000 ids (ids in storage order: the export's order from D1).
  const ndjson = new Map();
  lines.forEach((l, i) => {
    const e = JSON.parse(l);
    const key = `${e.application}/${e.timestamp.slice(0, 13)}/${Math.floor(i / 10_000)}`;
    if (!ndjson.has(key)) ndjson.set(key, []);
    ndjson.get(key).push(l);
  });
  // The archive's own objects, as the maintenance left them, read back.
  const files = [];
  for (const key of (await call(probe, "/__bench/manifest", "GET")).live) {
    const bytes = await (
      await fetch(`${probe.url}/__bench/archive-object?key=${encodeURIComponent(key)}`)
    ).arrayBuffer();
    const rows = [];
    for await (const group of parquet.parquetRows(bytes)) rows.push(...group);
    files.push(rows);
  }
  const events = files.reduce((n, f) => n + f.length, 0);
  const cpu = (f) => {
    const passes = [];
    let bytes = 0;
    for (let p = 0; p < 3; p++) {
      const c0 = process.cpuUsage();
      bytes = f();
      const c1 = process.cpuUsage(c0);
      passes.push((c1.user + c1.system) / 1000);
    }
    passes.sort((a, b) => a - b);
    return { bytes, cpuMs: passes[1] };
  };
  const each = (codec) => () => files.reduce((n, f) => n + parquet.writeParquet(f, codec).byteLength, 0);
  const gzip = (level) => ({
    codec: "GZIP",
    compressors: { GZIP: (b) => new Uint8Array(zlib.gzipSync(b, { level })) },
  });
  const zstd = zlib.zstdCompressSync
    ? {
        codec: "ZSTD",
        compressors: {
          ZSTD: (b) =>
            new Uint8Array(zlib.zstdCompressSync(b, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 } })),
        },
      }
    : undefined;
  const variants = [
    [
      `gzip NDJSON, the older archive's layout (an object per application, hour and 10,000 ids; node:zlib level 6)`,
      () => [...ndjson.values()].reduce((n, l) => n + zlib.gzipSync(`${l.join("\n")}\n`).length, 0),
      ndjson.size,
      lines.length,
    ],
    ["Parquet, GZIP pages, level 6: the archive's codec (node:zlib)", each(parquet.CODEC), files.length, events],
    ["Parquet, GZIP pages, level 1", each(gzip(1)), files.length, events],
    ["Parquet, GZIP pages, level 9", each(gzip(9)), files.length, events],
    ["Parquet, SNAPPY pages (hyparquet-writer's own, pure JS)", each({ codec: "SNAPPY" }), files.length, events],
    ...(zstd
      ? [
          [
            "Parquet, ZSTD pages, level 3 (Node's zlib; workerd's fails on output over ≈ 40 KB)",
            each(zstd),
            files.length,
            events,
          ],
        ]
      : []),
    ["Parquet, uncompressed pages", each({ codec: "UNCOMPRESSED" }), files.length, events],
  ];
  return variants.map(([label, f, n, count]) => {
    const m = cpu(f);
    return {
      label,
      files: n,
      events: count,
      bytes: m.bytes,
      bytesPerEvent: m.bytes / count,
      cpuMsPer10k: (m.cpuMs / count) * 10_000,
    };
  });
}

/** A day's cron runs at `rate` events/s of one application, simulated for `runs` runs: puts and live objects each run. */
async function simulate(log, rate, runs) {
  const { probe } = await startProbe(`archive-sim-${rate}`);
  try {
    const app = APPS[0];
    const day = Date.UTC(2026, 10, 2);
    const out = [];
    for (let r = 0; r < runs; r++) {
      const from = day + r * RUN;
      await store(probe, events((RUN / 1000) * rate, { start: from * 1000, rate, apps: [app], offset: r * 1e6 }));
      const m = await maintain(probe, from + RUN);
      const l = await live(probe);
      out.push({
        run: r + 1,
        puts: m.r2.puts,
        deletes: m.r2.deletes,
        seconds: m.seconds,
        cpu: m.cpu,
        live: l.objects,
        compactions: m.run.compact.compactions,
        compacted: l.byOrigin.compaction ?? 0,
        archived: m.run.archive.rows,
        done: m.run.archive.done,
      });
    }
    log(`archive: ${rate}/s simulated for ${runs} runs: ${JSON.stringify(out.at(-1))}`);
    return { rate, runs, perRun: out };
  } finally {
    await probe.stop();
  }
}

/** DuckDB over a pulled folder: each query's median of 3 wall times, and its answer. */
export async function duck(dir, total) {
  const db = await (await DuckDBInstance.create(":memory:")).connect();
  const files = `read_parquet('${dir}/events/**/*.parquet', hive_partitioning = true)`;
  const [{ first }] = (
    await db.runAndReadAll(`SELECT min(timestamp)::VARCHAR AS first FROM ${files}`)
  ).getRowObjectsJson();
  const [{ session }] = (
    await db.runAndReadAll(`SELECT session_id AS session FROM ${files} LIMIT 1 OFFSET ${Math.floor(total / 2)}`)
  ).getRowObjectsJson();
  const queries = {
    "count(*)": `SELECT count(*) AS n FROM ${files}`,
    "one hour (timestamp range)": `SELECT count(*) AS n FROM ${files} WHERE timestamp >= TIMESTAMPTZ '${first}' + INTERVAL 10 HOUR AND timestamp < TIMESTAMPTZ '${first}' + INTERVAL 11 HOUR`,
    "one session (session_id =)": `SELECT count(*) AS n FROM ${files} WHERE session_id = '${session}'`,
    "events by category and day": `SELECT category, date_trunc('day', timestamp) AS day, count(*) AS n FROM ${files} GROUP BY ALL`,
    "one application's data field": `SELECT count(*) AS n FROM ${files} WHERE app_id = '${APPS[1]}' AND json_extract_string(data, '$.path') = '/p/9'`,
  };
  const out = [];
  for (const [label, sql] of Object.entries(queries)) {
    const times = [];
    let answer;
    for (let p = 0; p < 3; p++) {
      const t0 = performance.now();
      answer = (await db.runAndReadAll(sql)).getRowObjectsJson();
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    out.push({ label, seconds: times[1], all: times, rows: answer.length, first: answer[0] });
  }
  return out;
}

export async function run(ctx) {
  const { quick, log } = ctx;
  const out = {};
  const n = quick ? 20_000 : 100_000;
  const start = Date.UTC(2026, 9, 5) * 1000;

  // a) 100,000 events, archived by the real maintenance.
  {
    const { probe } = await startProbe("archive-probe");
    try {
      log(`archive: ${n} events of ${APPS.length} applications at 100/s through the probe's queue()`);
      await store(probe, events(n, { start, rate: 100 }));
      const range = [start - HOUR, start + (n / 100) * 1e6 + HOUR];
      const fromD1 = await exportRate(probe, ...range);
      const runs = await untilArchived(probe);
      const idle = await maintain(probe);
      const fromArchive = await exportRate(probe, ...range); // HOT_DAYS 30 purged them: the archive alone
      const l = await live(probe);
      const parquet = await parquetModule();
      out.limits = await limitsModule();
      out.a = {
        events: n,
        runs: runs.map((r) => ({
          seconds: r.seconds,
          cpu: r.cpu,
          puts: r.r2.puts,
          putBytes: r.r2.putBytes,
          archive: r.run.archive,
          compact: r.run.compact,
          purged: r.run.purge.deleted,
          d1: { statements: r.d1.statements, rowsRead: r.d1.rowsRead, rowsWritten: r.d1.rowsWritten },
        })),
        idle: {
          puts: idle.r2.puts,
          lists: idle.r2.lists,
          gets: idle.r2.gets,
          rowsRead: idle.d1.rowsRead,
          seconds: idle.seconds,
          cpu: idle.cpu,
        },
        live: l,
        exportD1: { events: fromD1.events, seconds: fromD1.seconds, perSecond: fromD1.perSecond },
        exportArchive: { events: fromArchive.events, seconds: fromArchive.seconds, perSecond: fromArchive.perSecond },
        formats: await formats(probe, parquet, fromD1.lines),
      };
      log(`archive: ${JSON.stringify({ ...out.a, formats: undefined, runs: out.a.runs.length })}`);
    } finally {
      await probe.stop();
    }
  }

  // b) Objects and puts per hour of cron runs, at 10 and 100 events/s of one application, and one run at 1,000/s.
  out.b = [
    await simulate(log, 10, quick ? 14 : 26),
    await simulate(log, 100, quick ? 3 : 13),
    await simulate(log, 1000, quick ? 1 : 2),
  ];

  // c) 1,000,000 events archived, pulled, read with DuckDB.
  {
    const total = quick ? 200_000 : 1_000_000;
    const { probe, config, persist } = await startProbe("archive-lake");
    try {
      log(`archive: ${total} events stored, then archived, pulled and read with DuckDB`);
      const t0 = performance.now();
      // 20 events/s: 1,000,000 events over ≈ 14 hours of one date.
      for (let b = 0; b < total; b += 100_000)
        await store(
          probe,
          events(Math.min(100_000, total - b), { start: start + b * (1e6 / 20), rate: 20, offset: b }),
        );
      const storeSeconds = (performance.now() - t0) / 1000;
      const runs = await untilArchived(probe, Date.UTC(2026, 10, 1), { compacted: true });
      const dir = path.join(STATE, "archive-lake-pulled");
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const p0 = performance.now();
      const pullOut = execFileSync(
        process.execPath,
        ["scripts/lake.mjs", "pull", dir, "--persist-to", persist, "--config", config],
        { cwd: ROOT, encoding: "utf8" },
      );
      const pullSeconds = (performance.now() - p0) / 1000;
      const sizes = [];
      const walk = (d) => {
        for (const f of readdirSync(d, { withFileTypes: true }))
          f.isDirectory() ? walk(path.join(d, f.name)) : sizes.push(statSync(path.join(d, f.name)).size);
      };
      walk(path.join(dir, "events"));
      out.c = {
        events: total,
        storeSeconds,
        runs: runs.map((r) => ({
          seconds: r.seconds,
          cpu: r.cpu,
          rows: r.run.archive.rows,
          ranges: r.run.archive.ranges,
          objects: r.run.archive.objects,
          bytes: r.run.archive.bytes,
          done: r.run.archive.done,
          compactions: r.run.compact.compactions,
        })),
        pull: {
          seconds: pullSeconds,
          files: sizes.length,
          bytes: sizes.reduce((a, b) => a + b, 0),
          out: pullOut.trim(),
        },
        duckdb: await duck(dir, total),
      };
      log(`archive: lake ${JSON.stringify({ ...out.c, runs: out.c.runs.length })}`);
    } finally {
      await probe.stop();
    }
  }
  return out;
}

const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 100 ? n0(x) : x.toFixed(1));
const n2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x.toFixed(2));

export function render(o) {
  const lines = ["", "### The Parquet archive (issue 17)", ""];
  const a = o.a;
  const sum = (k) => a.runs.reduce((n, r) => n + k(r), 0);
  const archived = sum((r) => r.archive.rows);
  lines.push(
    `${n0(a.events)} events of ${APPS.length} applications, timestamps 10 ms apart (100 events/s), stored by the probe's real \`queue()\`, then the real maintenance until the archive was done: ` +
      `${a.runs.length} run(s), ${n0(archived)} events in ${n0(sum((r) => r.archive.ranges))} ranges, ${n0(sum((r) => r.puts))} R2 puts; live afterwards: ${n0(a.live.objects)} objects, ${n0(a.live.bytes)} bytes, **${n1(a.live.bytes / a.live.events)} B per event**. ` +
      `Cron time per 100,000 events: **${n2((sum((r) => r.seconds) * 100_000) / archived)} s wall, ${n2((sum((r) => r.cpu) * 100_000) / archived)} s CPU** of the runtime's workerd process (archive, compaction, retention of them; the purge deleted ${n0(sum((r) => r.purged))}). ` +
      `A run with nothing new: ${a.idle.puts} puts, ${a.idle.lists} lists, ${n0(a.idle.rowsRead)} D1 rows read, ${n2(a.idle.seconds)} s.`,
  );
  lines.push("");
  lines.push(
    `| the same ${n0(a.events)} events | files | B per event | CPU ms per 10,000 events (Node, median of 3) |`,
  );
  lines.push("|---|---:|---:|---:|");
  for (const f of a.formats)
    lines.push(`| ${f.label} | ${n0(f.files)} | ${n1(f.bytesPerEvent)} | ${n1(f.cpuMsPer10k)} |`);
  lines.push("");
  lines.push(
    `GET /api/export of the ${n0(a.events)} events (one request, through the probe): **${n0(a.exportD1.perSecond)} events/s from D1** (${n2(a.exportD1.seconds)} s, before the archive ran), **${n0(a.exportArchive.perSecond)} events/s from the archive** (${n2(a.exportArchive.seconds)} s, after retention purged them from D1).`,
  );
  lines.push("");
  lines.push(
    "Simulated cron runs (the maintenance's clock moved 5 minutes a run, each run's arrivals stored before it), one application:",
  );
  lines.push("");
  lines.push(
    "| rate | simulated runs | R2 puts per run (mean; last run) | live objects after the last run | of which compacted | compactions | wall s / CPU s of the last run |",
  );
  lines.push("|---|---:|---:|---:|---:|---:|---:|");
  for (const b of o.b) {
    const last = b.perRun.at(-1);
    lines.push(
      `| ${n0(b.rate)} events/s | ${b.runs} | ${n1(b.perRun.reduce((s, r) => s + r.puts, 0) / b.runs)} (${last.puts}) | ${last.live} | ${last.compacted ?? "—"} | ${b.perRun.reduce((s, r) => s + r.compactions, 0)} | ${n2(last.seconds)} / ${n2(last.cpu)} |`,
    );
  }
  lines.push("");
  const L = o.limits;
  const tpe = a.live.textBytes / a.live.events;
  const first = o.c.runs[0];
  const measuredCap = first && !first.done ? first.rows : undefined;
  lines.push(
    `R2 puts and objects per day, one application, computed from the policy (ranges of at most ${n0(L.range.events)} events, one object per range and date; compaction of ≥ ${L.minObjects} neighbouring objects under ${n0(L.small.events)} events, at most ${n0(L.target.events)} together; a run bounded by ${n0(L.run.bytes / 2 ** 20)} MiB of text, ${n1(tpe)} B per event here, and ${measuredCap === undefined ? "its time budget" : `its ${L.stepMs / 1000} s budget: ${n0(measuredCap)} events measured below`}) and checked against the simulated runs above; 288 runs a day:`,
  );
  lines.push("");
  lines.push(
    "| rate | events a day | objects per run | R2 puts a day, before / with compaction | live objects a day, before / after compaction | one run archives 5 minutes' events |",
  );
  lines.push("|---|---:|---:|---:|---:|---|");
  for (const rate of [10, 100, 1000, 10000]) {
    const d = perDay(rate, L, tpe, measuredCap);
    lines.push(
      `| ${n0(rate)} events/s | ${n0(d.arriving)} | ${d.objectsPerRun} | ${n0(d.putsBefore)} / ${n0(d.putsAfter)} | ${n0(d.liveBefore)} / ${n0(d.liveAfter)} | ${d.keepsUp ? "yes" : `no: ${n0(d.perRun)} arrive per run, one run archives ≈ ${n0(d.perRunCap)}`} |`,
    );
  }
  lines.push("");
  const c = o.c;
  lines.push(
    `${n0(c.events)} events stored (${n1(c.storeSeconds)} s), archived in ${c.runs.length} runs (the first archived ${n0(c.runs[0]?.rows)} events in ${n2(c.runs[0]?.seconds)} s: one run's bound), pulled with \`npm run lake -- pull\` in ${n1(c.pull.seconds)} s: ${n0(c.pull.files)} files, ${n0(c.pull.bytes)} bytes. DuckDB (@duckdb/node-api, in-process) over the folder, median of 3:`,
  );
  lines.push("");
  lines.push("| query | seconds | answer |");
  lines.push("|---|---:|---|");
  for (const q of c.duckdb)
    lines.push(`| ${q.label} | ${n2(q.seconds)} | ${q.rows === 1 ? JSON.stringify(q.first) : `${q.rows} rows`} |`);
  lines.push("");
  return lines;
}
