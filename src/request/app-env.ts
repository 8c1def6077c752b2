// The Hono context every route sees: the Worker's bindings and per-request values.

import type { Db } from "../db/db";
import type { ContextMode } from "../db/schema";

export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** The application whose key authorised this request, when keys are in use. */
    appId?: string;
    /** Its number in events and counts. */
    appNum?: number;
    /** The key that authorised this request. */
    keyId?: string;
    /** What context its application's events get (context.ts). */
    contextMode?: ContextMode;
    /** Reads for this request, through one D1 session (read-session.ts). */
    reads?: Db;
    readsRaw?: D1DatabaseSession;
  };
}
