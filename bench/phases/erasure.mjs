// Phase `erasure` (issue 11): how long erasing one session takes when its events lie in 24 archive
// partitions (24 hours of one application), the older half purged from D1 (in R2 only). The probe's
// real queue() stores events of 4 applications over the 24 hours around the hot window's edge, with
// the sessions' events among them (2 an hour each); its real maintenance archives and purges them;
// then each request is recorded as `npm run erase` records it and the maintenance's erasure step
// (src/maintain/erasure.ts) runs until it is done: with the cron's 20 s budget, with 250 ms budgets (so it
// stops and resumes), and the first request again (nothing left to erase).

import { rmSync } from "node:fs";
import path from "node:path";
import { devCommand, prepareLocal, Server, STATE, writeProbeConfig } from "../lib/servers.mjs";
import { APPS } from "./storage.mjs";

export const budgetMinutes = () => 3;
const HOUR = 3_600_000_000;
const DAY = 24 * HOUR;

/** The messages of one consumer batch per 5,000 events, 250 events per message, one application each. */
function batchesOf(events) {
  const batches = [];
  for (let b = 0; b < events.length; b += 5000) {
    const byApp = new Map();
    for (const e of events.slice(b, b + 5000)) {
      if (!byApp.has(e.app)) byApp.set(e.app, []);
      byApp.get(e.app).push(e.event);
    }
    const messages = [];
    for (const [app, list] of byApp) {
      for (let i = 0; i < list.length; i += 250)
        messages.push({ kind: "events", app, received_at: Date.now() * 1000, events: list.slice(i, i + 250) });
    }
    batches.push(messages);
  }
  return batches;
}

/** `n` events over the 24 hours from `start`, in time order, with each session's 2 events an hour among them. */
function dataset(n, start, sessions) {
  const out = [];
  const event = (session_id, timestamp, i) => ({
    event_id: crypto.randomUUID(),
    session_id,
    category: ["page interaction", "navigation", "form"][i % 3],
    name: ["cta click", "page view", "submit", "scroll"][i % 4],
    data: `{"host":"www.xxxxx.com","path":"/p/${i % 500}"}`,
    timestamp,
  });
  for (let i = 0; i < n; i++) {
    const timestamp = start + Math.floor((i * DAY) / n);
    out.push({ app: APPS[i % APPS.length], event: event(crypto.randomUUID(), timestamp, i) });
  }
  for (const [s, session] of sessions.entries()) {
    for (let h = 0; h < 24; h++) {
      for (const k of [0, 1])
        out.push({ app: APPS[0], event: event(session, start + h * HOUR + (17 + 20 * k + s) * 60_000_000, h) });
    }
  }
  return out.sort((a, b) => a.event.timestamp - b.event.timestamp);
}

export async function run(ctx) {
  const { quick, log } = ctx;
  const n = quick ? 20_000 : 100_000;
  const config = writeProbeConfig();
  const persist = path.join(STATE, "erasure-probe");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config });
  const probe = await Server.start("erasure-probe", { persist, config, argv: devCommand() });
  const call = async (p, init = {}) => {
    const res = await fetch(`${probe.url}${p}`, { method: "POST", ...init });
    const o = await res.json();
    if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(o)}`);
    return o;
  };
  try {
    // The 24 hours around the hot window's edge (HOT_DAYS 30): the older 12 are purged once archived.
    const start = Math.floor((Date.now() * 1000 - 30 * DAY) / HOUR) * HOUR - 12 * HOUR;
    const sessions = [crypto.randomUUID(), crypto.randomUUID()];
    log(
      `erasure: ${n} events of ${APPS.length} applications over 24 hours around the hot window's edge, 2 sessions of 48 events in 24 hours each`,
    );
    for (const messages of batchesOf(dataset(n, start, sessions))) {
      await call("/__bench/consume?variant=real", {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages }),
      });
    }
    for (let i = 0; i < 20; i++) {
      const { run } = await call("/__bench/maintain");
      if (run.archive.done && run.purge.done) break;
    }
    const objects = (await call("/__bench/archive", { method: "GET" })).objects;
    const appObjects = objects.filter((o) => o.key.startsWith(`events/app_id=${APPS[0]}/`));

    /** Records a request, then runs the erasure step with `budget` until it is done: time, runs, what the bindings did. */
    const erase = async (label, session, budget) => {
      const { id } = await call("/__bench/erase", {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ app: APPS[0], kind: "session", target: session }),
      });
      await call("/__bench/meter?on=1");
      const t0 = performance.now();
      let runs = 0;
      let last;
      for (; runs < 500; ) {
        runs++;
        last = await call(`/__bench/erase-due?budget_ms=${budget}`);
        if (last.run.done) break;
      }
      const seconds = (performance.now() - t0) / 1000;
      await call("/__bench/meter?on=0");
      const audit = await call(`/__bench/erasure?id=${id}`, { method: "GET" });
      log(`erasure: ${label}: ${runs} run(s), ${seconds.toFixed(2)} s, ${JSON.stringify(audit)}`);
      return {
        label,
        budget,
        runs,
        seconds,
        audit,
        r2: last.meter.r2,
        d1: {
          statements: last.meter.maintain.statements,
          rowsRead: last.meter.maintain.rowsRead,
          rowsWritten: last.meter.maintain.rowsWritten,
        },
      };
    };
    const results = [
      await erase("a session, the cron's budget", sessions[0], 20_000),
      await erase("another session, 250 ms budgets", sessions[1], 250),
      await erase("the first session again", sessions[0], 20_000),
    ];
    return { events: n, apps: APPS.length, objects: objects.length, appObjects: appObjects.length, results };
  } finally {
    await probe.stop();
  }
}

export function render(r) {
  const lines = [
    "",
    `### Erasure (issue 11)`,
    "",
    `${r.events.toLocaleString("en")} events of ${r.apps} applications over 24 hours around the hot window's edge, stored by the probe's real queue(),`,
    `archived and purged by its real maintenance: ${r.objects} archive objects, ${r.appObjects} of the sessions' application. Each session has 48`,
    "events in 24 hours (24 partitions), the older 12 hours' purged from D1 (in R2 only). Time from the first step to done, through the probe:",
    "",
    "| request | budget per run | runs | seconds | D1 rows deleted (counted) | archive objects read / rewritten | events removed | window | R2 gets / puts / deletes / lists | D1 rows read / written |",
    "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
  ];
  for (const x of r.results) {
    const a = x.audit;
    lines.push(
      `| ${x.label} | ${x.budget} ms | ${x.runs} | ${x.seconds.toFixed(2)} | ${a.d1_events} (${a.counted_events}) | ${a.archive_objects_read} / ${a.archive_objects_rewritten} | ${a.archive_events} | ${a.scan_basis === "all" ? "all: every object of the application" : `${a.scan_basis}, ${((a.scan_before - a.scan_after) / HOUR).toFixed(1)} h`} | ${x.r2.gets} / ${x.r2.puts} / ${x.r2.deletes} / ${x.r2.lists} | ${x.d1.rowsRead.toLocaleString("en")} / ${x.d1.rowsWritten.toLocaleString("en")} |`,
    );
  }
  return lines;
}
