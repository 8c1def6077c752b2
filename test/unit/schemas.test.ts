// The zod contract (event, query string, queue message) and the edge validation built on it (SPEC §1, §2, §4).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eventsOf, MAX_DATA_DEPTH, validateEvents } from "../../src/ingest/validate";
import { type Limits, limitsFrom } from "../../src/shared/config";
import { ApiError } from "../../src/shared/errors";
import { eventInput, eventQuery, MAX_LIMIT, MAX_OFFSET, queueMessage } from "../../src/shared/schemas";
import { utf8Length } from "../../src/shared/sizes";
import { README_EVENT } from "../helpers/api";

const README_MICROS = Date.UTC(2021, 0, 1, 9, 15, 27) * 1000 + 243860;

const LIMITS: Limits = limitsFrom(env);
const RECEIVED = Date.UTC(2024, 0, 1, 12, 0, 0) * 1000;
const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const validate = (candidates: unknown[], limits: Limits = LIMITS, app: string | null = "schemas-app") =>
  validateEvents(candidates, limits, RECEIVED, app);

/** The reasons one candidate is refused, as [field, message] pairs; [] when accepted. */
async function reasonsFor(candidate: unknown, limits?: Limits): Promise<[string | null, string][]> {
  const { refused } = await validate([candidate], limits);
  return (refused[0]?.reasons ?? []).map((r) => [r.field, r.message]);
}

const fieldsRefused = async (candidate: unknown, limits?: Limits) =>
  (await reasonsFor(candidate, limits)).map(([f]) => f);

/** `levels` objects nested inside one another, `data` itself being the first. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

const astral = "😀"; // one code point, two UTF-16 units, four UTF-8 bytes

describe("eventInput", () => {
  it("accepts the original's event and converts its timestamp to microseconds", () => {
    const parsed = eventInput.parse(README_EVENT);
    expect(parsed).toEqual({ ...README_EVENT, timestamp: README_MICROS });
  });

  it("requires every field but event_id, naming each", () => {
    for (const field of ["session_id", "category", "name", "data", "timestamp"]) {
      const { [field]: _, ...rest } = README_EVENT as Record<string, unknown>;
      const result = eventInput.safeParse(rest);
      expect(result.success, field).toBe(false);
      expect(result.error!.issues.map((i) => [i.path[0], i.message])).toContainEqual([field, "is required"]);
    }
    expect(eventInput.safeParse({ ...README_EVENT, event_id: null }).success).toBe(true);
  });

  it("counts label lengths in code points: 150 astral characters pass, 151 do not", () => {
    const ok = astral.repeat(150);
    expect(ok.length).toBe(300);
    for (const field of ["session_id", "category", "name"]) {
      expect(eventInput.safeParse({ ...README_EVENT, [field]: ok }).success, field).toBe(true);
      expect(eventInput.safeParse({ ...README_EVENT, [field]: "x".repeat(150) }).success, field).toBe(true);
      const long = eventInput.safeParse({ ...README_EVENT, [field]: astral.repeat(151) });
      expect(long.error?.issues[0]?.message, field).toBe("must be at most 150 characters");
      expect(eventInput.safeParse({ ...README_EVENT, [field]: "x".repeat(151) }).success, field).toBe(false);
      expect(eventInput.safeParse({ ...README_EVENT, [field]: "" }).error?.issues[0]?.message).toBe(
        "must not be empty",
      );
      expect(eventInput.safeParse({ ...README_EVENT, [field]: 42 }).error?.issues[0]?.message).toBe("must be a string");
    }
  });

  it("refuses labels holding a lone surrogate, high or low", () => {
    for (const bad of ["abc\ud800", "\udc00abc", "a\ud83d"]) {
      const result = eventInput.safeParse({ ...README_EVENT, name: bad });
      expect(result.error?.issues[0]?.message, JSON.stringify(bad)).toMatch(/lone surrogate/);
    }
  });

  it("takes data only as a JSON object (may be empty)", () => {
    expect(eventInput.safeParse({ ...README_EVENT, data: {} }).success).toBe(true);
    for (const data of [[], [1], "x", 1, true, null]) {
      const result = eventInput.safeParse({ ...README_EVENT, data });
      expect(result.error?.issues[0]?.message, JSON.stringify(data)).toBe("must be a JSON object");
    }
  });

  it("takes the timestamp only as a string in the accepted formats", () => {
    for (const timestamp of [1609492527, "2021-01-01", "2021-02-30 10:00", "01/01/2021 10:00", null]) {
      expect(eventInput.safeParse({ ...README_EVENT, timestamp }).success, String(timestamp)).toBe(false);
    }
    expect(eventInput.parse({ ...README_EVENT, timestamp: "2021-01-01T10:15:27.243860+01:00" }).timestamp).toBe(
      README_MICROS,
    );
  });

  it("takes event_id only as a UUID, normalised to lower case", () => {
    const id = "A3BB189E-8BF9-3888-9912-ACE4E6543002";
    expect(eventInput.parse({ ...README_EVENT, event_id: id }).event_id).toBe(id.toLowerCase());
    for (const event_id of [
      "not-a-uuid",
      "a3bb189e8bf938889912ace4e6543002",
      123,
      "a3bb189e-8bf9-3888-9912-ace4e654300",
    ]) {
      expect(eventInput.safeParse({ ...README_EVENT, event_id }).success, String(event_id)).toBe(false);
    }
  });
});

describe("validateEvents", () => {
  it("accepts a valid event with its data serialized once and its timestamp in microseconds", async () => {
    const { accepted, refused } = await validate([README_EVENT]);
    expect(refused).toEqual([]);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toMatchObject({
      session_id: README_EVENT.session_id,
      data: JSON.stringify(README_EVENT.data),
      timestamp: README_MICROS,
    });
  });

  it("reports each refused event by its index, one reason per field, and keeps the valid ones", async () => {
    const { accepted, refused } = await validate([
      README_EVENT,
      { ...README_EVENT, session_id: "", timestamp: "yesterday" },
      "not an object",
      { ...README_EVENT, name: "ok" },
    ]);
    expect(accepted.map((e) => e.name)).toEqual(["cta click", "ok"]);
    expect(refused.map((r) => r.index)).toEqual([1, 2]);
    expect(refused[0]!.reasons.map((r) => [r.index, r.field])).toEqual([
      [1, "session_id"],
      [1, "timestamp"],
    ]);
    expect(refused[0]!.reasons[0]!.message).toBe("session_id must not be empty");
    expect(refused[1]!.reasons).toEqual([
      { index: 2, field: null, message: "each event must be a JSON object", rule: "invalid_type" },
    ]);
    expect(refused[1]!.payload).toBe("not an object");
  });

  it("counts label lengths in code points and refuses lone surrogates", async () => {
    expect(await fieldsRefused({ ...README_EVENT, category: astral.repeat(150) })).toEqual([]);
    expect(await fieldsRefused({ ...README_EVENT, category: astral.repeat(151) })).toEqual(["category"]);
    expect(await fieldsRefused({ ...README_EVENT, session_id: "s\udfff" })).toEqual(["session_id"]);
  });

  it("refuses data that is not an object", async () => {
    for (const data of [["a"], "{}", 3, null]) {
      expect(await reasonsFor({ ...README_EVENT, data })).toEqual([["data", "data must be a JSON object"]]);
    }
  });

  it("refuses data over 32 KiB once serialized, counting UTF-8 bytes", async () => {
    expect(LIMITS.maxDataBytes).toBe(32 * 1024);
    // {"s":"…"} is 8 bytes around the string.
    const exactly = { s: "x".repeat(32 * 1024 - 8) };
    expect(utf8Length(JSON.stringify(exactly))).toBe(32 * 1024);
    expect(await fieldsRefused({ ...README_EVENT, data: exactly })).toEqual([]);
    expect(await reasonsFor({ ...README_EVENT, data: { s: "x".repeat(32 * 1024 - 7) } })).toEqual([
      ["data", "data is larger than 32768 bytes once serialized"],
    ]);
    // 16,380 two-byte characters: under the limit in characters, over it in bytes.
    expect(await fieldsRefused({ ...README_EVENT, data: { s: "é".repeat(16_381) } })).toEqual(["data"]);
    expect(await fieldsRefused({ ...README_EVENT, data: { s: "é".repeat(16_380) } })).toEqual([]);
  });

  it("honours a configured data limit", async () => {
    const small = { ...LIMITS, maxDataBytes: 100 };
    expect(await fieldsRefused({ ...README_EVENT, data: { s: "x".repeat(92) } }, small)).toEqual([]);
    expect(await fieldsRefused({ ...README_EVENT, data: { s: "x".repeat(93) } }, small)).toEqual(["data"]);
  });

  it(`refuses data nested deeper than ${MAX_DATA_DEPTH} levels, however deep`, async () => {
    expect(await fieldsRefused({ ...README_EVENT, data: nested(MAX_DATA_DEPTH) })).toEqual([]);
    expect(await reasonsFor({ ...README_EVENT, data: nested(MAX_DATA_DEPTH + 1) })).toEqual([
      ["data", `data must not nest deeper than ${MAX_DATA_DEPTH} levels`],
    ]);
    // Arrays count as levels too, and a hostile depth is refused, not a stack overflow.
    let deepArray: unknown = [];
    for (let i = 0; i < 100_000; i++) deepArray = [deepArray];
    expect(await fieldsRefused({ ...README_EVENT, data: { a: deepArray } })).toEqual(["data"]);
  });

  it("refuses non-finite numbers anywhere in data instead of storing them as null", async () => {
    const parsed = JSON.parse('{"big": 1e999}') as Record<string, unknown>;
    expect(parsed.big).toBe(Infinity);
    for (const data of [
      parsed,
      { n: -Infinity },
      { n: NaN },
      { list: [1, 2, Infinity] },
      { deep: { er: [{ n: NaN }] } },
    ]) {
      expect(await fieldsRefused({ ...README_EVENT, data }), JSON.stringify(data)).toEqual(["data"]);
    }
    expect(await fieldsRefused({ ...README_EVENT, data: { n: Number.MAX_VALUE, m: -0, f: 1.5e-300 } })).toEqual([]);
  });

  it("refuses timestamps more than 5 minutes after receipt, to the microsecond", async () => {
    expect(await fieldsRefused({ ...README_EVENT, timestamp: "2024-01-01 12:05:00" })).toEqual([]);
    expect(await reasonsFor({ ...README_EVENT, timestamp: "2024-01-01 12:05:00.000001" })).toEqual([
      ["timestamp", "timestamp is in the future"],
    ]);
    // The same instants written with an offset.
    expect(await fieldsRefused({ ...README_EVENT, timestamp: "2024-01-01T14:05:00+02:00" })).toEqual([]);
    expect(await fieldsRefused({ ...README_EVENT, timestamp: "2024-01-01T07:05:01-05:00" })).toEqual(["timestamp"]);
    // Configurable.
    const strict = { ...LIMITS, maxFutureMicros: 1_000_000 };
    expect(await fieldsRefused({ ...README_EVENT, timestamp: "2024-01-01 12:00:01" }, strict)).toEqual([]);
    expect(await fieldsRefused({ ...README_EVENT, timestamp: "2024-01-01 12:00:02" }, strict)).toEqual(["timestamp"]);
  });

  it("keeps a client's event_id, lower-cased", async () => {
    const id = "0E4A4F6B-3B1C-4C5D-9E7F-8A9B0C1D2E3F";
    const { accepted } = await validate([{ ...README_EVENT, event_id: id }]);
    expect(accepted[0]!.event_id).toBe(id.toLowerCase());
  });

  it("derives a deterministic event_id from the event's content and application when absent", async () => {
    const [a, b] = (await validate([README_EVENT, { ...README_EVENT }])).accepted;
    expect(a!.event_id).toMatch(UUID_V8);
    // Two copies in one request are two events; the same request again maps to the same two ids.
    expect(b!.event_id).toMatch(UUID_V8);
    expect(b!.event_id).not.toBe(a!.event_id);
    const again = (await validate([README_EVENT, { ...README_EVENT, data: { other: 1 } }, { ...README_EVENT }]))
      .accepted;
    expect([again[0]!.event_id, again[2]!.event_id]).toEqual([a!.event_id, b!.event_id]);
    // The same instant written another way is the same event.
    const offset = (await validate([{ ...README_EVENT, timestamp: "2021-01-01T10:15:27.24386+01:00" }])).accepted[0]!;
    expect(offset.event_id).toBe(a!.event_id);

    const differing = [
      { ...README_EVENT, session_id: "other" },
      { ...README_EVENT, category: "other" },
      { ...README_EVENT, name: "other" },
      { ...README_EVENT, data: { ...README_EVENT.data, element: "other" } },
      { ...README_EVENT, timestamp: "2021-01-01 09:15:27.243861" },
    ];
    const ids = (await validate(differing)).accepted.map((e) => e.event_id);
    ids.push((await validate([README_EVENT], LIMITS, "another-app")).accepted[0]!.event_id);
    ids.push((await validate([README_EVENT], LIMITS, null)).accepted[0]!.event_id);
    expect(new Set([a!.event_id, ...ids]).size).toBe(ids.length + 1);
  });

  it("uses the configured limits from wrangler.toml", () => {
    expect(LIMITS).toEqual({
      maxBodyBytes: 1024 * 1024,
      maxDataBytes: 32 * 1024,
      maxEventsPerRequest: 500,
      maxFutureMicros: 300_000_000,
    });
    expect(limitsFrom({ MAX_DATA_BYTES: "nonsense", MAX_FUTURE_SECONDS: "-5" })).toMatchObject({
      maxDataBytes: 32 * 1024,
      maxFutureMicros: 300_000_000,
    });
  });
});

describe("utf8Length", () => {
  it("matches TextEncoder on ASCII, 2-, 3- and 4-byte characters", () => {
    for (const s of ["", "abc", "é", "€uro", astral, `a${astral}é€\u0000\u007f\u0080\u07ff\u0800\uffff`]) {
      expect(utf8Length(s), s).toBe(new TextEncoder().encode(s).byteLength);
    }
  });
});

describe("eventsOf", () => {
  it("takes one object or an array of 1 to 500 events", () => {
    expect(eventsOf(README_EVENT, 500)).toEqual([README_EVENT]);
    expect(eventsOf(Array(500).fill(README_EVENT), 500)).toHaveLength(500);
  });

  it("refuses an empty array, more than the maximum, and anything but objects and arrays", () => {
    for (const body of [[], Array(501).fill(README_EVENT), "text", 42, null, true]) {
      let error: unknown;
      try {
        eventsOf(body, 500);
      } catch (err) {
        error = err;
      }
      expect(error, JSON.stringify(body)?.slice(0, 20)).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(400);
    }
  });
});

describe("eventQuery", () => {
  it("parses every filter, with date-alone bounds at midnight UTC", () => {
    const q = eventQuery.parse({
      session_id: "s",
      category: "c",
      name: "n",
      timestamp_after: "2021-01-01",
      timestamp_before: "2021-01-02 10:00:00.5",
      timestamp_start: "2021-01-01T00:00:00+01:00",
      timestamp_end: "2021-01-03T00:00Z",
      limit: "50",
      offset: "10",
      pagination: "cursor",
    });
    expect(q).toEqual({
      session_id: "s",
      category: "c",
      name: "n",
      timestamp_after: Date.UTC(2021, 0, 1) * 1000,
      timestamp_before: Date.UTC(2021, 0, 2, 10) * 1000 + 500_000,
      timestamp_start: Date.UTC(2020, 11, 31, 23) * 1000,
      timestamp_end: Date.UTC(2021, 0, 3) * 1000,
      limit: 50,
      offset: 10,
      pagination: "cursor",
    });
  });

  it("ignores unknown parameters, as the original did", () => {
    expect(eventQuery.parse({ format: "json", page: "2" })).toEqual({});
  });

  it("refuses bad values, naming the parameter", () => {
    const bad: Record<string, string>[] = [
      { limit: "0" },
      { limit: "-1" },
      { limit: "ten" },
      { limit: "1.5" },
      { limit: String(MAX_LIMIT + 1) },
      { offset: "-3" },
      { offset: String(MAX_OFFSET + 1) },
      { timestamp_after: "2021-13-01" },
      { timestamp_before: "yesterday" },
      { timestamp_start: "2021-02-30" },
      { timestamp_end: "1609459200" },
      { category: "x".repeat(151) },
      { name: "\ud800" },
      { pagination: "pages" },
      { cursor: "c".repeat(201) },
    ];
    for (const query of bad) {
      const result = eventQuery.safeParse(query);
      expect(result.success, JSON.stringify(query)).toBe(false);
      expect(result.error!.issues[0]!.path[0]).toBe(Object.keys(query)[0]);
    }
    expect(eventQuery.parse({ limit: String(MAX_LIMIT), offset: String(MAX_OFFSET) })).toEqual({
      limit: MAX_LIMIT,
      offset: MAX_OFFSET,
    });
    // Empty filters are no filters, as in the original (django-filter).
    expect(
      eventQuery.parse({ session_id: "", category: "", name: "", timestamp_after: "", timestamp_end: "" }),
    ).toEqual({});
  });
});

describe("queueMessage", () => {
  const event = { event_id: crypto.randomUUID(), session_id: "s", category: "c", name: "n", data: "{}", timestamp: 1 };

  it("accepts a pack of events and a pack of refused ones", () => {
    expect(queueMessage.safeParse({ kind: "events", app: null, received_at: 5, events: [event] }).success).toBe(true);
    expect(
      queueMessage.safeParse({
        kind: "invalid",
        app: "a",
        received_at: 5,
        request_id: "r",
        items: [{ payload: "{}", reasons: [{ index: 0, field: "data", message: "m" }] }],
      }).success,
    ).toBe(true);
  });

  it("refuses anything else", () => {
    const bad: unknown[] = [
      null,
      "text",
      {},
      { kind: "other", app: null, received_at: 5, events: [event] },
      { kind: "events", app: null, received_at: 5, events: [] },
      { kind: "events", app: null, received_at: 5.5, events: [event] },
      { kind: "events", received_at: 5, events: [event] },
      { kind: "events", app: null, received_at: 5, events: [{ ...event, event_id: "x" }] },
      { kind: "events", app: null, received_at: 5, events: [{ ...event, data: {} }] },
      { kind: "events", app: null, received_at: 5, events: [{ ...event, data: "not json" }] },
      { kind: "events", app: null, received_at: 5, events: [{ ...event, data: "[1,2]" }] },
      { kind: "events", app: null, received_at: 5, events: [{ ...event, data: "null" }] },
      { kind: "events", app: null, received_at: 5, events: [{ ...event, session_id: "" }] },
      { kind: "events", app: null, received_at: 5, events: [{ ...event, timestamp: "2021-01-01 00:00" }] },
      { kind: "invalid", app: null, received_at: 5, request_id: "r", items: [] },
    ];
    for (const body of bad) expect(queueMessage.safeParse(body).success, JSON.stringify(body)).toBe(false);
  });
});
