// What a warm isolate remembers of a filter's last pages: which of its index ranges held more than
// their share of the page, and how many rows each held. Pages of one filter are often alike (a
// poll, the next page), so the next read starts those ranges with about as many rows and most
// often ends in one round (event-reads.ts readGeneration). Bounded: 1,000 filters, 25 ranges each,
// a minute each.
import { BoundedCache } from "../shared/bounded-cache";

const shapes = new BoundedCache<Record<string, number>>(1_000);
const SHAPE_MS = 60_000;
const SHAPE_RANGES = 25;

/**
 * Each range's first read for a page of `n`: its share (`per`), or about what it held of the last
 * page under `key` (two standard deviations more, and one), at most `n`.
 */
export function firstLimits(key: string, ranges: { key: string }[], per: number, n: number): number[] {
  const held = shapes.get(key);
  return ranges.map(({ key: k }) => {
    const c = held?.[k];
    return c === undefined ? per : Math.max(per, Math.min(n, Math.ceil(c + 2 * Math.sqrt(c)) + 1));
  });
}

/** Remembers under `key` the ranges that held at least `per` rows of `page` (each row is one range's). */
export function rememberShape<R>(key: string, ranges: { key: string; rows: R[] }[], page: R[], per: number): void {
  const of = new Map<R, string>();
  for (const range of ranges) for (const row of range.rows) of.set(row, range.key);
  const counts = new Map<string, number>();
  for (const row of page) {
    const k = of.get(row)!;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const over = [...counts]
    .filter(([, c]) => c >= per)
    .sort((a, b) => b[1] - a[1])
    .slice(0, SHAPE_RANGES);
  if (over.length === 0) shapes.delete(key);
  else shapes.set(key, Object.fromEntries(over), SHAPE_MS);
}
