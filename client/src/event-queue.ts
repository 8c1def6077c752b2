// The tracker's queue: events waiting to be sent, each serialized once, bounded by count and by
// bytes. It alone keeps the queue's byte count, in the few methods that change what it holds.
import { type Serialized, takeBatch, utf8Length } from "./batch.js";
import { type EventInput, type FieldError, SERVER_LIMITS } from "./generated/server.js";

/** An event as this client sends it: every one carries its event_id. */
export type TrackedEvent = EventInput & { event_id: string };

/** A queued event and its JSON. */
export interface Entry extends Serialized {
  event: TrackedEvent;
}

export interface QueueBounds {
  /** Events the queue holds before `overflow` applies. */
  maxEvents: number;
  /** Bytes (serialized) the queue holds before `overflow` applies. */
  maxBytes: number;
  /** What a full queue drops when an event is pushed: the oldest events, or the one being pushed. */
  overflow: "drop-oldest" | "drop-newest";
}

/**
 * The event as a queue entry, or why the server would refuse its `data` (the server's own rule,
 * checked here so that an event that can never be accepted is reported at once instead of
 * costing a request).
 */
export function serialize(event: TrackedEvent): Entry | FieldError {
  let dataJson: string | undefined;
  try {
    dataJson = JSON.stringify(event.data);
  } catch {
    // circular, or a BigInt
  }
  if (dataJson === undefined)
    return { index: 0, field: "data", message: "data cannot be serialized as JSON", rule: "invalid_type" };
  if (utf8Length(dataJson) > SERVER_LIMITS.maxDataBytes)
    return {
      index: 0,
      field: "data",
      message: `data is larger than ${SERVER_LIMITS.maxDataBytes} bytes once serialized`,
      rule: "too_big",
    };
  const s = JSON.stringify;
  const json = `{"session_id":${s(event.session_id)},"category":${s(event.category)},"name":${s(event.name)},"data":${dataJson},"timestamp":${s(event.timestamp)},"event_id":${s(event.event_id)}}`;
  return { event, json, bytes: utf8Length(json) };
}

/** An event read back from storage, serialized as it was stored. */
export function entryOf(event: TrackedEvent): Entry {
  const json = JSON.stringify(event);
  return { event, json, bytes: utf8Length(json) };
}

const bytesOf = (entries: readonly Entry[]) => entries.reduce((n, e) => n + e.bytes, 0);

export class EventQueue {
  private entries: Entry[] = [];
  /** Bytes of `entries`: changed only where `entries` is (append, putBack, shift). */
  private size = 0;
  private readonly bounds: QueueBounds;

  constructor(bounds: QueueBounds) {
    this.bounds = bounds;
  }

  /** Events queued. */
  get length(): number {
    return this.entries.length;
  }

  /** The size of one body of every queued event (bodyBytes of batch.ts, without walking them). */
  get bodyBytes(): number {
    return this.size + 1 + this.entries.length;
  }

  /** The queued events, oldest first. */
  get items(): readonly Entry[] {
    return this.entries;
  }

  /**
   * Queues a newly tracked event under the overflow policy; returns what was dropped: the event
   * itself under drop-newest when it does not fit, else the oldest events it pushed out.
   */
  push(entry: Entry): Entry[] {
    const { maxEvents, maxBytes, overflow } = this.bounds;
    if (overflow === "drop-newest" && (this.length + 1 > maxEvents || this.size + entry.bytes > maxBytes))
      return [entry];
    return this.append([entry]);
  }

  /** Queues events taken over from storage, after those queued; returns the oldest it pushed out. */
  append(entries: Entry[]): Entry[] {
    for (const e of entries) this.entries.push(e);
    this.size += bytesOf(entries);
    return this.bound();
  }

  /** Puts a batch that was not delivered back at the head, in order; returns the oldest it pushed out. */
  putBack(batch: Entry[]): Entry[] {
    this.entries = batch.concat(this.entries);
    this.size += bytesOf(batch);
    return this.bound();
  }

  /** Takes the next batch off the head: at most `maxCount` events and `maxBytes` bytes of body (see takeBatch). */
  take(maxCount: number, maxBytes: number): Entry[] {
    const batch = takeBatch(this.entries, maxCount, maxBytes);
    return this.shift(batch.length);
  }

  /** Drops the oldest events while the queue is over either bound (one event is always kept, however large). */
  private bound(): Entry[] {
    const { maxEvents, maxBytes } = this.bounds;
    let n = 0;
    let bytes = this.size;
    while (this.length - n > maxEvents || (bytes > maxBytes && this.length - n > 1)) {
      bytes -= this.entries[n]!.bytes;
      n++;
    }
    return this.shift(n);
  }

  private shift(n: number): Entry[] {
    if (n === 0) return [];
    const gone = this.entries.slice(0, n);
    this.entries = this.entries.slice(n);
    this.size -= bytesOf(gone);
    return gone;
  }
}
