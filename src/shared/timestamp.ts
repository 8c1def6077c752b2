// Timestamps as integer microseconds since the Unix epoch (UTC): parsing the formats the
// original accepted, and rendering the way it rendered. JavaScript's Date keeps only
// milliseconds, so the fraction is carried separately and never goes through a Date.

/** An hour and a day in microseconds: the roll-ups' bucket and retention's unit. */
export const HOUR = 3_600_000_000;
export const DAY = 24 * HOUR;

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?$/;

export type ParsedTimestamp = { ok: true; micros: number } | { ok: false; message: string };

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

/**
 * Parses `YYYY-MM-DD HH:MM[:SS[.f…]]` or ISO 8601 with `T`, optional `Z`/`±HH:MM`
 * (no offset means UTC). A date alone (`YYYY-MM-DD`, midnight UTC) is accepted only
 * when `allowDateOnly` is set: query bounds may be dates, events need a time.
 */
export function parseTimestamp(input: string, allowDateOnly = false): ParsedTimestamp {
  const m = DATETIME.exec(input);
  if (!m) {
    return {
      ok: false,
      message: allowDateOnly
        ? "expected YYYY-MM-DD or YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]][Z|±HH:MM]"
        : "expected YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]][Z|±HH:MM]",
    };
  }
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  if (h === undefined && !allowDateOnly) {
    return { ok: false, message: "a time is required: YYYY-MM-DD HH:MM[:SS[.ffffff]]" };
  }
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return { ok: false, message: `${y}-${mo}-${d} is not a date that exists` };
  }
  if (hour > 23 || minute > 59 || second > 59) {
    return { ok: false, message: "time of day out of range" };
  }
  let offsetMinutes = 0;
  if (offset && offset !== "Z") {
    const oh = Number(offset.slice(1, 3));
    const om = Number(offset.slice(4, 6));
    if (oh > 23 || om > 59) return { ok: false, message: "UTC offset out of range" };
    offsetMinutes = (offset[0] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  // Kept to the microsecond; digits past the sixth are dropped, as the original did.
  const micros = Number((frac ?? "").slice(0, 6).padEnd(6, "0"));
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute - offsetMinutes, second, 0);
  return { ok: true, micros: date.getTime() * 1000 + micros };
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** Renders `YYYY-MM-DDTHH:MM:SS.ffffffZ`, or `YYYY-MM-DDTHH:MM:SSZ` when the microseconds are zero. */
export function formatTimestamp(micros: number): string {
  const fraction = ((micros % 1_000_000) + 1_000_000) % 1_000_000;
  const date = new Date((micros - fraction) / 1000);
  const base =
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  return fraction === 0 ? `${base}Z` : `${base}.${pad(fraction, 6)}Z`;
}

/** The current time in microseconds (the Workers clock has millisecond resolution). */
export function nowMicros(): number {
  return Date.now() * 1000;
}
