// The original README's examples, verbatim, against this Worker.
import { expect, it } from "vitest";
import { api, postEvents, README_EVENT, waitForCount } from "../helpers/api";

it("accepts the README's event and returns it from the README's query", async () => {
  const res = await postEvents(README_EVENT);
  expect(res.status).toBe(202);
  expect(await res.json()).toEqual({ success: true, accepted: 1 });

  const path =
    "/api/event/?timestamp_after=2021-01-01&timestamp_before=2021-01-02&session_id=e2085be5-9137-4e4e-80b5-f1ffddc25423";
  const page = await waitForCount(path, 1);
  expect(page.next).toBeNull();
  expect(page.previous).toBeNull();
  const [result] = page.results;
  expect(Object.keys(result!).slice(0, 5)).toEqual(["session_id", "timestamp", "category", "name", "data"]);
  expect(result).toMatchObject({ ...README_EVENT, timestamp: "2021-01-01T09:15:27.243860Z" });
  const res2 = await api(path);
  expect(res2.headers.get("content-type")).toMatch(/^application\/json/);
});
