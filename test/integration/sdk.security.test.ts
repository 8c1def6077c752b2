// The SDK routes from an attacker's side (issue 19): the write key wherever an SDK carries it is
// checked like any write key (unknown 401, read key 403, origins, the failed-key and write limits),
// two different keys in one request are refused, and neither a key nor an IP address is stored.
import { describe, expect, it } from "vitest";
import { api, bearer, DEV_READ_KEY, DEV_WRITE_KEY, freshLimiterWindow, makeApp } from "../helpers/api";
import { expectError } from "../helpers/hostile";
import { basic, sdkPost } from "../helpers/sdk";

const track = (extra: Record<string, unknown> = {}) => ({ anonymousId: "a", event: "e", ...extra });
const capture = (extra: Record<string, unknown> = {}) => ({ batch: [{ event: "e", distinct_id: "d" }], ...extra });

describe("SDK write keys", () => {
  it("refuses a request without a key, saying where each SDK carries it", async () => {
    const segment = await sdkPost("/v1/track", track());
    await expectError(segment, 401, "unauthorized");
    expect(segment.headers.get("www-authenticate")).toBe("Bearer");
    const posthog = await sdkPost("/e/", capture());
    await expectError(posthog, 401, "unauthorized");
    const messages = [
      ((await (await sdkPost("/v1/t", track())).json()) as { message: string }).message,
      ((await (await sdkPost("/batch/", capture())).json()) as { message: string }).message,
    ];
    expect(messages[0]).toMatch(/HTTP Basic with the key as the user.*writeKey in the body/);
    expect(messages[1]).toMatch(/api_key or token in the body/);
  });

  it("refuses unknown keys, malformed Basic credentials and a read key, wherever they are", async () => {
    const unknown = "eye_w_not-a-key";
    for (const res of [
      await sdkPost("/v1/track", track(), basic(unknown)),
      await sdkPost("/v1/track", track({ writeKey: unknown })),
      await sdkPost("/e/", capture({ api_key: unknown })),
      await sdkPost("/e/", { batch: [{ event: "e", distinct_id: "d", properties: { token: unknown } }] }),
    ])
      await expectError(res, 401, "unauthorized");
    for (const header of ["Basic !!!", `Basic ${btoa(":")}`, "Digest x"])
      await expectError(await sdkPost("/v1/track", track(), { authorization: header }), 401, "unauthorized");
    for (const res of [
      await sdkPost("/v1/track", track(), basic(DEV_READ_KEY)),
      await sdkPost("/e/", capture({ api_key: DEV_READ_KEY })),
    ])
      await expectError(res, 403, "forbidden");
  });

  it("refuses two different keys in one request (header and body, envelope and event)", async () => {
    const app = await makeApp();
    for (const res of [
      await sdkPost("/v1/track", track({ writeKey: app.writeKey }), basic(DEV_WRITE_KEY)),
      await sdkPost("/v1/batch", {
        writeKey: DEV_WRITE_KEY,
        batch: [{ type: "track", ...track(), writeKey: app.writeKey }],
      }),
      await sdkPost("/e/", {
        api_key: DEV_WRITE_KEY,
        batch: [{ event: "e", distinct_id: "d", properties: { token: app.writeKey } }],
      }),
    ]) {
      expect((await expectError(res, 401, "unauthorized")).message).toMatch(/more than one write key/);
    }
    // The same key twice is one key.
    const same = await sdkPost("/v1/track", track({ writeKey: app.writeKey }), basic(app.writeKey));
    expect(same.status).toBe(200);
  });

  it("lets only the application's origins send with its write key, as POST /api/event/", async () => {
    const app = await makeApp({ origins: ["https://shop.example"] });
    const from = (origin: string) => ({ ...basic(app.writeKey), origin });
    expect((await sdkPost("/v1/t", track(), from("https://shop.example"))).status).toBe(200);
    await expectError(await sdkPost("/v1/t", track(), from("https://evil.example")), 403, "forbidden");
    await expectError(
      await sdkPost("/e/", capture({ api_key: app.writeKey }), { origin: "https://evil.example" }),
      403,
      "forbidden",
    );
  });

  it("answers 429 with Retry-After once one client passes the write key's budget, on the SDK paths too", async () => {
    await freshLimiterWindow(10, 8_000);
    const client = `sdk-limited-${crypto.randomUUID()}`;
    let limited: Response | undefined;
    for (let i = 0; i < 110 && !limited; i++) {
      const res = await sdkPost(i % 2 ? "/v1/t" : "/e/", i % 2 ? track() : capture(), {
        ...(i % 2 ? basic(DEV_WRITE_KEY) : bearer(DEV_WRITE_KEY)),
        "cf-connecting-ip": client,
      });
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(200);
    }
    expect(limited).toBeDefined();
    await expectError(limited!, 429, "rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("answers the configuration and settings routes without a key, and keeps the 405s and 404s of the rest", async () => {
    expect((await api("/v1/track", { headers: { authorization: "" } })).status).toBe(405);
    expect((await api("/v1/track", { headers: { authorization: "" } })).headers.get("allow")).toBe("POST, OPTIONS");
    expect((await api("/v1/nothing", { method: "POST", headers: { authorization: "" } })).status).toBe(404);
    expect((await api("/e/", { headers: { authorization: "" } })).status).toBe(405);
  });
});
