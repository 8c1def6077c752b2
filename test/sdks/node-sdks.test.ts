// The real server-side SDKs, unmodified, from the registry (devDependencies), with only their host
// pointed at The Eye under `wrangler dev`: @segment/analytics-node (POST /v1/batch, Basic auth) and
// posthog-node (POST /batch/, gzip). Each call is stored once and found by its session and name
// through GET /api/event/; an answer lost on the way back (test/helpers/fault-server.ts) makes the
// SDK send the batch again, and it is still stored once.
import { Analytics } from "@segment/analytics-node";
import { PostHog } from "posthog-node";
import { afterEach, describe, expect, it } from "vitest";
import { type FaultServer, faultServer } from "../helpers/fault-server";
import { eyeUrl, WRITE_KEY, waitForNames } from "./helpers";

let proxy: FaultServer | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

const tag = () => crypto.randomUUID().slice(0, 8);

describe("@segment/analytics-node", () => {
  it("sends every call type to /v1/batch; each is stored once, found by session and name, without the IP address", async () => {
    const userId = `seg-node-${tag()}`;
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: eyeUrl() });
    const failures: unknown[] = [];
    analytics.on("error", (e) => failures.push(e));
    analytics.track({ userId, event: "Order Completed", properties: { revenue: 9.5 }, context: { ip: "203.0.113.7" } });
    analytics.identify({ userId, traits: { plan: "pro" } });
    analytics.page({ userId, name: "Pricing", properties: { path: "/pricing" } });
    analytics.screen({ userId, name: "Home" });
    analytics.group({ userId, groupId: "acme", traits: { name: "Acme" } });
    analytics.alias({ userId, previousId: `anon-${userId}` });
    await analytics.closeAndFlush();
    expect(failures).toEqual([]);

    const byName = await waitForNames(userId, ["Order Completed", "identify", "Pricing", "Home", "group", "alias"]);
    for (const [name, events] of byName) expect(events, name).toHaveLength(1);
    const order = byName.get("Order Completed")![0]!;
    expect(order).toMatchObject({ category: "track", data: { properties: { revenue: 9.5 }, userId } });
    expect(byName.get("identify")![0]).toMatchObject({ category: "identify", data: { traits: { plan: "pro" } } });
    expect(byName.get("Pricing")![0]!.category).toBe("page");
    expect(JSON.stringify([...byName.values()])).not.toContain("203.0.113.7");
  });

  it("sends a batch again when its answer is lost, and the batch is stored once", async () => {
    proxy = await faultServer(eyeUrl(), ["forward-then-drop"]);
    const userId = `seg-node-retry-${tag()}`;
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: proxy.url });
    analytics.track({ userId, event: "Paid", properties: { n: 1 } });
    analytics.track({ userId, event: "Shipped", properties: { n: 2 } });
    await analytics.closeAndFlush();

    const posts = proxy.requests.filter((r) => r.method === "POST");
    expect(posts.map((r) => r.url)).toEqual(["/v1/batch", "/v1/batch"]);
    expect(posts[0]!.upstream?.status).toBe(200); // The Eye took it; only the answer was lost
    expect(posts[1]!.headers["x-retry-count"]).toBe("1");
    const byName = await waitForNames(userId, ["Paid", "Shipped"]);
    expect(byName.get("Paid")).toHaveLength(1);
    expect(byName.get("Shipped")).toHaveLength(1);
  });
});

describe("posthog-node", () => {
  it("sends captures, identify, alias and group identify to /batch/ (gzip); each is stored once, found by session and name", async () => {
    const distinctId = `ph-node-${tag()}`;
    const posthog = new PostHog(WRITE_KEY, { host: eyeUrl() });
    const failures: unknown[] = [];
    posthog.on("error", (e) => failures.push(e));
    posthog.capture({ distinctId, event: "order placed", properties: { revenue: 9.5, $ip: "203.0.113.8" } });
    posthog.identify({ distinctId, properties: { email: "a@b.c" } });
    posthog.alias({ distinctId, alias: `anon-${distinctId}` });
    const groupKey = `acme-${tag()}`;
    posthog.groupIdentify({ groupType: "company", groupKey, properties: { name: "Acme" } });
    await posthog.shutdown();
    expect(failures).toEqual([]);

    const byName = await waitForNames(distinctId, ["order placed", "$identify", "$create_alias"]);
    for (const [name, events] of byName) expect(events, name).toHaveLength(1);
    expect(byName.get("order placed")![0]).toMatchObject({
      category: "track",
      data: { properties: { revenue: 9.5, $lib: "posthog-node" }, distinct_id: distinctId },
    });
    expect(byName.get("$identify")![0]!.category).toBe("identify");
    expect(byName.get("$create_alias")![0]!.category).toBe("alias");
    expect(JSON.stringify([...byName.values()])).not.toContain("203.0.113.8");
    // A group identify's distinct_id is the group's own ($company_<key>): its session.
    const group = await waitForNames(`$company_${groupKey}`, ["$groupidentify"], { settleMs: 0 });
    expect(group.get("$groupidentify")![0]).toMatchObject({ category: "group" });
  });

  it("sends a batch again when its answer is lost, and the batch is stored once", async () => {
    proxy = await faultServer(eyeUrl(), ["forward-then-drop"]);
    const distinctId = `ph-node-retry-${tag()}`;
    const posthog = new PostHog(WRITE_KEY, { host: proxy.url });
    posthog.capture({ distinctId, event: "paid" });
    posthog.capture({ distinctId, event: "shipped" });
    await posthog.shutdown();

    const posts = proxy.requests.filter((r) => r.method === "POST");
    expect(posts.map((r) => r.url)).toEqual(["/batch/", "/batch/"]);
    expect(posts[0]!.headers["content-encoding"]).toBe("gzip");
    expect(posts[0]!.upstream?.status).toBe(200);
    const byName = await waitForNames(distinctId, ["paid", "shipped"]);
    expect(byName.get("paid")).toHaveLength(1);
    expect(byName.get("shipped")).toHaveLength(1);
  });
});
