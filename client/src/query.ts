// The reading side, for read keys: one page, every page (cursor mode, following `next`), every
// event, one session's events, one event's receipt.
import { type CursorPage, type EventQuery, SERVER_LIMITS, type StoredEvent } from "./generated/server.js";
import { backoff, type Fetch, retryAfterMs, sleep, timeoutSignal } from "./http.js";

/** The filters this client passes on: names checked against the server's query schema at compile time. */
const FILTERS = [
  "session_id",
  "category",
  "name",
  "country",
  "device",
  "timestamp_after",
  "timestamp_before",
] as const satisfies readonly (keyof EventQuery)[];

export interface EventFilters {
  /** Exact match. */
  session_id?: EventQuery["session_id"];
  /** Exact match. */
  category?: EventQuery["category"];
  /** Exact match. */
  name?: EventQuery["name"];
  /** Country of the sending request (ISO 3166-1 alpha-2, any case). */
  country?: EventQuery["country"];
  /** Device type parsed from the sending request's User-Agent. */
  device?: EventQuery["device"];
  /** Inclusive lower bound: a Date, or the server's formats (a date alone is midnight UTC). */
  timestamp_after?: EventQuery["timestamp_after"] | Date;
  /** Inclusive upper bound. */
  timestamp_before?: EventQuery["timestamp_before"] | Date;
  /** Events per page, 1 to the server's maximum (1000). Default 100. */
  limit?: number;
}

/** A page as page() and pages() give it: this client always asks for cursor pages. */
export type Page = CursorPage;

/** A non-2xx answer, with the server's error code and request id. */
export class EyeError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly requestId: string | undefined;

  constructor(status: number, code: string | undefined, message: string, requestId: string | undefined) {
    super(message);
    this.name = "EyeError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

export interface QueryClientOptions {
  /** The Eye's base URL. */
  endpoint: string;
  /** A read key: always sent as `Authorization: Bearer` (the server refuses read keys in URLs). */
  readKey: string;
  /** Retries of a page on a network error, 429 or 5xx. Default 3. */
  maxRetries?: number;
  /** First backoff in ms. Default 500. */
  retryBaseDelay?: number;
  /** Per-request timeout in ms. Default 30000. */
  timeout?: number;
  fetch?: Fetch;
}

/** The header a read answers with and a later read sends back (D1's Sessions API: a state at least that new). */
const BOOKMARK = "x-d1-bookmark";

export class QueryClient {
  private readonly options: QueryClientOptions;
  private readonly base: string;
  private readonly fetchFn: Fetch;
  /** The newest D1 bookmark an answer carried: sent with every later request, so reads never step back in time. */
  private bookmark: string | undefined;

  constructor(options: QueryClientOptions) {
    this.options = options;
    this.base = options.endpoint.replace(/\/+$/, "");
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The first page of events matching `filters` (cursor mode), newest first. */
  page(filters: EventFilters = {}): Promise<Page> {
    return this.get<Page>(`/api/event/?${queryString(filters)}`);
  }

  /**
   * Every page, following `next` until it is null: no event twice, and none stored before the walk
   * began is skipped. Each request sends the bookmark of the answer before it (X-D1-Bookmark), so
   * with read replicas no page is read from an older state than the page before it.
   */
  pages(filters: EventFilters = {}): AsyncGenerator<Page> {
    return this.walk(`/api/event/?${queryString(filters)}`);
  }

  /** Every matching event, newest first: `for await (const e of eye.events({ category: "nav" }))`. */
  async *events(filters: EventFilters = {}): AsyncGenerator<StoredEvent> {
    for await (const page of this.pages(filters)) yield* page.results;
  }

  /** One session's events in the order they happened (GET /api/sessions/{id}/events). */
  async *session(sessionId: string, filters: Omit<EventFilters, "session_id"> = {}): AsyncGenerator<StoredEvent> {
    for await (const page of this.walk(`/api/sessions/${encodeURIComponent(sessionId)}/events?${queryString(filters)}`))
      yield* page.results;
  }

  /** The stored event with this event_id (a delivery receipt), or null while it is not stored. */
  async event(eventId: string): Promise<StoredEvent | null> {
    try {
      return await this.get<StoredEvent>(`/api/event/${encodeURIComponent(eventId)}`);
    } catch (err) {
      if (err instanceof EyeError && err.status === 404) return null;
      throw err;
    }
  }

  private async *walk(first: string): AsyncGenerator<Page> {
    let path: string | null = first;
    // The walk's own bookmark: another walk of this client running alongside cannot move it back.
    let bookmark = this.bookmark;
    while (path !== null) {
      const answer: { body: Page; bookmark?: string } = await this.request<Page>(path, bookmark);
      const page = answer.body;
      bookmark = answer.bookmark ?? bookmark;
      yield page;
      // `next` is absolute, built from the URL the server saw; its query string is followed on
      // this client's endpoint, so a proxy in front of The Eye cannot send the walk elsewhere.
      path = page.next === null ? null : `${new URL(path, "http://x").pathname}${new URL(page.next).search}`;
    }
  }

  private async get<T>(path: string): Promise<T> {
    return (await this.request<T>(path, this.bookmark)).body;
  }

  /** One GET with retries; the answer's body and the bookmark it carried (also kept as the client's newest). */
  private async request<T>(path: string, bookmark: string | undefined): Promise<{ body: T; bookmark?: string }> {
    const { maxRetries = 3, retryBaseDelay = 500, timeout = 30_000 } = this.options;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.readKey}`,
      accept: "application/json",
    };
    if (bookmark !== undefined) headers[BOOKMARK] = bookmark;
    for (let attempt = 0; ; attempt++) {
      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await this.fetchFn(`${this.base}${path}`, {
          method: "GET",
          headers,
          signal: timeoutSignal(timeout),
        });
      } catch (err) {
        failure = err;
      }
      const retryable = response === undefined || response.status === 429 || response.status >= 500;
      if (retryable && attempt < maxRetries) {
        const floor = retryAfterMs(response?.headers.get("retry-after") ?? null) ?? 0;
        await response?.body?.cancel().catch(() => {});
        await sleep(Math.max(floor, backoff(attempt, retryBaseDelay, 30_000)));
        continue;
      }
      if (response === undefined) throw failure;
      const body = (await response.json().catch(() => ({}))) as {
        code?: string;
        message?: string;
        request_id?: string;
      };
      if (!response.ok)
        throw new EyeError(response.status, body.code, body.message ?? `HTTP ${response.status}`, body.request_id);
      const reached = response.headers.get(BOOKMARK) ?? undefined;
      if (reached !== undefined) this.bookmark = reached;
      return { body: body as T, bookmark: reached };
    }
  }
}

/** The query string for `filters`, in cursor mode. */
export function queryString(filters: Omit<EventFilters, "session_id"> & Pick<EventFilters, "session_id">): string {
  const params = new URLSearchParams({ pagination: "cursor" });
  for (const key of FILTERS) {
    const value = filters[key];
    if (value !== undefined) params.set(key, value instanceof Date ? value.toISOString() : value);
  }
  if (filters.limit !== undefined) {
    if (!Number.isInteger(filters.limit) || filters.limit < 1 || filters.limit > SERVER_LIMITS.maxPageSize) {
      throw new RangeError(`limit must be a whole number from 1 to ${SERVER_LIMITS.maxPageSize}`);
    }
    params.set("limit", String(filters.limit));
  }
  return params.toString();
}

/** A query client: `createQueryClient({ endpoint, readKey }).events({ session_id })`. */
export function createQueryClient(options: QueryClientOptions): QueryClient {
  return new QueryClient(options);
}
