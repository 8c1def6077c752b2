// POST /api/event/ from an attacker's side, at the level of the values: prototype keys, numbers
// JavaScript cannot hold, duplicate keys, odd Unicode, replayed event ids. Each case gets a clear
// 4xx JSON error (naming the field) or is stored exactly as sent — checked on the raw bytes the
// GET returns — and the valid events sent alongside are stored.
import { describe, expect, it } from "vitest";
import { api, makeEvent } from "../helpers/api";
import {
  clientOf,
  countOf,
  type ErrorBody,
  expectError,
  expectFieldError,
  expectNoLeak,
  gzip,
  stored,
  utf8,
} from "../helpers/hostile";

const client = clientOf("data");

/** An event as JSON text with `data` given as text (for what JSON.stringify cannot produce). */
const eventText = (dataText: string, overrides: Record<string, unknown> = {}) => {
  const { data: _, ...rest } = makeEvent(overrides);
  return `${JSON.stringify(rest).slice(0, -1)},"data":${dataText}}`;
};

/** Posts a batch `[valid, ...hostile, valid]` as text; expects the valid two stored and each hostile one refused naming its field. */
async function mixedBatch(hostile: [text: string, field: string][], message: RegExp) {
  const first = makeEvent();
  const last = makeEvent();
  const res = await client.raw(
    `[${JSON.stringify(first)},${hostile.map(([text]) => text).join(",")},${JSON.stringify(last)}]`,
    {
      "content-type": "application/json",
    },
  );
  const text = await res.text();
  expectNoLeak(text);
  expect(res.status, text).toBe(202);
  const body = JSON.parse(text);
  expect(body).toMatchObject({ success: false, accepted: 2 });
  for (const [i, [, field]] of hostile.entries()) expectFieldError(body, i + 1, field, message);
  for (const e of [first, last]) expect((await stored(e.session_id as string)).page.results[0]!.data).toEqual(e.data);
}

describe.concurrent("prototype keys", () => {
  it("stores __proto__, constructor and prototype keys in data exactly as sent, and returns them", async () => {
    const dataText =
      '{"__proto__":{"polluted":"yes","session_id":"from-proto","isAdmin":true},' +
      '"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":1},' +
      '"toString":"not a function","hasOwnProperty":null,"valueOf":[1,2],"nested":{"__proto__":[{"__proto__":{}}]}}';
    const event = makeEvent();
    const res = await client.raw(eventText(dataText, { session_id: event.session_id }), {
      "content-type": "application/json",
    });
    expect(res.status, await res.clone().text()).toBe(202);

    const { page, text } = await stored(event.session_id as string);
    expect(text, "the stored bytes are the bytes sent").toContain(`"data":${dataText}`);
    const data = page.results[0]!.data as Record<string, unknown>;
    expect(Object.keys(data)).toEqual([
      "__proto__",
      "constructor",
      "prototype",
      "toString",
      "hasOwnProperty",
      "valueOf",
      "nested",
    ]);
    expect(Object.hasOwn(data, "__proto__")).toBe(true);
    expect(JSON.stringify(data)).toBe(dataText);
    // Nothing was polluted, here or in the Worker (it would make an event without session_id valid).
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).session_id).toBeUndefined();
    const { session_id: _, ...withoutSession } = makeEvent();
    const refused = await expectError(await client.post(withoutSession), 400, "invalid_events");
    expectFieldError(refused, 0, "session_id", /required/);
  });

  it("does not take an event's fields from a top-level __proto__ key", async () => {
    const inner = JSON.stringify(makeEvent());
    const body = await expectError(
      await client.raw(`{"__proto__":${inner}}`, { "content-type": "application/json" }),
      400,
      "invalid_events",
    );
    for (const field of ["session_id", "category", "name", "data", "timestamp"])
      expectFieldError(body, 0, field, /required/);
    // Extra top-level keys named after Object's members are ignored; the event is stored as sent.
    const event = makeEvent();
    const text = `${JSON.stringify(event).slice(0, -1)},"constructor":{"prototype":{"x":1}},"toString":1,"__proto__":null}`;
    const res = await client.raw(text, { "content-type": "application/json" });
    expect(res.status, await res.clone().text()).toBe(202);
    expect((await stored(event.session_id as string)).page.results[0]).toMatchObject({
      data: event.data,
      name: event.name,
    });
  });

  it("stores and finds labels named __proto__, constructor and prototype", async () => {
    const event = makeEvent({ session_id: `__proto__`, category: "constructor", name: "prototype" });
    expect((await client.post(event)).status).toBe(202);
    const { page } = await stored("__proto__");
    expect(page.results[0]).toMatchObject({
      session_id: "__proto__",
      category: "constructor",
      name: "prototype",
      data: event.data,
    });
    const res = await api("/api/event/?__proto__=x&constructor=y&category=constructor&name=prototype");
    const found = JSON.parse(await res.text());
    expect(res.status).toBe(200);
    expect(found.count).toBe(1);
  });
});

describe.concurrent("numbers", () => {
  it("refuses 1e400 and other infinite numbers with 400 naming data", async () => {
    for (const dataText of ['{"n":1e400}', '{"n":-1e400}', '{"a":{"b":[1,2,1e400]}}', '{"n":123e99999}']) {
      const body = await expectError(
        await client.raw(eventText(dataText), { "content-type": "application/json" }),
        400,
        "invalid_events",
        /data/,
      );
      expectFieldError(body, 0, "data", /number/);
    }
  });

  it("stores the valid events of a batch holding 1e400", async () => {
    await mixedBatch(
      [
        [eventText('{"n":1e400}'), "data"],
        [eventText('{"deep":[[{"n":-1e999}]]}'), "data"],
      ],
      /number/,
    );
  });

  it("refuses numbers that would be stored as a different number (past 2^53, underflow) with 400 naming data", async () => {
    for (const number of [
      "9007199254740993",
      "-9007199254740993",
      "123456789012345678901234567890",
      "1e-400",
      "0.10000000000000000000001",
    ]) {
      const body = await expectError(
        await client.raw(eventText(`{"n":${number}}`), { "content-type": "application/json" }),
        400,
        "invalid_events",
      );
      expectFieldError(body, 0, "data", /number/);
    }
  });

  it("stores numbers a double holds exactly, with the value sent", async () => {
    const numbers = [
      "0",
      "-0",
      "0.1",
      "1.5e300",
      "1.7976931348623157e308",
      "5e-324",
      "9007199254740992",
      "-12.5",
      "1E2",
      "1.0",
      "2.50",
    ];
    const event = makeEvent();
    const dataText = `{${numbers.map((n, i) => `"n${i}":${n}`).join(",")}}`;
    const res = await client.raw(eventText(dataText, { session_id: event.session_id }), {
      "content-type": "application/json",
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const data = (await stored(event.session_id as string)).page.results[0]!.data as Record<string, number>;
    for (const [i, n] of numbers.entries()) expect(data[`n${i}`], n).toBe(Number(n) === 0 ? 0 : Number(n));
  });
});

describe.concurrent("duplicate keys", () => {
  // JSON.parse keeps the last of duplicate keys: what a client sent could not be stored as sent,
  // and a proxy that keeps the first would see a different event. Duplicates are refused.
  it("refuses an event whose data repeats a key with 400 naming data and the key", async () => {
    for (const dataText of [
      '{"a":1,"a":2}',
      '{"x":{"y":1,"y":1}}',
      '{"list":[{"k":1},{"k":2,"z":0,"k":3}]}',
      '{"a":1,"\\u0061":2}',
    ]) {
      const body = await expectError(
        await client.raw(eventText(dataText), { "content-type": "application/json" }),
        400,
        "invalid_events",
        /data/,
      );
      expectFieldError(body, 0, "data", /more than once/);
    }
  });

  it("refuses an event that repeats a field with 400 naming it", async () => {
    const event = makeEvent();
    const text = `${JSON.stringify(event).slice(0, -1)},"session_id":"someone else"}`;
    const body = await expectError(
      await client.raw(text, { "content-type": "application/json" }),
      400,
      "invalid_events",
      /session_id/,
    );
    expectFieldError(body, 0, "session_id", /more than once/);
    expect(await countOf("someone else")).toBe(0);
  });

  it("stores the valid events of a batch holding duplicate keys", async () => {
    await mixedBatch(
      [
        [eventText('{"a":1,"a":2}'), "data"],
        [`${JSON.stringify(makeEvent()).slice(0, -1)},"name":"again"}`, "name"],
      ],
      /more than once/,
    );
  });

  it("accepts the same key in different objects and keys that only look alike", async () => {
    const event = makeEvent();
    const dataText = '{"x":{"a":1},"y":{"a":2},"a":[{"a":3},{"a":4}],"A":5,"\u00e9":6,"e\u0301":7}';
    const res = await client.raw(eventText(dataText, { session_id: event.session_id }), {
      "content-type": "application/json",
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { text } = await stored(event.session_id as string);
    expect(text).toContain(`"data":${dataText}`);
  });
});

describe.concurrent("Unicode", () => {
  const ASTRAL = "\u{1D49C}"; // 𝒜: one code point, two UTF-16 units, four UTF-8 bytes

  it("stores emoji, combining marks, right-to-left text and other oddities byte for byte", async () => {
    const odd = [
      "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈",
      "e\u0301\u0302\u0303 Z̷̢̛͓a̴l̸g̵o̶",
      "مرحبا \u202Eevil\u202C עברית \u200F",
      "\u2028line\u2029para\u0085",
      "\uFEFF\uFFFF\uFFFE\u{10FFFF}",
      "tab\there\u0000nul\u001f",
      "'; DROP TABLE events; --",
    ];
    await Promise.all(
      odd.map(async (s, i) => {
        const sessionId = `${s} ${crypto.randomUUID()}`;
        const event = makeEvent({ session_id: sessionId, category: s, name: s, data: { [s]: s, i } });
        const res = await client.post(event);
        expect(res.status, await res.clone().text()).toBe(202);
        const { page, text } = await stored(sessionId);
        expect(page.results[0]).toMatchObject({ session_id: sessionId, category: s, name: s, data: { [s]: s, i } });
        expect(text).toContain(`"data":${JSON.stringify(event.data)}`);
      }),
    );
  });

  it("counts characters as code points: 150 astral characters (300 UTF-16 units) are accepted, 151 refused", async () => {
    const ok = ASTRAL.repeat(150);
    expect(ok.length).toBe(300);
    const event = makeEvent({ session_id: ok, category: ok, name: ok });
    const res = await client.post(event);
    expect(res.status, await res.clone().text()).toBe(202);
    const tooLong = ASTRAL.repeat(151);
    for (const field of ["session_id", "category", "name"]) {
      const body = await expectError(
        await client.post(makeEvent({ [field]: tooLong })),
        400,
        "invalid_events",
        new RegExp(field),
      );
      expectFieldError(body, 0, field, /at most 150 characters/);
    }
    const bmp = await expectError(await client.post(makeEvent({ name: "é".repeat(151) })), 400, "invalid_events");
    expectFieldError(bmp, 0, "name", /at most 150 characters/);
    const { page } = await stored(ok);
    expect(page.results[0]).toMatchObject({ session_id: ok, category: ok, name: ok });
  });

  it("refuses lone surrogates in session_id, category and name with 400", async () => {
    for (const bad of ["\\ud800", "x\\udc00", "\\udc00\\ud800", "\\ud83d"]) {
      for (const field of ["session_id", "category", "name"]) {
        const text = JSON.stringify(makeEvent({ [field]: "LONE" })).replace('"LONE"', `"${bad}"`);
        const body = await expectError(
          await client.raw(text, { "content-type": "application/json" }),
          400,
          "invalid_events",
          new RegExp(field),
        );
        expectFieldError(body, 0, field, /lone surrogate/);
      }
    }
  });

  it("stores lone surrogates inside data as the escapes sent", async () => {
    const event = makeEvent();
    const dataText = '{"s":"\\ud800","\\udc00":"k"}';
    const res = await client.raw(eventText(dataText, { session_id: event.session_id }), {
      "content-type": "application/json",
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { page, text } = await stored(event.session_id as string);
    expect(text).toContain(`"data":${dataText}`);
    expect(page.results[0]!.data).toEqual({ s: "\ud800", "\udc00": "k" });
  });

  it("does not normalize: NFC and NFD spellings stay distinct and are found only as sent", async () => {
    const nfc = `caf\u00e9 ${crypto.randomUUID()}`;
    const nfd = nfc.normalize("NFD");
    expect(nfd).not.toBe(nfc);
    expect((await client.post([makeEvent({ session_id: nfc }), makeEvent({ session_id: nfd })])).status).toBe(202);
    expect((await stored(nfc)).page.results[0]!.session_id).toBe(nfc);
    expect((await stored(nfd)).page.results[0]!.session_id).toBe(nfd);
  });
});

describe.concurrent("timestamps", () => {
  it("refuses a timestamp outside what can be stored with 400 naming timestamp, or stores it exactly", async () => {
    // Timestamps are integer microseconds; a double holds them exactly from 1684 (to 2255, far in the future).
    const cases: [string, string | null][] = [
      ["0001-01-01 00:00:00", null],
      ["1000-06-15T12:00:00.000001Z", null],
      ["1684-07-28 00:12:25.259008", null],
      ["1684-07-28 00:12:25.259009", "1684-07-28T00:12:25.259009Z"],
      ["1700-01-01T00:00:00.000001+14:00", "1699-12-31T10:00:00.000001Z"],
      ["1969-12-31 23:59:59.999999", "1969-12-31T23:59:59.999999Z"],
      ["9999-12-31 23:59:59", null],
    ];
    await Promise.all(
      cases.map(async ([timestamp, rendered]) => {
        const event = makeEvent({ timestamp });
        const res = await client.post(event);
        if (rendered === null) {
          const body = await expectError(res, 400, "invalid_events", /timestamp/);
          expectFieldError(
            body,
            0,
            "timestamp",
            timestamp.startsWith("9999") ? /in the future/ : /must not be earlier than 1684-07-28T00:12:25.259009Z/,
          );
        } else {
          expect(res.status, `${timestamp}: ${await res.clone().text()}`).toBe(202);
          expect((await stored(event.session_id as string)).page.results[0]!.timestamp).toBe(rendered);
        }
      }),
    );
  });

  it("stores the valid events of a batch holding a timestamp from year 1", async () => {
    await mixedBatch([[JSON.stringify(makeEvent({ timestamp: "0001-01-01 00:00:00" })), "timestamp"]], /timestamp/);
  });

  it("refuses hostile timestamps with 400 naming timestamp", async () => {
    for (const timestamp of [
      "9999-12-31 23:59:59",
      "2021-01-01 00:00:00.1234567891",
      "2021-02-30 00:00",
      "x".repeat(10_000),
      1609459200,
      null,
      "2021-01-01'; DROP TABLE events; --",
    ]) {
      const body = await expectError(await client.post(makeEvent({ timestamp })), 400, "invalid_events", /timestamp/);
      expectFieldError(body, 0, "timestamp", /./);
    }
  });
});

describe.concurrent("replayed event ids", () => {
  /** Waits until everything sent before is consumed: a later event in its own session is stored. */
  const drained = async () => stored(await client.sentinel("drain"));

  it("stores an event POSTed three times once, with or without a client event_id", async () => {
    const withId = makeEvent({ event_id: crypto.randomUUID() });
    const withoutId = makeEvent();
    for (let i = 0; i < 3; i++) {
      const res = await client.post([withId, withoutId]);
      expect(await res.json()).toEqual({ success: true, accepted: 2 });
    }
    // Upper case is the same UUID.
    expect((await client.post({ ...withId, event_id: (withId.event_id as string).toUpperCase() })).status).toBe(202);
    await drained();
    const a = await stored(withId.session_id as string);
    expect(a.page.results[0]!.event_id).toBe(withId.event_id);
    const b = await stored(withoutId.session_id as string);
    expect(b.page.results[0]!.event_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("stores a replayed batch once, and keeps the first of two events sharing an event_id", async () => {
    const session = `replay-${crypto.randomUUID()}`;
    const batch = Array.from({ length: 5 }, () => makeEvent({ session_id: session }));
    for (let i = 0; i < 2; i++) expect((await client.post(batch)).status).toBe(202);

    const id = crypto.randomUUID();
    const first = makeEvent({ session_id: `${session}-first`, event_id: id });
    const twin = makeEvent({ session_id: `${session}-twin`, event_id: id });
    // Two events named alike in one request: one can be stored, so `accepted` says one and the
    // other is refused by name (never counted as accepted and then dropped by the store).
    const body = (await (await client.post([first, twin])).json()) as ErrorBody;
    expect(body).toMatchObject({ success: false, accepted: 1 });
    expectFieldError(body, 1, "event_id", /repeats the event at index 0/);
    // Later, the same id with other content (a forged replay): still the first is kept.
    const forged = makeEvent({ session_id: `${session}-forged`, event_id: id });
    expect((await client.post(forged)).status).toBe(202);

    await drained();
    await stored(session, 5);
    expect((await stored(`${session}-first`)).page.results[0]).toMatchObject({ event_id: id, data: first.data });
    expect(await countOf(`${session}-twin`)).toBe(0);
    expect(await countOf(`${session}-forged`)).toBe(0);
  });

  it("stores identical events sent in one request as distinct events, and a resent request adds nothing", async () => {
    const session = `copies-${crypto.randomUUID()}`;
    const e = makeEvent({ session_id: session, data: { same: true } });
    const sentinel = (n: number) => makeEvent({ session_id: `${session}-sentinel-${n}` });
    expect(await (await client.post([e, e, sentinel(1)])).json()).toEqual({ success: true, accepted: 3 });
    await stored(`${session}-sentinel-1`);
    expect(await countOf(session)).toBe(2);
    // The same request again (a retry), and one with a third copy: only the third copy is new.
    expect(await (await client.post([e, e, sentinel(2)])).json()).toEqual({ success: true, accepted: 3 });
    expect(await (await client.post([e, e, e, sentinel(3)])).json()).toEqual({ success: true, accepted: 4 });
    await stored(`${session}-sentinel-2`);
    await stored(`${session}-sentinel-3`);
    const { page } = await stored(session, 3);
    expect(new Set(page.results.map((r) => r.event_id)).size).toBe(3);
  });

  it("keeps identical events apart in a gzip body and around a refused event, and accepted equals what a GET finds", async () => {
    const session = `copies-mixed-${crypto.randomUUID()}`;
    const e = makeEvent({ session_id: session });
    const zipped = await gzip([utf8(JSON.stringify([e, e]))]);
    expect(
      await (await client.raw(zipped, { "content-type": "application/json", "content-encoding": "gzip" })).json(),
    ).toEqual({
      success: true,
      accepted: 2,
    });
    const bad = makeEvent({ session_id: session, timestamp: "not a time" });
    const mixed = (await (await client.post([e, bad, e, e])).json()) as ErrorBody;
    expect(mixed).toMatchObject({ success: false, accepted: 3 });
    expectFieldError(mixed, 1, "timestamp", /expected/);
    // The first two copies are the gzip request's (same ids), the third is new: 3 in all.
    await stored(session, 3);
    const sentinel = await client.sentinel("copies-mixed");
    await stored(sentinel);
    expect(await countOf(session)).toBe(3);
  });

  it("refuses an event_id that is not a UUID with 400 naming event_id", async () => {
    for (const eventId of ["not-a-uuid", "'; DROP TABLE events; --", "x".repeat(10_000), 42, { $ne: null }]) {
      const body = await expectError(
        await client.post(makeEvent({ event_id: eventId })),
        400,
        "invalid_events",
        /event_id/,
      );
      expectFieldError(body, 0, "event_id", /UUID/);
    }
  });
});
