// Reads through D1's Sessions API: every GET answers with the session's bookmark, and a client
// that sends it back reads a state at least that new.
import { describe, expect, it } from "vitest";
import { api, makeEvent, postEvents, waitForCount } from "../helpers/api";

describe("X-D1-Bookmark", () => {
  it("comes back on every read route, and a bookmark sent back is honoured", async () => {
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
      expect(bookmark, path).toMatch(/^[0-9a-f]+(-[0-9a-f]+)*$/i);
      await res.arrayBuffer();
      const again = await api(path, { headers: { "x-d1-bookmark": bookmark! } });
      expect(again.status, path).toBe(200);
      expect(again.headers.get("x-d1-bookmark"), path).toBeTruthy();
      await again.arrayBuffer();
    }
  });

  it("refuses a malformed bookmark with 400 naming the header", async () => {
    for (const bookmark of ["not a bookmark", "'; DROP TABLE events; --", "x".repeat(500)]) {
      const res = await api("/api/event/?limit=1", { headers: { "x-d1-bookmark": bookmark } });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { message: string };
      expect(body.message).toMatch(/X-D1-Bookmark/);
      expect(body.message.length).toBeLessThan(200);
    }
  });
});
