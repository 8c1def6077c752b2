import { describe, expect, it } from "vitest";
import { formatTimestamp, parseTimestamp } from "../../src/shared/timestamp";

const micros = (s: string, dateOnly = false) => {
  const r = parseTimestamp(s, dateOnly);
  if (!r.ok) throw new Error(r.message);
  return r.micros;
};

describe("parseTimestamp", () => {
  it("keeps microseconds that a Date would lose", () => {
    expect(micros("2021-01-01 09:15:27.243860")).toBe(Date.UTC(2021, 0, 1, 9, 15, 27) * 1000 + 243860);
    expect(formatTimestamp(micros("2021-01-01 09:15:27.243860"))).toBe("2021-01-01T09:15:27.243860Z");
  });

  it("reads every accepted shape as the same instant", () => {
    const base = micros("2021-01-01T09:15:00Z");
    for (const s of [
      "2021-01-01 09:15",
      "2021-01-01T09:15",
      "2021-01-01 09:15:00",
      "2021-01-01T09:15:00.000000",
      "2021-01-01T10:15:00+01:00",
      "2021-01-01T04:45:00-04:30",
    ]) {
      expect(micros(s), s).toBe(base);
    }
  });

  it("keeps 1–9 fraction digits to the microsecond, dropping the rest", () => {
    expect(micros("2021-01-01 00:00:00.5") % 1_000_000).toBe(500000);
    expect(micros("2021-01-01 00:00:00.123456789") % 1_000_000).toBe(123456);
    expect(micros("2021-01-01 00:00:00.000001") % 1_000_000).toBe(1);
  });

  it("converts offsets across a day boundary", () => {
    expect(formatTimestamp(micros("2021-01-01T00:30:00.1+02:00"))).toBe("2020-12-31T22:30:00.100000Z");
  });

  it("refuses impossible dates and times", () => {
    for (const s of [
      "2021-02-30 10:00",
      "2021-02-29 10:00",
      "2021-13-01 10:00",
      "2021-01-01 24:00",
      "2021-01-01 10:60",
      "2021-01-01 10:00:60",
      "2021-01-01T10:00+25:00",
    ]) {
      expect(parseTimestamp(s).ok, s).toBe(false);
    }
    expect(parseTimestamp("2020-02-29 10:00").ok).toBe(true);
    expect(parseTimestamp("2000-02-29 10:00").ok).toBe(true);
    expect(parseTimestamp("1900-02-29 10:00").ok).toBe(false);
  });

  it("refuses other formats", () => {
    for (const s of [
      "",
      "yesterday",
      "2021-01-01",
      "2021/01/01 10:00",
      "1609492527",
      "2021-01-01 10:00:00.1234567890",
      "2021-01-01T10:00:00 Z",
      " 2021-01-01 10:00",
    ]) {
      expect(parseTimestamp(s).ok, s).toBe(false);
    }
  });

  it("accepts a date alone only where asked (query bounds), as midnight UTC", () => {
    expect(micros("2021-01-02", true)).toBe(Date.UTC(2021, 0, 2) * 1000);
  });
});

describe("formatTimestamp", () => {
  it("omits the fraction when it is zero, as the original did", () => {
    expect(formatTimestamp(Date.UTC(2021, 0, 1, 9, 15, 27) * 1000)).toBe("2021-01-01T09:15:27Z");
  });

  it("renders times before 1970 and small years", () => {
    expect(formatTimestamp(micros("1969-12-31 23:59:59.999999"))).toBe("1969-12-31T23:59:59.999999Z");
    expect(formatTimestamp(micros("0099-03-04 05:06:07.000008"))).toBe("0099-03-04T05:06:07.000008Z");
  });
});
