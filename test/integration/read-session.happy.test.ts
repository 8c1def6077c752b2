// Reads through D1's Sessions API: every GET answers with the session's bookmark, and a client
// that sends it back reads a state at least that new. D1's bookmarks sort lexically in the order
// of the states they name, so "at least that new" is a string comparison.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { api, BASE, DEV_READ_KEY, makeEvent, postEvents, waitForCount } from "../helpers/api";

const BOOKMARK = /^[0-9a-f]+(-[0-9a-f]+)*$/i;

/** The app under test on env.DB wrapped to record what each request's D1 session was started from. */
async function recordingSessions(path: string, headers: Record<string, string> = {}) {
  const startedFrom: unknown[] = [];
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "withSession")
        return (constraint?: string) => {
          startedFrom.push(constraint);
          return target.withSession(constraint);
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const ctx = createExecutionContext();
  const res = await createApp().fetch(
    new Request(`${BASE}${path}`, { headers: { authorization: `Bearer ${DEV_READ_KEY}`, ...headers } }),
    { ...env, DB },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { res, startedFrom };
}

describe("X-D1-Bookmark", () => {
  it("comes back on every read route, and a bookmark sent back yields one at least as new", async () => {
    const event = makeEvent();
    expect((await postEvents(event)).status).toBe(202);
    await waitForCount(`/api/event/?session_id=${event.session_id as string}`, 1);
    for (const path of [
      "/api/event/?limit=1",
      `/api/sessions/${event.session_id as string}/events`,
      "/api/errors/?limit=1",
      "/api/health",
      "/api/export?timestamp_after=2021-01-01&timestamp_before=2021-01-02",
    ]) {
      const res = await api(path);
      expect(res.status, path).toBe(200);
      const bookmark = res.headers.get("x-d1-bookmark");
      expect(bookmark, path).toMatch(BOOKMARK);
      await res.arrayBuffer();
      const again = await api(path, { headers: { "x-d1-bookmark": bookmark! } });
      expect(again.status, path).toBe(200);
      const next = again.headers.get("x-d1-bookmark");
      expect(next, path).toMatch(BOOKMARK);
      expect(next! >= bookmark!, `${path}: ${next} is older than ${bookmark}`).toBe(true);
      await again.arrayBuffer();
    }
  });

  it("starts the request's D1 session from the bookmark sent, and moves on as the database does", async () => {
    const before = await api("/api/event/?limit=1");
    const old = before.headers.get("x-d1-bookmark")!;
    await before.arrayBuffer();
    // A write lands (through the queue) after that bookmark was issued.
    const event = makeEvent();
    expect((await postEvents(event)).status).toBe(202);
    await waitForCount(`/api/event/?session_id=${event.session_id as string}`, 1);

    const { res, startedFrom } = await recordingSessions("/api/event/?limit=1", { "x-d1-bookmark": old });
    expect(res.status).toBe(200);
    expect(startedFrom).toEqual([old]);
    const reached = res.headers.get("x-d1-bookmark")!;
    expect(reached > old, `${reached} is not newer than ${old}, issued before a write`).toBe(true);
    // Without a bookmark the session may start on any replica.
    const fresh = await recordingSessions("/api/event/?limit=1");
    expect(fresh.startedFrom).toEqual(["first-unconstrained"]);
  });

  it("refuses a malformed bookmark with 400 naming the header, before D1 sees it", async () => {
    for (const bookmark of ["not a bookmark", "'; DROP TABLE events; --", "x".repeat(500)]) {
      const { res, startedFrom } = await recordingSessions("/api/event/?limit=1", { "x-d1-bookmark": bookmark });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: string; message: string; errors: { field: string }[] };
      expect(body.code).toBe("bad_request");
      expect(body.errors.map((e) => e.field)).toEqual(["X-D1-Bookmark"]);
      expect(body.message).toMatch(/X-D1-Bookmark/);
      expect(body.message.length).toBeLessThan(200);
      expect(startedFrom).toEqual([]);
    }
  });
});
