// `persist`: a page's unsent events kept in localStorage, so that the next page of the origin
// sends them. Each tracker writes a slot of its own (two tabs never overwrite each other) and
// takes over the slots that earlier pages left.
import { bodyOf, type Serialized } from "./batch.js";
import { type Entry, entryOf, type TrackedEvent } from "./event-queue.js";
import { uuidv7 } from "./uuid.js";

const STORAGE_PREFIX = "the-eye:queue:";

function localStore(): Storage | undefined {
  try {
    const storage = globalThis.localStorage;
    return storage && typeof storage.setItem === "function" ? storage : undefined;
  } catch {
    return undefined;
  }
}

export class QueueStorage {
  private readonly storage = localStore();
  /** The slots of this origin's trackers of the same `persist` name. */
  private readonly slot: string;
  private readonly key: string;
  private saveQueued = false;

  constructor(name: string) {
    this.slot = `${STORAGE_PREFIX}${name}:`;
    this.key = `${this.slot}${uuidv7()}`;
  }

  /** The events earlier pages left in storage, each once; their slots are removed. */
  adopt(): Entry[] {
    const storage = this.storage;
    if (!storage) return [];
    const known = new Set<string>();
    const adopted: Entry[] = [];
    try {
      const keys: string[] = [];
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i);
        if (key?.startsWith(this.slot) && key !== this.key) keys.push(key);
      }
      for (const key of keys) {
        let events: unknown = [];
        try {
          events = JSON.parse(storage.getItem(key) ?? "[]");
        } catch {
          // a damaged slot is dropped
        }
        storage.removeItem(key);
        for (const event of Array.isArray(events) ? (events as TrackedEvent[]) : []) {
          if (typeof event?.event_id !== "string" || known.has(event.event_id)) continue;
          known.add(event.event_id);
          adopted.push(entryOf(event));
        }
      }
    } catch {
      // storage unavailable: nothing to adopt
    }
    return adopted;
  }

  /** Stores what is not known to be delivered (the slot is removed when nothing is). */
  save(pending: () => readonly Serialized[]): void {
    if (!this.storage) return;
    const items = pending();
    try {
      if (items.length === 0) this.storage.removeItem(this.key);
      else this.storage.setItem(this.key, bodyOf(items));
    } catch {
      // quota exceeded or storage refused: the events are still in memory
    }
  }

  /** One storage write per burst of track() calls. */
  saveSoon(pending: () => readonly Serialized[]): void {
    if (!this.storage || this.saveQueued) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      this.save(pending);
    });
  }
}
