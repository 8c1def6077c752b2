// Published prices the cost phase multiplies its counted operations by, each with its source page.
// Collected 2026-11-28 from stored copies of these pages (no dates shown on the Cloudflare pricing
// pages unless noted); check them before relying on a figure.

export const PRICES = {
  // https://developers.cloudflare.com/workers/platform/pricing/ (Workers Paid / Standard)
  workers: {
    baseMonthly: 5, // "minimum charge of $5 USD per month for an account"
    includedRequests: 10e6, // "10 million included per month
    perMillionRequests: 0.3, //  +$0.30 per additional million"
    includedCpuMs: 30e6, // "30 million CPU milliseconds included per month
    perMillionCpuMs: 0.02, //  +$0.02 per additional million CPU milliseconds"
  },
  // https://developers.cloudflare.com/queues/platform/pricing/
  queues: {
    includedOps: 1e6, // Workers Paid "1,000,000 operations/month included
    perMillionOps: 0.4, //  + $0.40/million operations"; "An operation is counted for each 64 KB of data that is
    //                      written, read, or deleted"; "it takes 3 operations to deliver a message: 1 write, 1 read, and 1 delete"
  },
  // https://developers.cloudflare.com/d1/platform/pricing/
  d1: {
    includedRowsRead: 25e9, // "First 25 billion / month included
    perMillionRowsRead: 0.001, //  + $0.001 / million rows"
    includedRowsWritten: 50e6, // "First 50 million / month included
    perMillionRowsWritten: 1.0, //  + $1.00 / million rows"
    includedGb: 5, // "First 5 GB included
    perGbMonth: 0.75, //  + $0.75 / GB-mo"
  },
  // https://developers.cloudflare.com/r2/pricing/ (Standard storage)
  r2: {
    perGbMonth: 0.015, // "$0.015 / GB-month"
    includedGbMonth: 10, // free tier "10 GB-month / month"
    perMillionClassA: 4.5, // Class A (PutObject, ListObjects) "$4.50 / million requests"
    includedClassA: 1e6, // "1 million requests / month" (Class A)
    perMillionClassB: 0.36,
  },
};

// Per-event prices of hosted analytics, as far as they are published.
export const THIRD_PARTY = {
  posthog: {
    // https://posthog.com/blog/analytics-pricing (2024-08-01): first 1 million events a month free, then per anonymous event
    // $0.0000500 (1–2M), $0.0000343 (2–15M), $0.0000295 (15–50M), $0.0000218 (50–100M), $0.0000150 (100–250M), $0.0000090 (250M+).
    note:
      "$50 per million anonymous events in the 1–2 M tier down to $9 per million past 250 M a month (identified events $248 down to $10 per million), " +
      "the first million a month free; 10 M events a month cost $324.40 ($32.44 per million), the blog's own example (posthog.com/blog/analytics-pricing, 2024-08-01)",
  },
  segment: {
    note:
      "not published: Segment bills by monthly tracked users, and its Team price is not on a page we could read; a third-party summary's $120 a month for 10,000 MTUs " +
      "at Segment's documented 250 calls per MTU would be ≈ $48 per million calls (unverified)",
  },
  amplitude: {
    note: "not derivable: Amplitude bills by monthly tracked users and its price page was not available; no per-event price is published",
  },
};
