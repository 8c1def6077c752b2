// Phase `cost` (issue 8): what Cloudflare bills, per event, from operations COUNTED through the probe
// (the real Worker with metering bindings): Worker requests, queue messages and their bytes, D1's
// meta.rows_read / rows_written of ingest, of the consumer's D1 batch and of the maintenance (archive,
// retention purge), R2 puts; then $ per million events at the published prices (bench/prices.mjs).
// It uses the storage phase's archive figures when that phase ran in the same run, else measures them.
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { body, cannon, countVisible, MANY_CLIENTS, postBatches, WRITE_HEADERS, waitForCount } from "../lib/load.mjs";
import { devCommand, prepareLocal, Server, STATE, writeProbeConfig } from "../lib/servers.mjs";
import { PRICES, THIRD_PARTY } from "../prices.mjs";
import { archive } from "./storage.mjs";

/** Minutes this phase adds to the run's budget. */
export const budgetMinutes = () => 2;

export async function run(ctx) {
  const { quick, log, R } = ctx;
  const config = writeProbeConfig();
  const persist = path.join(STATE, "cost-probe");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config });
  const probe = await Server.start("cost-probe", { persist, config, argv: devCommand() });
  const meter = async (on) =>
    (
      await fetch(`${probe.url}/__bench/meter${on === undefined ? "" : `?on=${on}`}`, {
        method: on === undefined ? "GET" : "POST",
      })
    ).json();
  const out = { loads: [] };
  for (const l of [
    {
      key: "single",
      label: "single-event POSTs, 50 connections, a client per request",
      n: 1,
      events: quick ? 300 : 2_000,
    },
    { key: "batch500", label: "500-event POSTs, 10 at a time", n: 500, events: quick ? 5_000 : 20_000 },
  ]) {
    const before = await countVisible(probe.url);
    await meter(1);
    const cpu0 = probe.cpuByRole();
    log(`cost: ${l.events} events as ${l.label}`);
    let accepted;
    if (l.n === 1) {
      const r = await cannon(`${probe.url}/api/event/`, {
        connections: 50,
        amount: l.events,
        method: "POST",
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS, "x-bench-meter": "1" },
        body: body(1),
        idReplacement: true,
      });
      accepted = r.statuses[202] ?? 0;
    } else {
      const r = await postBatches(probe.url, {
        total: l.events,
        perRequest: l.n,
        concurrency: 10,
        runId: `cost-${randomUUID()}`,
        clientPerRequest: true,
        headers: { "x-bench-meter": "1" },
      });
      accepted = r.accepted;
    }
    const w = await waitForCount(probe.url, before + accepted);
    const cpu1 = probe.cpuByRole();
    const m = await meter();
    out.loads.push({
      key: l.key,
      label: l.label,
      perRequest: l.n,
      events: accepted,
      visible: w.count - before,
      requests: m.requests,
      messages: m.messages,
      messageBytes: m.messageBytes,
      fetch: m.fetch,
      queue: m.queue,
      cpuRuntimeUs: ((cpu1.runtime - cpu0.runtime) / accepted) * 1e6,
      cpuProxyUs: ((cpu1.proxy - cpu0.proxy) / accepted) * 1e6,
    });
  }
  await meter(0);
  await probe.stop();
  // The maintenance (archive, then retention) is counted on the storage phase's archive run: events of
  // several applications with timestamps spread in time, enough to seal blocks that retention may purge
  // (the README-shaped POSTs above all carry one timestamp). Measured here when that phase did not run.
  const arch = R.storage?.archive ?? (await archive(ctx, quick ? 20_000 : 100_000));
  out.maintenance = {
    source: R.storage ? "storage phase, this run" : "measured by this phase",
    runs: arch.runs.map((r) => ({ run: r.run, maintain: r.meter.maintain, r2: r.meter.r2 })),
  };
  // The figures this phase takes from others in the same run, with where they come from.
  out.storage = {
    source: out.maintenance.source,
    d1BytesPerEvent: arch.d1.bytes / arch.d1.rows,
    r2BytesPerEvent: arch.bytes / arch.events,
    objectsPer10k: arch.objects / (arch.events / 10_000),
    idlePuts: arch.idle.meter.r2.puts,
    idleLists: arch.idle.meter.r2.lists,
    archiveApps: arch.apps,
    archiveRate: arch.rate,
  };
  const shape = (name) => R.query?.shapes.find((s) => s.name === name);
  out.queryPages = R.query
    ? {
        source: `query phase, this run (${R.query.rows.toLocaleString("en")} events, 30 days)`,
        offset: shape("none"),
        cursor: shape("none, cursor page 2"),
        offsetRange: shape("category + 1-day range"),
      }
    : null;
  return out;
}

const sum = (a) => a.reduce((x, y) => x + y, 0);
const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n2 = (x) =>
  x === undefined || x === null || Number.isNaN(x)
    ? "—"
    : x >= 100
      ? n0(x)
      : x >= 10
        ? x.toFixed(1)
        : x >= 0.01
          ? x.toFixed(2)
          : x.toPrecision(2);
const usd = (x) =>
  x === undefined || Number.isNaN(x)
    ? "—"
    : x >= 1
      ? `$${x.toFixed(2)}`
      : x >= 0.001
        ? `$${x.toFixed(3)}`
        : `$${x.toPrecision(2)}`;

/** Per-event operation counts from the measured run. */
export function perEvent(o) {
  const maint = o.maintenance.runs;
  const purged = sum(maint.map((r) => r.run.purge.deleted));
  const archived = sum(maint.map((r) => r.run.archive.rows));
  const bySql = (pred, field) =>
    sum(
      maint.flatMap((r) =>
        Object.entries(r.maintain.bySql)
          .filter(([k]) => pred(k))
          .map(([, v]) => v[field]),
      ),
    );
  // The purge: the uncounting roll-up (the only event_counts write of a maintenance run) and the DELETEs.
  const isPurge = (k) => /^(DELETE FROM "?events|INSERT INTO "?event_counts|DELETE FROM "?event_counts)/i.test(k);
  const purge = {
    rowsWritten: bySql(isPurge, "rowsWritten") / Math.max(1, purged),
    rowsRead: bySql(isPurge, "rowsRead") / Math.max(1, purged),
  };
  const archive = {
    rowsWritten: bySql((k) => !isPurge(k), "rowsWritten") / Math.max(1, archived),
    rowsRead: bySql((k) => !isPurge(k), "rowsRead") / Math.max(1, archived),
    puts: sum(maint.map((r) => r.r2.puts)) / Math.max(1, archived),
  };
  return o.loads.map((l) => {
    const ops = (limit) => sum(l.messageBytes.map((b) => 3 * Math.ceil(b / limit)));
    return {
      key: l.key,
      label: l.label,
      perRequest: l.perRequest,
      requests: l.requests / l.events,
      cpuMs: l.cpuRuntimeUs / 1000,
      cpuMsWithProxy: (l.cpuRuntimeUs + l.cpuProxyUs) / 1000,
      messages: l.messages / l.events,
      messageBytes: l.messageBytes.length ? sum(l.messageBytes) / l.messageBytes.length : 0,
      maxMessageBytes: Math.max(0, ...l.messageBytes),
      queueOps: ops(64_000) / l.events,
      queueOpsKiB: ops(65_536) / l.events,
      ingestRowsRead: l.fetch.rowsRead / l.events,
      ingestRowsWritten: l.fetch.rowsWritten / l.events,
      consumerRowsWritten: l.queue.rowsWritten / l.events,
      consumerRowsRead: l.queue.rowsRead / l.events,
      consumerStatements: l.queue.bySql,
      purgeRowsWritten: purge.rowsWritten,
      purgeRowsRead: purge.rowsRead,
      archiveRowsRead: archive.rowsRead,
      archiveRowsWritten: archive.rowsWritten,
    };
  });
}

/** $ per million events from per-event counts (no included amounts), item by item. */
export function dollars(e, s) {
  const P = PRICES;
  const M = 1e6;
  const items = {
    "Worker requests": (e.requests * M * P.workers.perMillionRequests) / M,
    "Worker CPU (local runtime figure, an upper bound)": (e.cpuMs * M * P.workers.perMillionCpuMs) / M,
    "Queue operations": (e.queueOps * M * P.queues.perMillionOps) / M,
    "D1 rows written (consumer + purge)":
      ((e.consumerRowsWritten + e.purgeRowsWritten + e.archiveRowsWritten) * M * P.d1.perMillionRowsWritten) / M,
    "D1 rows read (ingest, consumer, archive, purge)":
      ((e.ingestRowsRead + e.consumerRowsRead + e.archiveRowsRead + e.purgeRowsRead) * M * P.d1.perMillionRowsRead) / M,
    "D1 storage, 30 days in the hot window": s ? ((s.d1BytesPerEvent * M) / 1e9) * P.d1.perGbMonth : NaN,
    "R2 Class A (puts per 10,000 events)": s ? ((s.objectsPer10k / 10_000) * M * P.r2.perMillionClassA) / M : NaN,
    "R2 storage, per year kept": s ? ((s.r2BytesPerEvent * M) / 1e9) * P.r2.perGbMonth * 12 : NaN,
  };
  return { items, total: sum(Object.values(items).filter((x) => !Number.isNaN(x))) };
}

/**
 * A month of `events` at the published prices with the included amounts (Workers Paid): the $5 base,
 * then what exceeds each included amount. Fixed monthly terms: the cron's runs (every 5 min) each list
 * and rewrite the open archive block.
 */
export function monthly(e, s, events) {
  const P = PRICES;
  const over = (used, included) => Math.max(0, used - included);
  const runs = 30 * 24 * 12;
  const items = {
    "Workers Paid base": P.workers.baseMonthly,
    "Worker requests": (over(e.requests * events, P.workers.includedRequests) / 1e6) * P.workers.perMillionRequests,
    "Worker CPU": (over(e.cpuMs * events, P.workers.includedCpuMs) / 1e6) * P.workers.perMillionCpuMs,
    "Queue operations": (over(e.queueOps * events, P.queues.includedOps) / 1e6) * P.queues.perMillionOps,
    "D1 rows written":
      (over((e.consumerRowsWritten + e.purgeRowsWritten + e.archiveRowsWritten) * events, P.d1.includedRowsWritten) /
        1e6) *
      P.d1.perMillionRowsWritten,
    "D1 rows read":
      (over(
        (e.ingestRowsRead + e.consumerRowsRead + e.archiveRowsRead + e.purgeRowsRead) * events,
        P.d1.includedRowsRead,
      ) /
        1e6) *
      P.d1.perMillionRowsRead,
    "D1 storage (30-day window)": s ? over((s.d1BytesPerEvent * events) / 1e9, P.d1.includedGb) * P.d1.perGbMonth : NaN,
    "R2 Class A": s
      ? (over((s.objectsPer10k / 10_000) * events + runs * (s.idlePuts + s.idleLists), P.r2.includedClassA) / 1e6) *
        P.r2.perMillionClassA
      : NaN,
    "R2 storage (first month's events)": s
      ? over((s.r2BytesPerEvent * events) / 1e9, P.r2.includedGbMonth) * P.r2.perGbMonth
      : NaN,
  };
  return { items, total: sum(Object.values(items).filter((x) => !Number.isNaN(x))) };
}

export function render(o) {
  const out = [];
  const E = perEvent(o);
  const s = o.storage;
  out.push("#### Cost per event, counted (issue 8)");
  out.push("");
  out.push(`| per event | ${E.map((e) => e.label).join(" | ")} |`);
  out.push(`|---|${E.map(() => "---:").join("|")}|`);
  const row = (label, f) => out.push(`| ${label} | ${E.map(f).join(" | ")} |`);
  row("events counted", (e) => n0(o.loads.find((l) => l.key === e.key).events));
  row("Worker requests", (e) => n2(e.requests));
  row(
    "workerd CPU ms, Worker runtime (local: includes the local D1, Queue and consumer) / + wrangler's proxy",
    (e) => `${n2(e.cpuMs)} / ${n2(e.cpuMsWithProxy)}`,
  );
  row(
    "queue messages (mean / largest message, bytes of JSON)",
    (e) => `${n2(e.messages)} (${n0(e.messageBytes)} / ${n0(e.maxMessageBytes)})`,
  );
  row(
    "queue operations (3 per message per started 64 KB; with 64 KiB)",
    (e) => `${n2(e.queueOps)} (${n2(e.queueOpsKiB)})`,
  );
  row("D1 rows read, ingest (key lookups, cached per isolate)", (e) => n2(e.ingestRowsRead));
  row("D1 rows written, consumer's batch (events, indexes, roll-ups, mark)", (e) => n2(e.consumerRowsWritten));
  row("D1 rows read, consumer's batch", (e) => n2(e.consumerRowsRead));
  row("D1 rows read / written, archive run", (e) => `${n2(e.archiveRowsRead)} / ${n2(e.archiveRowsWritten)}`);
  row("D1 rows read / written, retention purge", (e) => `${n2(e.purgeRowsRead)} / ${n2(e.purgeRowsWritten)}`);
  if (s) {
    row(`R2 Class A (puts; ${s.archiveApps} applications, events ${s.archiveRate}/s apart)`, () =>
      n2(s.objectsPer10k / 10_000),
    );
    row(
      "D1 bytes (file after the consumer) / R2 bytes (gzip NDJSON)",
      () => `${n0(s.d1BytesPerEvent)} / ${n0(s.r2BytesPerEvent)}`,
    );
  }
  out.push("");
  const q = o.queryPages;
  if (q) {
    out.push(
      `A query page (${q.source}): offset page 1 with its count reads ${n0(q.offset.rowsReadList + q.offset.rowsReadCount)} rows (${usd((q.offset.rowsReadList + q.offset.rowsReadCount) * PRICES.d1.perMillionRowsRead)} per million pages), ` +
        `a cursor page ${n0(q.cursor.rowsReadList)} rows, category + 1-day range ${n0(q.offsetRange.rowsReadList + q.offsetRange.rowsReadCount)} rows.`,
    );
    out.push("");
  }
  out.push(`$ per million events at the published prices, no included amounts (sources: bench/prices.mjs):`);
  out.push("");
  const D = E.map((e) => dollars(e, s));
  out.push(`| item | ${E.map((e) => e.label).join(" | ")} |`);
  out.push(`|---|${E.map(() => "---:").join("|")}|`);
  for (const k of Object.keys(D[0].items)) out.push(`| ${k} | ${D.map((d) => usd(d.items[k])).join(" | ")} |`);
  out.push(`| **total per million events** | ${D.map((d) => `**${usd(d.total)}**`).join(" | ")} |`);
  out.push("");
  const MONTH = 10_000_000;
  const Mo = E.map((e) => monthly(e, s, MONTH));
  out.push(`A month of ${n0(MONTH)} events with the included amounts (Workers Paid):`);
  out.push("");
  out.push(`| item | ${E.map((e) => e.label).join(" | ")} |`);
  out.push(`|---|${E.map(() => "---:").join("|")}|`);
  for (const k of Object.keys(Mo[0].items)) out.push(`| ${k} | ${Mo.map((d) => usd(d.items[k])).join(" | ")} |`);
  out.push(
    `| **total for the month** (per million) | ${Mo.map((d) => `**${usd(d.total)}** (${usd(d.total / (MONTH / 1e6))})`).join(" | ")} |`,
  );
  out.push("");
  out.push(
    `For comparison, published per-event prices: PostHog ${THIRD_PARTY.posthog.note}; Segment ${THIRD_PARTY.segment.note}; Amplitude ${THIRD_PARTY.amplitude.note}.`,
  );
  out.push("");
  return out;
}
