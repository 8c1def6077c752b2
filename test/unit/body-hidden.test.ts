// body.ts's scan for what JSON.parse hides (duplicate keys, numbers a double changes): it must
// find them in the right event, and never misread strings, escapes or nesting into a false alarm.
import { describe, expect, it } from "vitest";
import { decimal, MAX_NUMBER_CHARS, mediaType, readJson } from "../../src/ingest/body";

const EVENT = '"session_id":"s","category":"c","name":"n","timestamp":"2021-01-01 00:00"';

async function problems(text: string) {
  const request = new Request("http://eye.test/", {
    method: "POST",
    body: text,
    headers: { "content-type": "application/json" },
  });
  const { value, hidden } = await readJson(request, 1024 * 1024);
  return (Array.isArray(value) ? value : [value]).map((_, index) => {
    const found = hidden.get(index);
    if (!found) return null;
    // Each problem names its rule (the error summary counts by it); the assertions below compare the rest.
    const { rule, ...rest } = found;
    expect(rule).toBe(/more than once/.test(found.message) ? "duplicate_key" : "inexact_number");
    return rest;
  });
}

const withData = (data: string) => `{${EVENT},"data":${data}}`;

describe("hidden problems", () => {
  it("sees no problem in strings that look like JSON, escapes, or keys repeated in other objects", async () => {
    for (const data of [
      '{"a":"a","b":"\\"a\\":1,\\"a\\":2","c":"{}[],:-1e400 9007199254740993"}',
      '{"a\\"b":1,"a\\\\":2,"a":3,"a\\\\\\"":4}',
      '{"x":{"a":1},"y":{"a":1},"z":[{"a":1},{"a":1}]}',
      '{"":1,"k":[[],{},[{}],{"":{"":0}}]}',
      '{ "a" : 1 , "b" : -0.5e-3 , "c" : 1.7976931348623157e308 , "d" : 9007199254740992 }',
      '{"n":[0,-0,1.0,1E2,2.50,0.1,5e-324,123456789012345]}',
    ]) {
      expect(await problems(withData(data)), data).toEqual([null]);
    }
  });

  it("finds a key repeated in one object, however deep and however escaped", async () => {
    for (const [data, key] of [
      ['{"a":1,"a":2}', '"a"'],
      ['{ "a" : 1 , "a" : 1 }', '"a"'],
      ['{"x":[{"k":1,"z":{},"k":2}]}', '"k"'],
      ['{"a":1,"\\u0061":2}', '"a"'],
      ['{"a\\\\":1,"a\\\\":2}', '"a\\\\"'],
      ['{"":1,"":2}', '""'],
    ] as const) {
      expect(await problems(withData(data)), data).toEqual([
        { field: "data", message: `data has the key ${key} more than once in one object` },
      ]);
    }
  });

  it("names a repeated event field, and attributes each problem to its own event in a batch", async () => {
    const ok = withData("{}");
    const dupField = `{${EVENT},"data":{},"name":"again"}`;
    const big = withData('{"id":12345678901234567890}');
    expect(await problems(`[${ok}, ${dupField},${ok} ,${big},"x",[{"a":1,"a":2}]]`)).toEqual([
      null,
      { field: "name", message: "name appears more than once in the event" },
      null,
      {
        field: "data",
        message:
          "data holds the number 12345678901234567890, which would be stored as 12345678901234567000; send it as a string",
      },
      null,
      null,
    ]);
  });

  it("checks numbers only inside data, where they are stored", async () => {
    expect(await problems(`{${EVENT},"extra":1e400,"data":{"ok":"1e400"}}`)).toEqual([null]);
    expect(await problems(withData('{"a":[[[{"b":-1e400}]]]}'))).toEqual([
      { field: "data", message: "data holds the number -1e400, too large to store; send it as a string" },
    ]);
    expect((await problems(withData('{"tiny":1e-400}')))[0]?.message).toMatch(/would be stored as 0/);
  });

  it("stays linear and bounded on deep nesting and long tokens", async () => {
    const deep = `${`{"a":`.repeat(100_000)}1e400${"}".repeat(100_000)}`;
    expect((await problems(withData(deep)))[0]).toEqual({
      field: "data",
      message: expect.stringMatching(/^data holds the number 1e400/),
    });
    const longNumber = "1".repeat(400_000);
    const [problem] = await problems(withData(`{"n":${longNumber}}`));
    expect(problem?.message.length).toBeLessThan(120);
    const longKey = "k".repeat(300_000);
    const [dup] = await problems(withData(`{"${longKey}":1,"${longKey}":2}`));
    expect(dup?.message.length).toBeLessThan(120);
  });

  it("normalizes numbers with long runs of zeros (its time is tested under Node: test/node/)", () => {
    expect(decimal(`1.${"0".repeat(40_000)}1`)).toBe(`0.1${"0".repeat(40_000)}1e1`);
    expect(decimal(`-0.000${"0".repeat(40_000)}`)).toBe("0");
    expect(decimal(`0.00${"0".repeat(40_000)}12000e5`)).toBe(`0.12e${5 - 40_002}`);
    expect(decimal("-120.0500e-2")).toBe("-0.12005e1");
  });

  it("checks numbers up to the cap digit by digit, and refuses longer ones at once", async () => {
    // Under the cap: reaches the exact comparison, which sees that a double would drop the last digit.
    const near = `1.${"0".repeat(MAX_NUMBER_CHARS - 3)}1`;
    expect(near.length).toBe(MAX_NUMBER_CHARS);
    expect((await problems(withData(`{"n":${near}}`)))[0]).toEqual({
      field: "data",
      message: expect.stringMatching(
        /^data holds the number 1\.0{38}…, which would be stored as 1; send it as a string$/,
      ),
    });
    // Zeros out to the exponent range still survive as doubles, and are accepted.
    expect(await problems(withData(`{"tiny":0.${"0".repeat(300)}1,"big":1${"0".repeat(300)}}`))).toEqual([null]);
    // A megabyte-long number: refused by its length, without normalizing it.
    const [huge] = await problems(withData(`{"n":1.${"0".repeat(1_000_000)}1}`));
    expect(huge?.message).toMatch(new RegExp(`of more than ${MAX_NUMBER_CHARS} characters; send it as a string`));
  });
});

describe("media types", () => {
  it("reads parameters as RFC 9110 writes them: any case, quoted or not", () => {
    for (const header of [
      'application/json; charset="UTF-8"',
      "application/json;charset=utf-8",
      'Application/JSON ; CHARSET = "utf-8" ',
      'text/plain; foo="a;b"; charset=utf-8',
    ]) {
      const { type, params } = mediaType(header);
      expect(type, header).toMatch(/^(application\/json|text\/plain)$/);
      expect(params.get("charset")?.toLowerCase(), header).toBe("utf-8");
    }
    expect(mediaType('text/plain; charset="a\\"b"').params.get("charset")).toBe('a"b');
    expect(mediaType("application/json").params.size).toBe(0);
  });
});
