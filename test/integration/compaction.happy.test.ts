// Compaction (issue 17): a partition's small objects merged into one, swapped in with one D1
// transaction so the manifest never lists an event twice or not at all; the replaced objects stay in
// R2 for the grace period, then go (their manifest rows days later); a compaction a run stopped after
// recording is finished by the next run, or given up when an erasure changed one of its inputs.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { insertAll, type NewContextEventRow } from "../../src/db/event-insert";
import { FORGET_MS, GRACE_MS, MIN_OBJECTS } from "../../src/maintain/compaction";
import { eraseDue } from "../../src/maintain/erasure";
import { maintain } from "../../src/maintain/scheduled";
import { DAY } from "../../src/shared/timestamp";
import { makeApp } from "../helpers/api";
import { liveEvents, manifest, meteredBucket, r2Keys } from "../helpers/archive";

const db = drizzle(env.DB);
const NOW = Date.now();

let serial = 0;
function event(app: number, overrides: Partial<NewContextEventRow> = {}): NewContextEventRow {
  serial += 1;
  return {
    eventId: crypto.randomUUID(),
    sessionId: `compaction-${serial % 5}`,
    category: "compaction",
    name: `n${serial % 3}`,
    data: JSON.stringify({ serial }),
    timestamp: NOW * 1000,
    receivedAt: NOW * 1000,
    app,
    ...overrides,
  };
}

/** A clock the test moves: the maintenance's notion of now (and of today). */
function clock() {
  let t = NOW;
  const now = () => t;
  return { now, advance: (ms: number) => (t += ms) };
}

/** The application's events in the live objects: each exactly once, and exactly the ones expected. */
async function expectLiveOnce(appId: string, expected: NewContextEventRow[]) {
  const { rows, copies } = await liveEvents(`events/app_id=${appId}/`);
  for (const [seq, n] of copies) expect(n, `event ${seq}`).toBe(1);
  expect(rows.map((r) => r.event.eventId).sort()).toEqual(expected.map((e) => e.eventId).sort());
}

const ofApp = async (appId: string) => (await manifest()).filter((o) => o.app === appId);

describe("compaction", () => {
  it(`merges today's small objects once there are ${MIN_OBJECTS}, never listing an event twice or not at all; the replaced ones go after the grace`, async () => {
    const app = await makeApp();
    const time = clock();
    const env_ = { ...env, HOT_DAYS: "100000" };
    const sent: NewContextEventRow[] = [];
    for (let i = 0; i < MIN_OBJECTS - 1; i++) {
      const e = event(app.num, { timestamp: NOW * 1000 - i });
      sent.push(e);
      await insertAll(db, [e, event(0)]);
      await maintain(env_, time.now);
    }
    expect((await ofApp(app.appId)).map((o) => o.state)).toEqual(Array(MIN_OBJECTS - 1).fill("live"));

    // The twelfth: while the compaction's output is being written, the manifest still lists its inputs alone.
    const last = event(app.num);
    sent.push(last);
    await insertAll(db, [last, event(0)]);
    let during: Awaited<ReturnType<typeof manifest>> = [];
    const watching = new Proxy(env.ARCHIVE, {
      get(target, prop) {
        if (prop !== "put") {
          const value = Reflect.get(target, prop) as unknown;
          return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        }
        return async (...args: Parameters<R2Bucket["put"]>) => {
          const out = await target.put(...args);
          if (String(args[0]).includes("-c")) {
            during = await ofApp(app.appId);
            await expectLiveOnce(app.appId, sent);
          }
          return out;
        };
      },
    });
    const run = await maintain({ ...env_, ARCHIVE: watching }, time.now);
    expect(run.compact.compactions).toBeGreaterThanOrEqual(1);
    expect(during.filter((o) => o.state === "live")).toHaveLength(MIN_OBJECTS);
    expect(during.filter((o) => o.state === "pending").map((o) => o.origin)).toEqual(["compaction"]);
    await expectLiveOnce(app.appId, sent);
    const after = await ofApp(app.appId);
    expect(after.filter((o) => o.state === "live").map((o) => o.origin)).toEqual(["compaction"]);
    expect(after.filter((o) => o.state === "retired")).toHaveLength(MIN_OBJECTS);
    // A reader globbing R2 sees the inputs and the output (each event twice) until the grace ends.
    expect(await r2Keys(`events/app_id=${app.appId}/`)).toHaveLength(MIN_OBJECTS + 1);

    time.advance(GRACE_MS + 1000);
    expect((await maintain(env_, time.now)).compact.deleted).toBeGreaterThanOrEqual(MIN_OBJECTS);
    expect(await r2Keys(`events/app_id=${app.appId}/`)).toHaveLength(1);
    expect((await ofApp(app.appId)).filter((o) => o.state === "gone")).toHaveLength(MIN_OBJECTS);
    time.advance(FORGET_MS);
    expect((await maintain(env_, time.now)).compact.forgotten).toBeGreaterThanOrEqual(MIN_OBJECTS);
    expect((await ofApp(app.appId)).map((o) => o.state)).toEqual(["live"]);
    await expectLiveOnce(app.appId, sent);
  });

  it("merges an earlier date's objects as soon as there are two", async () => {
    const app = await makeApp();
    const day = NOW * 1000 - 3 * DAY;
    const sent = [event(app.num, { timestamp: day }), event(app.num, { timestamp: day + 1 })];
    await insertAll(db, [sent[0]!, event(0)]);
    await maintain(env);
    expect((await ofApp(app.appId)).map((o) => o.origin)).toEqual(["range"]);
    await insertAll(db, [sent[1]!, event(0)]);
    const run = await maintain(env);
    expect(run.compact.compactions).toBeGreaterThanOrEqual(1);
    expect((await ofApp(app.appId)).filter((o) => o.state === "live").map((o) => o.origin)).toEqual(["compaction"]);
    await expectLiveOnce(app.appId, sent);
  });

  it("finishes a compaction that a run stopped after writing its output, and gives one up when an erasure rewrote an input", async () => {
    const app = await makeApp();
    const day = NOW * 1000 - 4 * DAY;
    const erased = `erased-${crypto.randomUUID()}`;
    const sent = [
      event(app.num, { timestamp: day }),
      event(app.num, { timestamp: day + 1, sessionId: erased }),
      event(app.num, { timestamp: day + 2 }),
    ];
    await insertAll(db, [sent[0]!, sent[1]!, event(0)]);
    await maintain(env);
    await insertAll(db, [sent[2]!, event(0)]);
    // The output lands, then the run is gone before the swap.
    const { bucket } = meteredBucket(env.ARCHIVE, (key) => (key.includes("-c") ? "after" : undefined));
    expect(String(await maintain({ ...env, ARCHIVE: bucket }).catch((err: unknown) => err))).toMatch(/isolate gone/);
    const pending = (await ofApp(app.appId)).filter((o) => o.state === "pending");
    expect(pending.map((o) => o.origin)).toEqual(["compaction"]);
    await expectLiveOnce(app.appId, sent);

    // An erasure before the next run's compaction step: the compaction is given up (its output deleted), then made again.
    const { id } = (await env.DB.prepare(
      "INSERT INTO erasures (app_id, kind, target, requested_at) VALUES (?, 'session', ?, 0) RETURNING id",
    )
      .bind(app.appId, erased)
      .first<{ id: number }>())!;
    await eraseDue(db, env.ARCHIVE, { deadline: Date.now() + 20_000 });
    expect(await env.DB.prepare("SELECT status FROM erasures WHERE id = ?").bind(id).first("status")).toBe("done");
    expect(await env.ARCHIVE.head(pending[0]!.key)).toBeNull();
    expect((await ofApp(app.appId)).some((o) => o.key === pending[0]!.key)).toBe(false);
    await maintain(env);
    const live = (await ofApp(app.appId)).filter((o) => o.state === "live");
    expect(live.map((o) => o.origin)).toEqual(["compaction"]);
    await expectLiveOnce(app.appId, [sent[0]!, sent[2]!]);
  });

  it("finishes a recorded compaction on the next run when nothing changed", async () => {
    const app = await makeApp();
    const day = NOW * 1000 - 5 * DAY;
    const sent = [event(app.num, { timestamp: day }), event(app.num, { timestamp: day + 1 })];
    await insertAll(db, [sent[0]!, event(0)]);
    await maintain(env);
    await insertAll(db, [sent[1]!, event(0)]);
    const { bucket } = meteredBucket(env.ARCHIVE, (key) => (key.includes("-c") ? "before" : undefined));
    await maintain({ ...env, ARCHIVE: bucket }).catch(() => undefined);
    expect((await ofApp(app.appId)).filter((o) => o.state === "pending")).toHaveLength(1);
    const run = await maintain(env);
    expect(run.compact.compactions).toBeGreaterThanOrEqual(1);
    expect((await ofApp(app.appId)).filter((o) => o.state === "live").map((o) => o.origin)).toEqual(["compaction"]);
    await expectLiveOnce(app.appId, sent);
  });
});
