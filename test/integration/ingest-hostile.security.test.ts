// POST /api/event/ from an attacker's side, at the level of the body: nesting bombs, huge
// strings, gzip bombs, broken UTF-8, empty and mistyped bodies, and the size and count limits
// at their exact edges. Each case gets a clear 4xx JSON error or is stored exactly as sent, and
// an event accepted just before it (the sentinel) is always stored.
import { describe, expect, it } from "vitest";
import { makeEvent } from "../helpers/api";
import {
  clientOf,
  concat,
  countOf,
  expectError,
  expectFieldError,
  expectNoLeak,
  gzip,
  stored,
  utf8,
} from "../helpers/hostile";
import { described, growth } from "../helpers/timing";

const client = clientOf("ingest");
const MiB = 1024 * 1024;

/** `{"a":{"a":…{}…}}`: an object `levels` deep (itself included), as text. */
const nestedObject = (levels: number, leaf = "{}") => `${'{"a":'.repeat(levels - 1)}${leaf}${"}".repeat(levels - 1)}`;
const nestedArray = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

/** An event as JSON text whose `data` is the given JSON text (for data JSON.stringify cannot build). */
const eventText = (dataText: string, overrides: Record<string, unknown> = {}) => {
  const { data: _, ...rest } = makeEvent(overrides);
  return `${JSON.stringify(rest).slice(0, -1)},"data":${dataText}}`;
};

/** A stream that yields `chunk` `times` times, with no Content-Length (the cap must hold mid-stream). */
const repeatStream = (head: Uint8Array, chunk: Uint8Array, times: number) => {
  let sent = -1;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === -1) controller.enqueue(head);
      else if (sent < times) controller.enqueue(chunk);
      else controller.close();
      sent++;
    },
  });
};

/** A body as a stream of 64 KiB chunks that counts the bytes the Worker pulled from it. */
function counted(bytes: Uint8Array) {
  const read = { bytes: 0 };
  let at = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (at >= bytes.byteLength) return controller.close();
        const chunk = bytes.slice(at, at + 64 * 1024);
        at += chunk.byteLength;
        read.bytes += chunk.byteLength;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, read };
}

// Alone, so its timing is its own.
describe("gzip", () => {
  it("refuses a gzip bomb (a few KB inflating far past 1 MiB) with 413, its cost bounded whatever it inflates to", async () => {
    const sentinel = await client.sentinel("gzip-bomb");
    const zeros = new Uint8Array(MiB).fill(0x30); // "000…" inside a JSON string
    const spaces = new Uint8Array(MiB).fill(0x20); // JSON whitespace between tokens
    const bombs = new Map<number, Uint8Array[]>();
    for (const mib of [2, 32])
      bombs.set(mib, [
        await gzip([utf8(eventText('{"pad":"').slice(0, -1)), ...Array<Uint8Array>(mib).fill(zeros), utf8('"}}')]),
        await gzip([utf8("["), ...Array<Uint8Array>(mib).fill(spaces), utf8(`${JSON.stringify(makeEvent())}]`)]),
      ]);
    for (const bomb of bombs.get(32)!)
      expect(bomb.byteLength, "the bomb is a few KB on the wire").toBeLessThan(64 * 1024);
    // 16× what the bombs inflate to: about the same time when the Worker stops at 1 MiB, about 16× when it inflates it all.
    const g = await growth(
      async (mib) => {
        for (const bomb of bombs.get(mib)!) {
          const res = await client.raw(bomb, { "content-type": "application/json", "content-encoding": "gzip" });
          await expectError(res, 413, "payload_too_large", /inflated body is larger than the 1048576-byte limit/);
        }
      },
      [2, 32],
      { repeats: 3, floorMs: 5 },
    );
    expect(g.ratio, `refused without inflating 32 MiB: ${described(g)}`).toBeLessThan(6);
    await stored(sentinel);
  });

  it("caps gzip on the wire too when no Content-Length is sent: 2 MB of empty deflate blocks around one small event is 413", async () => {
    const sentinel = await client.sentinel("gzip-stuffed");
    /** A gzip stream of `event` with `blocks` empty stored deflate blocks (5 bytes each) before its data, streamed in chunks. */
    const stuffed = async (event: Record<string, unknown>, blocks: number) => {
      const zipped = await gzip([utf8(JSON.stringify(event))]);
      const out = new Uint8Array(zipped.byteLength + 5 * blocks);
      out.set(zipped.subarray(0, 10)); // the gzip header; the deflate blocks start byte-aligned after it
      for (let i = 0; i < blocks; i++) out.set([0x00, 0x00, 0x00, 0xff, 0xff], 10 + 5 * i); // BFINAL=0 BTYPE=00 LEN=0 NLEN=~0
      out.set(zipped.subarray(10), 10 + 5 * blocks);
      return new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < out.byteLength; at += 64 * 1024) controller.enqueue(out.slice(at, at + 64 * 1024));
          controller.close();
        },
      });
    };
    const gz = { "content-type": "application/json", "content-encoding": "gzip" };
    // The construction is valid gzip: a few KB of empty blocks inflate to the event and are accepted.
    const small = makeEvent();
    const ok = await client.raw(await stuffed(small, 1_000), gz);
    expect(ok.status, await ok.clone().text()).toBe(202);
    // 400,000 blocks: 2 MB on the wire, inflating to the same small event.
    const big = makeEvent();
    await expectError(
      await client.raw(await stuffed(big, 400_000), gz),
      413,
      "payload_too_large",
      /the body is larger than the 1048576-byte limit/,
    );
    await stored(small.session_id as string);
    await stored(sentinel);
    expect(await countOf(big.session_id as string)).toBe(0);
  });

  it("refuses corrupt and truncated gzip with 400, and unsupported encodings with 415", async () => {
    const sentinel = await client.sentinel("gzip-bad");
    const good = await gzip([utf8(JSON.stringify(makeEvent()))]);
    for (const body of [
      utf8(JSON.stringify(makeEvent())),
      good.slice(0, good.byteLength - 6),
      utf8("\x1f\x8bnot really gzip"),
    ]) {
      await expectError(
        await client.raw(body, { "content-type": "application/json", "content-encoding": "gzip" }),
        400,
        "bad_request",
        /gzip/,
      );
    }
    for (const encoding of ["br", "deflate", "compress", "gzip, gzip"]) {
      await expectError(
        await client.raw(JSON.stringify(makeEvent()), {
          "content-type": "application/json",
          "content-encoding": encoding,
        }),
        415,
        "unsupported_media_type",
        /Content-Encoding/,
      );
    }
    await stored(sentinel);
  });
});

// The rest run concurrently: most of their time is the queue consumer's one-second batch window.
describe.concurrent("hostile bodies", () => {
  describe("nesting bombs", () => {
    it("refuses a body nested 100,000 deep, as an array or an object, with 400, in time linear in its depth", async () => {
      const sentinel = await client.sentinel("deep-body");
      const bodies = new Map([25_000, 100_000].map((depth) => [depth, [nestedArray(depth), nestedObject(depth)]]));
      // 4× the depth: about 4× the time (and less, with each request's fixed cost) when linear, 16× when quadratic.
      const g = await growth(
        async (depth) => {
          const [array, object] = bodies.get(depth)!;
          const asArray = await expectError(await client.raw(array!), 400, "invalid_events");
          expectFieldError(asArray, 0, null, /JSON object/);
          const asObject = await expectError(await client.raw(object!), 400, "invalid_events");
          expectFieldError(asObject, 0, "session_id", /required/);
        },
        [25_000, 100_000],
        { repeats: 3, floorMs: 5 },
      );
      expect(g.ratio, described(g)).toBeLessThan(8);
      await stored(sentinel);
    });

    it("refuses data nested 100,000 deep with 400 naming data, and stores the valid events of the same batch", async () => {
      const sentinel = await client.sentinel("deep-data");
      const valid = [makeEvent(), makeEvent()];
      const batch = `[${JSON.stringify(valid[0])},${eventText(nestedObject(100_000))},${eventText(
        `{"list":${nestedArray(100_000)}}`,
      )},${JSON.stringify(valid[1])}]`;
      const res = await client.raw(batch, { "content-type": "application/json" });
      const text = await res.text();
      expectNoLeak(text);
      expect(res.status, text).toBe(202);
      const body = JSON.parse(text);
      expect(body).toMatchObject({ success: false, accepted: 2 });
      expectFieldError(body, 1, "data", /deeper than 32/);
      expectFieldError(body, 2, "data", /deeper than 32/);

      // Alone, the same event is a 400.
      const alone = await expectError(
        await client.raw(eventText(nestedObject(100_000))),
        400,
        "invalid_events",
        /data/,
      );
      expectFieldError(alone, 0, "data", /deeper than 32 levels/);

      for (const e of valid) {
        const { page } = await stored(e.session_id as string);
        expect(page.results[0]!.data).toEqual(e.data);
      }
      await stored(sentinel);
    });

    it("stores data exactly 32 levels deep as sent, and refuses 33 levels", async () => {
      const deepest = makeEvent();
      const text32 = nestedObject(32, '{"leaf":"here"}');
      const ok = await client.raw(eventText(text32, { session_id: deepest.session_id }));
      expect(ok.status, await ok.clone().text()).toBe(202);
      const tooDeep = await expectError(await client.raw(eventText(nestedObject(33))), 400, "invalid_events");
      expectFieldError(tooDeep, 0, "data", /deeper than 32/);
      const { text } = await stored(deepest.session_id as string);
      expect(text).toContain(`"data":${text32}`);
    });
  });

  describe("huge strings", () => {
    it("refuses a 10 MB string, as a field value or as the whole body, with 413 and without reading it all", async () => {
      const sentinel = await client.sentinel("10mb");
      const ten = "a".repeat(10_000_000);
      // Each body is a stream that counts what the Worker reads of it: with its Content-Length
      // declared, the Worker refuses before reading; without, once it has read 1 MiB.
      for (const body of [
        JSON.stringify(makeEvent({ data: { s: ten } })),
        JSON.stringify(makeEvent({ session_id: ten })),
        JSON.stringify(ten),
        ten,
      ]) {
        const bytes = utf8(body);
        const declared = counted(bytes);
        await expectError(
          await client.raw(declared.stream, {
            "content-type": "application/json",
            "content-length": String(bytes.byteLength),
          }),
          413,
          "payload_too_large",
          /1048576/,
        );
        expect(declared.read.bytes, "read of a body declared 10 MB").toBeLessThanOrEqual(128 * 1024);
        const undeclared = counted(bytes);
        await expectError(
          await client.raw(undeclared.stream, { "content-type": "application/json" }),
          413,
          "payload_too_large",
          /larger than the 1048576-byte limit/,
        );
        expect(undeclared.read.bytes, "read of a 10 MB body streamed without a length").toBeLessThanOrEqual(
          MiB + 128 * 1024,
        );
      }
      // Streamed with no Content-Length, as chunks of 1 MiB: the cap is enforced while reading.
      const head = utf8(`{"session_id":"x","category":"c","name":"n","timestamp":"2021-01-01 00:00","data":{"s":"`);
      const streamed = await client.raw(repeatStream(head, new Uint8Array(MiB).fill(0x61), 10), {
        "content-type": "application/json",
      });
      await expectError(streamed, 413, "payload_too_large", /larger than the 1048576-byte limit/);
      await stored(sentinel);
    });

    it("refuses long strings that fit in the body with 400 naming the field; the valid events of the batch are stored", async () => {
      const valid = makeEvent();
      const big = "b".repeat(300_000);
      const batch = [
        makeEvent({ session_id: big }),
        makeEvent({ category: "c".repeat(10_000) }),
        makeEvent({ name: "n".repeat(151) }),
        makeEvent({ data: { s: big } }),
        valid,
      ];
      const res = await client.post(batch);
      const text = await res.text();
      expectNoLeak(text);
      expect(text.length, "errors do not echo the huge values").toBeLessThan(2_000);
      expect(res.status, text).toBe(202);
      const body = JSON.parse(text);
      expect(body).toMatchObject({ success: false, accepted: 1 });
      expectFieldError(body, 0, "session_id", /at most 150 characters/);
      expectFieldError(body, 1, "category", /at most 150 characters/);
      expectFieldError(body, 2, "name", /at most 150 characters/);
      expectFieldError(body, 3, "data", /larger than 32768 bytes/);
      await stored(valid.session_id as string);
    });
  });

  describe("encoding and media type", () => {
    it("refuses invalid UTF-8 anywhere in the body with 400", async () => {
      const sentinel = await client.sentinel("utf8");
      const [before, after] = JSON.stringify(makeEvent({ session_id: "SPLIT" })).split("SPLIT") as [string, string];
      const invalid: number[][] = [
        [0xff], // never valid
        [0xc3, 0x28], // bad continuation
        [0xc0, 0xaf], // overlong "/"
        [0xe0, 0x80, 0xaf], // overlong
        [0xed, 0xa0, 0x80], // a UTF-16 surrogate encoded as UTF-8 (CESU)
        [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
        [0xe2, 0x82], // truncated sequence
        [0x80], // lone continuation byte
      ];
      for (const bytes of invalid) {
        const body = concat(utf8(before), new Uint8Array(bytes), utf8(after));
        await expectError(await client.raw(body, { "content-type": "application/json" }), 400, "bad_request", /UTF-8/);
      }
      // The same bytes as text/plain (sendBeacon), and a whole body in UTF-16.
      await expectError(
        await client.raw(concat(utf8(before), new Uint8Array([0xff]), utf8(after)), { "content-type": "text/plain" }),
        400,
        "bad_request",
        /UTF-8/,
      );
      const utf16 = new Uint8Array([
        0xff,
        0xfe,
        ...[...JSON.stringify(makeEvent())].flatMap((ch) => [ch.charCodeAt(0), 0]),
      ]);
      await expectError(await client.raw(utf16, { "content-type": "application/json" }), 400, "bad_request", /UTF-8/);
      // A declared charset other than UTF-8 is refused before reading.
      for (const charset of ["latin1", "utf-16", "iso-8859-1"]) {
        await expectError(
          await client.raw(JSON.stringify(makeEvent()), { "content-type": `application/json; charset=${charset}` }),
          415,
          "unsupported_media_type",
          new RegExp(`UTF-8.*${charset}`),
        );
      }
      await stored(sentinel);
    });

    it("accepts a UTF-8 byte order mark and stores the event as sent", async () => {
      const event = makeEvent({ name: "\ufeffbom inside the value" });
      const res = await client.raw(concat(new Uint8Array([0xef, 0xbb, 0xbf]), utf8(JSON.stringify(event))), {
        "content-type": "application/json",
      });
      expect(res.status, await res.clone().text()).toBe(202);
      const { page } = await stored(event.session_id as string);
      expect(page.results[0]!.name).toBe("\ufeffbom inside the value");
    });

    it("refuses empty and non-event bodies with 400 and a message naming the problem", async () => {
      const sentinel = await client.sentinel("empty");
      const json = { "content-type": "application/json" };
      await expectError(await client.raw(null, json), 400, "bad_request", /empty/);
      await expectError(await client.raw("", json), 400, "bad_request", /empty/);
      await expectError(await client.raw(new Uint8Array(0), json), 400, "bad_request", /empty/);
      await expectError(await client.raw("   \n\t ", json), 400, "bad_request", /not valid JSON/);
      await expectError(await client.raw("{", json), 400, "bad_request", /not valid JSON/);
      await expectError(await client.raw('{"session_id":"a",}', json), 400, "bad_request", /not valid JSON/);
      await expectError(await client.raw("NaN", json), 400, "bad_request", /not valid JSON/);
      await expectError(await client.raw('{"a":Infinity}', json), 400, "bad_request", /not valid JSON/);
      for (const body of ["null", '""', "0", "true", '"an event"']) {
        await expectError(await client.raw(body, json), 400, "invalid_events", /event object or an array of events/);
      }
      await expectError(await client.raw("[]", json), 400, "invalid_events", /no events/);
      const empty = await expectError(await client.raw("{}", json), 400, "invalid_events");
      for (const field of ["session_id", "category", "name", "data", "timestamp"])
        expectFieldError(empty, 0, field, /required/);
      const notObjects = await expectError(await client.raw('[null, 1, "x", []]', json), 400, "invalid_events");
      for (const index of [0, 1, 2, 3]) expectFieldError(notObjects, index, null, /JSON object/);
      await stored(sentinel);
    });

    it("refuses a Content-Type that is not JSON or text/plain with 415 naming it", async () => {
      const sentinel = await client.sentinel("content-type");
      const body = JSON.stringify(makeEvent());
      for (const type of [
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/html",
        "image/png",
      ]) {
        await expectError(
          await client.raw(body, { "content-type": type }),
          415,
          "unsupported_media_type",
          new RegExp(type.split(";")[0]!),
        );
      }
      // A hostile header is named, not echoed back whole.
      const hostileHeaders: Record<string, string>[] = [
        { "content-type": `application/${"x".repeat(10_000)}` },
        { "content-type": `application/json; charset=${"x".repeat(10_000)}` },
        { "content-type": "application/json", "content-encoding": "x".repeat(10_000) },
      ];
      for (const headers of hostileHeaders) {
        const res = await client.raw(body, headers);
        const error = await expectError(res, 415, "unsupported_media_type", /Content-Type|Content-Encoding|UTF-8/);
        expect(error.message.length).toBeLessThan(200);
      }
      const form = new FormData();
      form.append("event", body);
      await expectError(await client.raw(form), 415, "unsupported_media_type", /multipart\/form-data/);
      await stored(sentinel);
    });

    it("accepts application/json and text/plain (what sendBeacon sends), with or without charset", async () => {
      const types = [
        "application/json",
        "application/json; charset=utf-8",
        'application/json; charset="UTF-8"', // quoted, as RFC 9110 allows
        "text/plain",
        "text/plain;charset=UTF-8",
        'text/plain; Charset = "utf-8"; boundary="x;y"',
        "APPLICATION/JSON",
      ];
      await Promise.all(
        types.map(async (type) => {
          const event = makeEvent({ name: `typed ${type}` });
          const res = await client.raw(JSON.stringify(event), { "content-type": type });
          expect(res.status, `${type}: ${await res.clone().text()}`).toBe(202);
          const { page } = await stored(event.session_id as string);
          expect(page.results[0]).toMatchObject({ name: `typed ${type}`, data: event.data });
        }),
      );
    });
  });

  describe("size and count limits, at their edges", () => {
    /** `n` events in one session, each with a big `data`, padded so the body is exactly `bytes` long. */
    function bodyOf(bytes: number, n: number, sessionId: string, char = "x") {
      const events = Array.from({ length: n }, (_, i) => ({
        ...makeEvent({ session_id: sessionId }),
        data: { i, pad: "" },
      }));
      const bare = utf8(JSON.stringify(events)).byteLength;
      const per = Math.floor((bytes - bare) / n / utf8(char).byteLength);
      for (const e of events) e.data.pad = char.repeat(per);
      const last = events[n - 1]!;
      const rest = bytes - utf8(JSON.stringify(events)).byteLength;
      last.data.pad += "y".repeat(rest); // one byte each
      const text = JSON.stringify(events);
      expect(utf8(text).byteLength).toBe(bytes);
      return { text, events };
    }

    it("accepts a body of exactly 1 MiB (plain and gzip) and stores every event byte for byte", async () => {
      const session = `exact-1mib-${crypto.randomUUID()}`;
      const { text, events } = bodyOf(MiB, 40, session);
      for (const e of events) expect(utf8(JSON.stringify(e.data)).byteLength).toBeLessThanOrEqual(32 * 1024);
      const res = await client.raw(text, { "content-type": "application/json" });
      expect(res.status, await res.clone().text()).toBe(202);
      expect(await res.json()).toEqual({ success: true, accepted: 40 });
      // The same bytes gzipped: inflated to exactly 1 MiB, accepted, and stored once (same events).
      const zipped = await client.raw(await gzip([utf8(text)]), {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      expect(zipped.status, await zipped.clone().text()).toBe(202);
      const { page } = await stored(session, 40);
      const byI = new Map(page.results.map((r) => [(r.data as { i: number }).i, r.data]));
      for (const e of events) expect(byI.get(e.data.i)).toEqual(e.data);
    });

    it("refuses a body of 1 MiB + 1 byte with 413 (declared, streamed, gzipped, multi-byte) and stores none of it", async () => {
      const sentinel = await client.sentinel("1mib-plus-1");
      const session = `over-1mib-${crypto.randomUUID()}`;
      const { text } = bodyOf(MiB + 1, 40, session);
      const json = { "content-type": "application/json" };
      await expectError(await client.raw(text, json), 413, "payload_too_large", /1048576/);
      const bytes = utf8(text);
      const streamed = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.byteLength; at += 64 * 1024) controller.enqueue(bytes.slice(at, at + 64 * 1024));
          controller.close();
        },
      });
      await expectError(await client.raw(streamed, json), 413, "payload_too_large", /1048576/);
      await expectError(
        await client.raw(await gzip([bytes]), { ...json, "content-encoding": "gzip" }),
        413,
        "payload_too_large",
        /inflated body/,
      );
      // Bytes, not characters: 1 MiB + 1 bytes of "é" is far fewer than 1 MiB characters.
      const accented = bodyOf(MiB + 1, 40, session, "é").text;
      expect(accented.length).toBeLessThan(MiB);
      await expectError(await client.raw(accented, json), 413, "payload_too_large", /1048576/);
      await stored(sentinel);
      expect(await countOf(session)).toBe(0);
    });

    it("refuses 501 events with 400 and stores none; accepts 500", async () => {
      const sentinel = await client.sentinel("501");
      const refusedSession = `501-${crypto.randomUUID()}`;
      const tooMany = Array.from({ length: 501 }, () => makeEvent({ session_id: refusedSession }));
      await expectError(await client.post(tooMany), 400, "invalid_events", /too many events: 501, at most 500/);

      const session = `500-${crypto.randomUUID()}`;
      const res = await client.post(Array.from({ length: 500 }, () => makeEvent({ session_id: session })));
      expect(res.status, await res.clone().text()).toBe(202);
      expect(await res.json()).toEqual({ success: true, accepted: 500 });
      await stored(session, 500);
      await stored(sentinel);
      expect(await countOf(refusedSession)).toBe(0);
    });

    it("stores the 499 valid events of a full batch holding one hostile event", async () => {
      const session = `499-${crypto.randomUUID()}`;
      const batch = Array.from({ length: 500 }, () => makeEvent({ session_id: session }));
      batch[250] = makeEvent({ session_id: session, data: "not an object" });
      const res = await client.post(batch);
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(202);
      expect(body).toMatchObject({ success: false, accepted: 499 });
      expectFieldError(body as { errors: [] }, 250, "data", /JSON object/);
      await stored(session, 499);
    });
  });
});
