// Load generation (autocannon, bounded by duration or request count) and the small HTTP
// helpers the bench uses: the request bodies, a batch poster with retries, waiting for a count.
import autocannon from "autocannon";
import { sleep } from "./servers.mjs";

export const WRITE_KEY = "eye_dev_write_key";
export const READ_KEY = "eye_dev_read_key";
export const WRITE_HEADERS = { "content-type": "application/json", authorization: `Bearer ${WRITE_KEY}` };
export const READ_HEADERS = { authorization: `Bearer ${READ_KEY}` };
/** Connections of every throughput load. */
export const CONNECTIONS = 50;
/**
 * A distinct client per request (`CF-Connecting-IP`, which local wrangler passes through; autocannon
 * replaces `[<id>]`): 50 connections stand for 50+ browsers, as the per-client rate limiter sees them.
 */
export const MANY_CLIENTS = { "cf-connecting-ip": "bench-client-[<id>]" };

/**
 * The i-th of `n` client addresses taking turns (returning browsers), as a CF-Connecting-IP value, which
 * local wrangler passes through. A header value only: every request goes to 127.0.0.1. 198.18.0.0/15 is
 * the range set aside for benchmarks (RFC 2544).
 */
export const poolAddress = (i, n = 1000) => `198.18.${(i % n) >> 8}.${(i % n) & 255}`;
/** A new client per request: the i-th address in a /64 of its own (2001:db8::/32 is the documentation range). */
export const uniqueAddress = (i) => `2001:db8:${((i >>> 16) & 0xffff).toString(16)}:${(i & 0xffff).toString(16)}::1`;

/** The README's example event. `[<id>]` is replaced per request by autocannon, so every event is distinct. */
export function eventJson(seq = 0, id = "[<id>]") {
  return (
    `{"session_id":"${id}","category":"page interaction","name":"cta click",` +
    `"data":{"host":"www.xxxxx.com","path":"/","element":"chat bubble","seq":${seq}},` +
    `"timestamp":"2021-01-01 09:15:27.243860"}`
  );
}
/** A body of `n` events: one object when n = 1 (the original's shape), else an array. */
export function body(n, id) {
  if (n === 1) return eventJson(0, id);
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(eventJson(i, id));
  return `[${parts.join(",")}]`;
}

/**
 * One autocannon run; stops by itself after `duration` seconds or `amount` requests.
 * Returns req/s, latency percentiles and status counts.
 */
export function cannon(
  url,
  {
    connections = 50,
    duration,
    amount,
    method = "GET",
    headers = {},
    body: b,
    idReplacement = false,
    timeout = 30,
    clientPool,
    requestHeaders,
    overallRate,
  },
) {
  return new Promise((resolve, reject) => {
    const statuses = {};
    // autocannon notices that `amount` requests are done only at its next one-second tick, so its
    // duration is then rounded up to whole seconds: a fixed-amount load is timed here instead,
    // from the start to its last response.
    const started = performance.now();
    let lastResponse = started;
    // With a pool, requests take their CF-Connecting-IP from `clientPool` clients in turn: many
    // browsers each sending a few events, as the per-client rate limiter sees them.
    // `requestHeaders(i)` adds headers to the i-th request (another address, another key).
    const perRequest =
      requestHeaders ?? (clientPool ? (i) => ({ "cf-connecting-ip": `bench-pool-${i % clientPool}` }) : null);
    let next = 0;
    const pooled = perRequest
      ? {
          requests: [
            {
              setupRequest(req) {
                req.headers = { ...req.headers, ...perRequest(next++) };
                return req;
              },
            },
          ],
        }
      : {};
    const inst = autocannon(
      {
        url,
        connections,
        ...(amount ? { amount } : { duration }),
        method,
        headers,
        body: b,
        idReplacement,
        timeout,
        ...(overallRate ? { overallRate } : {}),
        ...pooled,
      },
      (err, r) => {
        if (err) return reject(err);
        resolve({
          requests: r.requests.total,
          seconds: amount ? (lastResponse - started) / 1000 : r.duration,
          reqPerSec: r.requests.total / (amount ? (lastResponse - started) / 1000 : r.duration),
          p50: r.latency.p50,
          p99: r.latency.p99,
          mean: r.latency.average,
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          ok: r["2xx"],
          statuses,
        });
      },
    );
    inst.on("response", (_client, status) => {
      statuses[status] = (statuses[status] ?? 0) + 1;
      lastResponse = performance.now();
    });
    // Hard stop: a run never outlives its bound by more than its timeout.
    const hardStop = setTimeout(() => inst.stop(), ((duration ?? 600) + timeout + 5) * 1000);
    inst.on("done", () => clearTimeout(hardStop));
  });
}

/** Runs one autocannon load, with the CPU the server's workerd processes used during it. */
export async function measureLoad(server, label, opts) {
  const role0 = server.cpuByRole();
  const r = await cannon(opts.url ?? `${server.url}/api/event/`, opts);
  const role1 = server.cpuByRole();
  const cpuProxy = role1.proxy - role0.proxy;
  const cpuRuntime = role1.runtime - role0.runtime;
  return { label, ...r, cpuLoad: cpuProxy + cpuRuntime, cpuProxy, cpuRuntime, cpuAtEnd: role1.proxy + role1.runtime };
}

/** A few sequential requests, so an instance has compiled and cached what the first requests touch. */
export async function warm(url, headers, n = 5) {
  for (let i = 0; i < n; i++) {
    const r = await fetch(url, { headers });
    await r.arrayBuffer();
  }
}

/** The `count` of GET /api/event/ for an optional query, or null when the request fails. */
export async function countVisible(baseUrl, query = "") {
  try {
    const res = await fetch(`${baseUrl}/api/event/?limit=1${query}`, {
      headers: READ_HEADERS,
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) {
      await res.arrayBuffer();
      return null;
    }
    return (await res.json()).count;
  } catch {
    return null;
  }
}

/**
 * Polls the count until it reaches `target`; gives up after `timeoutMs`, or `stallMs` without progress.
 * Returns when it got there (ms since the epoch) and the last count seen.
 */
export async function waitForCount(baseUrl, target, { timeoutMs = 180_000, stallMs = 30_000, intervalMs = 100 } = {}) {
  const start = Date.now();
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const n = await countVisible(baseUrl);
    const now = Date.now();
    if (n !== null && n >= target) return { at: now, count: n, reached: true };
    if (n !== null && n !== last) {
      last = n;
      lastChange = now;
    }
    if (now - start > timeoutMs || now - lastChange > stallMs) return { at: now, count: last, reached: false };
    await sleep(intervalMs);
  }
}

/**
 * Posts `total` events as batches of `perRequest` over `concurrency` connections; retries a
 * request answered 429/503 after its Retry-After (a client that must not lose events).
 * `clientPerRequest` gives each request its own CF-Connecting-IP (many clients, as the rate limiter sees them);
 * `makeBody(n, id)` writes each request's body (default: `body`, the README's event).
 */
export async function postBatches(
  baseUrl,
  { total, perRequest, concurrency, runId, headers = {}, clientPerRequest = false, makeBody = body },
) {
  const requests = Math.ceil(total / perRequest);
  let next = 0;
  let accepted = 0;
  let retries = 0;
  const statuses = {};
  const latencies = [];
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= requests) return;
      const n = Math.min(perRequest, total - i * perRequest);
      const text = makeBody(n, `${runId}-${i}`);
      for (let attempt = 0; ; attempt++) {
        const t0 = performance.now();
        const h = {
          ...WRITE_HEADERS,
          ...headers,
          ...(clientPerRequest ? { "cf-connecting-ip": `bench-client-${runId}-${i}` } : {}),
        };
        const res = await fetch(`${baseUrl}/api/event/`, { method: "POST", headers: h, body: text });
        const reply = await res.text();
        latencies.push(performance.now() - t0);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status === 202) {
          accepted += JSON.parse(reply).accepted;
          break;
        }
        if ((res.status === 429 || res.status === 503) && attempt < 50) {
          retries++;
          await sleep(Math.min(Number(res.headers.get("retry-after") ?? 1), 5) * 1000);
          continue;
        }
        throw new Error(`POST answered ${res.status}: ${reply.slice(0, 300)}`);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  latencies.sort((a, b) => a - b);
  return { requests, accepted, retries, statuses, p50: pct(latencies, 50), p99: pct(latencies, 99) };
}

export function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Latency at one connection, measured per request with microsecond resolution (autocannon rounds
 * to whole milliseconds): sequential GETs on one keep-alive connection for `seconds`.
 */
export async function latencyLoop(url, { headers = {}, seconds = 1, maxRequests = 100_000 } = {}) {
  const times = [];
  const statuses = {};
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until && times.length < maxRequests) {
    const t0 = performance.now();
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    times.push(performance.now() - t0);
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
  }
  return { times, statuses };
}

export function summarize(times) {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

/**
 * After a duration-bounded load, requests that were in flight when the client stopped may still have
 * been accepted: wait until the visible count has not moved for `quietMs`, and return it.
 */
export async function settle(baseUrl, { quietMs = 2500, timeoutMs = 60_000 } = {}) {
  const start = Date.now();
  let last = await countVisible(baseUrl);
  let since = Date.now();
  while (Date.now() - start < timeoutMs) {
    await sleep(250);
    const n = await countVisible(baseUrl);
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}
