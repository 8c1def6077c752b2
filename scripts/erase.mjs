#!/usr/bin/env node
// Operator CLI for erasure (GDPR/CCPA): records a request to erase a session's events, or a list
// of event ids, of one application, and shows how far each has got. It only writes the request
// (`wrangler d1 execute`, no admin endpoint on the Worker); the Worker's scheduled maintenance
// carries it out from D1, the roll-ups and the R2 archive in bounded steps (src/maintain/erasure.ts).
import { d1, flag, now, quote, run, target } from "./d1.mjs";

const USAGE = `usage: npm run erase -- <command> [--env production|staging]
  session <app_id> <session_id> [--from <time>] [--to <time>]
                               erase every event of the session
  events <app_id> <event_id>[,<event_id>…] …
                               erase these events (at most ${1000} ids per request)
  status [<id>]                every request (newest first), or one with what D1 still holds of it
--from/--to (UTC, e.g. 2026-11-01 or 2026-11-01T05:00:00Z) bound the archive partitions read for events
that D1 no longer holds; without them the window comes from the events D1 still holds (README, Erasure).
where: the local database (default); --env production or --env staging: that deployed environment's
(--remote alone: production)`;

const MAX_IDS = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RUN_HINT = target.remote
  ? `${target.label}'s maintenance carries it out on its next cron run (every 5 minutes)`
  : "run it now under `npm run dev`: curl 'http://localhost:8787/__scheduled?cron=*/5+*+*+*+*'";

/** A UTC time or date as microseconds (a date alone: its first microsecond, or its last with `end`). */
function micros(value, end) {
  if (value === undefined) return undefined;
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const ms = Date.parse(dateOnly ? `${value}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(value) ? value : `${value}Z`);
  if (Number.isNaN(ms)) throw new Error(`not a time: ${value}`);
  return ms * 1000 + (dateOnly && end ? 86_400_000_000 - 1 : 0);
}

function requireApp(appId) {
  if (!appId) throw new Error("an application id is required");
  if (d1(`SELECT id FROM applications WHERE id = ${quote(appId)}`).length === 0)
    throw new Error(`no application ${appId}`);
}

function record(appId, kind, erased, args) {
  const from = micros(flag(args, "--from"), false);
  const to = micros(flag(args, "--to"), true);
  if ((from === undefined) !== (to === undefined)) throw new Error("--from and --to go together");
  if (from !== undefined && from > to) throw new Error("--from is after --to");
  const window = from === undefined ? "NULL, NULL, NULL" : `${from}, ${to}, 'operator'`;
  const [row] = d1(
    `INSERT INTO erasures (app_id, kind, target, requested_at, scan_after, scan_before, scan_basis) ` +
      `VALUES (${quote(appId)}, ${quote(kind)}, ${quote(erased)}, ${now()}, ${window}) RETURNING id`,
  );
  console.log(
    `erasure ${row.id} recorded (pending); ${RUN_HINT}.\ncheck it: npm run erase -- status ${row.id}${target.flags}`,
  );
}

/** What D1 still holds of a request, over every generation's table: 0 once it is done (and no event of it arrived since). */
function leftInD1(e) {
  const app = `(SELECT num FROM applications WHERE id = ${quote(e.app_id)})`;
  const match =
    e.kind === "session"
      ? `session = (SELECT num FROM sessions WHERE app = ${app} AND session_id = ${quote(e.target)})`
      : `event_id IN (SELECT unhex(replace(value, '-', '')) FROM json_each(${quote(e.target)})) AND app = ${app}`;
  const tables = d1("SELECT gen FROM generations ORDER BY gen").map(({ gen }) =>
    gen < 0 ? `events_gm${-gen}` : `events_g${gen}`,
  );
  if (tables.length === 0) return 0;
  const counts = tables.map((t) => `SELECT count(*) AS n FROM ${t} WHERE ${match}`).join(" UNION ALL ");
  return d1(`SELECT coalesce(sum(n), 0) AS n FROM (${counts})`)[0].n;
}

const time = (us) => (us === null ? null : new Date(Math.floor(us / 1000)).toISOString());

await run(
  {
    session([appId, sessionId], args) {
      requireApp(appId);
      if (!sessionId) throw new Error("a session id is required");
      record(appId, "session", sessionId, args);
    },
    events([appId, ...lists], args) {
      requireApp(appId);
      const ids = [
        ...new Set(
          lists
            .flatMap((l) => l.split(","))
            .map((s) => s.trim().toLowerCase())
            .filter(Boolean),
        ),
      ];
      if (ids.length === 0) throw new Error("at least one event id is required");
      if (ids.length > MAX_IDS)
        throw new Error(`at most ${MAX_IDS} event ids per request (got ${ids.length}); split them`);
      const bad = ids.find((id) => !UUID.test(id));
      if (bad) throw new Error(`not an event id (a UUID): ${bad}`);
      record(appId, "events", JSON.stringify(ids), args);
    },
    status([id]) {
      if (id === undefined) {
        const rows = d1(
          `SELECT id, app_id, kind, status, step, requested_at, finished_at, d1_events, counted_events, archive_objects_read, ` +
            `archive_objects_rewritten, archive_events FROM erasures ORDER BY id DESC LIMIT 100`,
        );
        console.table(
          rows.map((r) => ({ ...r, requested_at: time(r.requested_at), finished_at: time(r.finished_at) })),
        );
        return;
      }
      if (!/^\d+$/.test(id)) throw new Error(`not an erasure id: ${id}`);
      const [e] = d1(`SELECT * FROM erasures WHERE id = ${id}`);
      if (!e) throw new Error(`no erasure ${id}`);
      const left = leftInD1(e);
      console.log(
        JSON.stringify(
          {
            ...e,
            target: e.kind === "events" ? JSON.parse(e.target) : e.target,
            requested_at: time(e.requested_at),
            started_at: time(e.started_at),
            finished_at: time(e.finished_at),
            scan_after: time(e.scan_after),
            scan_before: time(e.scan_before),
            left_in_d1: left,
          },
          null,
          2,
        ),
      );
      if (e.status === "done" && left > 0)
        console.log(`${left} event(s) of it reached D1 after it ran: record it again to erase them`);
    },
  },
  USAGE,
  ["--from", "--to"],
);
