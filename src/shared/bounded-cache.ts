// A per-isolate memory with a size bound and an expiry per entry: what lets a warm isolate
// answer without a D1 read or a binding call, and what a flood of distinct values cannot grow.

export class BoundedCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(readonly capacity: number) {}

  /** The value while it has not expired; a hit moves the entry to the back of the eviction order. */
  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expires <= now) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Remembers a value for `ttlMs`; when full, the least recently used entry makes room. */
  set(key: string, value: V, ttlMs: number, now = Date.now()): void {
    this.entries.delete(key);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, expires: now + ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
