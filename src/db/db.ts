// The database handle every D1 function takes first, and D1's own limits.
import type { DrizzleD1Database } from "drizzle-orm/d1";

export type Db = DrizzleD1Database<Record<string, unknown>>;

/** D1 binds at most 100 parameters per statement. */
export const D1_MAX_PARAMS = 100;
