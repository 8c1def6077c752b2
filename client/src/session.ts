// Session ids: the application owns them; this keeps one for the life of a browser tab
// (sessionStorage: it survives reloads and navigations in the tab, and ends with the tab), or for
// the life of the process elsewhere (Node, Workers: memory).
import { uuidv7 } from "./uuid.js";

const STORAGE_KEY = "the-eye:session";
let inMemory: string | undefined;

/** sessionStorage when the platform has one that works (it throws in some sandboxed frames). */
function tabStorage(): Storage | undefined {
  try {
    const storage = globalThis.sessionStorage;
    return storage && typeof storage.getItem === "function" ? storage : undefined;
  } catch {
    return undefined;
  }
}

/** This tab's (or process's) session id, created on first use. */
export function sessionId(): string {
  const storage = tabStorage();
  try {
    const stored = storage?.getItem(STORAGE_KEY);
    if (stored) return stored;
  } catch {
    // storage refused: fall back to memory below
  }
  inMemory ??= uuidv7();
  try {
    storage?.setItem(STORAGE_KEY, inMemory);
  } catch {
    // a full or refused storage keeps the id in memory only
  }
  return inMemory;
}

/** Ends the current session (a logout, say): the next sessionId() is a new one. */
export function resetSessionId(): string {
  inMemory = undefined;
  try {
    tabStorage()?.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored to remove
  }
  return sessionId();
}
