// Turns the bench's results into the markdown table it prints and writes into BENCHMARKS.md.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 100 ? n0(x) : x.toFixed(1));
const n2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "—");
const statuses = (s) =>
  Object.entries(s ?? {})
    .map(([k, v]) => `${k}: ${n0(v)}`)
    .join(", ");
const yes = (ok) => (ok ? "yes" : "**no**");

export function render(R) {
  const out = [];
  const m = R.meta;
  out.push(`### Run: ${m.mode}, ${m.date.slice(0, 16).replace("T", " ")} UTC, ${m.totalSeconds?.toFixed(0)} s`);
  out.push("");
  out.push(
    `Commit ${m.git} (code snapshot ${m.snapshot ?? "?"}); ${m.cpus} × ${m.cpuModel}, load average ${m.loadavgAtStart} at start and ${m.loadavgAtEnd ?? "?"} at the end (1/5/15 min; the machine is shared with other work). ` +
      `Node ${m.node} (bench, wrangler ${m.wrangler}, workerd ${m.workerd}); raw SQLite: node:sqlite (SQLite ${m.sqlite}) under ${m.sqliteNode}; autocannon ${m.autocannon}, ` +
      `on the same cores as the servers. The Worker runs as \`npm run dev\` runs it (\`${m.devCommand}\`), each instance with its own port and --persist-to.`,
  );
  out.push("");

  if (R.ingest.length) {
    const D = m.sizes.ingestSeconds;
    const triv = R.ingest.find((r) => r.key === "trivial");
    const trivQ = R.ingest.find((r) => r.key === "trivial-quiet");
    out.push(`#### 1. Ingest HTTP — 50 connections, ${D} s per load`);
    out.push("");
    out.push(
      "| load | req/s | events accepted/s | p50 / p99 ms | × trivial req/s | statuses | workerd CPU µs per accepted event during load (wrangler proxy + Worker runtime) | … incl. consumer, until drained | stored/s (until drained) |",
    );
    out.push("|---|---:|---:|---:|---:|---|---:|---:|---:|");
    for (const r of R.ingest) {
      const base = r.key.endsWith("quiet") ? trivQ : triv;
      const vs = r.key.startsWith("trivial") ? "1.00×" : ratio(r.acceptedReqPerSec, base?.reqPerSec);
      out.push(
        `| ${r.label} | ${n0(r.reqPerSec)} | ${n0(r.eventsPerSec)} | ${r.p50} / ${r.p99} | ${vs} | ${statuses(r.statuses)}${r.errors ? `, errors: ${r.errors}` : ""} | ` +
          `${n0(r.cpuPerEventUs)} (${n0(r.proxyPerEventUs)} + ${n0(r.runtimePerEventUs)}) | ${r.cpuTotalPerEventUs !== undefined ? n0(r.cpuTotalPerEventUs) : "—"} | ${r.storedPerSec !== undefined ? `${n0(r.storedPerSec)}${r.drained ? "" : " (not drained)"}` : "—"} |`,
      );
    }
    out.push("");
    const single = R.ingest.find((r) => r.key === "single");
    const b500 = R.ingest.find((r) => r.key === "batch500");
    const b100 = R.ingest.find((r) => r.key === "batch100");
    const singleQ = R.ingest.find((r) => r.key === "single-quiet");
    const pool = R.ingest.find((r) => r.key === "single-pool");
    out.push(
      `Targets: single-event POST ≥ 0.6 × trivial → ${ratio(single?.acceptedReqPerSec, triv?.reqPerSec)} with a new client per request (${yes(single && triv && single.acceptedReqPerSec >= 0.6 * triv.reqPerSec)})` +
        (pool && triv
          ? `, ${ratio(pool.acceptedReqPerSec, triv.reqPerSec)} with 1,000 clients taking turns (${yes(pool.acceptedReqPerSec >= 0.6 * triv.reqPerSec)})`
          : "") +
        (singleQ && trivQ
          ? `; with wrangler's request log off ${ratio(singleQ.acceptedReqPerSec, trivQ.reqPerSec)}`
          : "") +
        `. Batched ≥ 50,000 events/s → 100-event ${n0(b100?.eventsPerSec)}, 500-event ${n0(b500?.eventsPerSec)} (${yes(Math.max(b100?.eventsPerSec ?? 0, b500?.eventsPerSec ?? 0) >= 50_000)}).`,
    );
    if (R.ablation?.length) {
      out.push("");
      out.push(
        "Ablation (the probe: the real Worker with bindings swapped for no-ops by a request header, same load, 50 connections):",
      );
      out.push("");
      out.push(
        "| variant | req/s accepted | events/s accepted | p50 / p99 ms | workerd CPU µs per event during load (proxy + runtime) |",
      );
      out.push("|---|---:|---:|---:|---:|");
      for (const a of R.ablation)
        out.push(
          `| ${a.label} | ${n0(a.acceptedReqPerSec)} | ${n0(a.eventsPerSec ?? a.acceptedReqPerSec)} | ${a.p50} / ${a.p99} | ${n0(a.proxyPerEventUs + a.runtimePerEventUs)} (${n0(a.proxyPerEventUs)} + ${n0(a.runtimePerEventUs)}) |`,
        );
      out.push("");
    }
    out.push(
      "Each POST carries the README's example event (batches: that event ×N with distinct `data.seq`), a unique `session_id` per request, and its own " +
        "`CF-Connecting-IP` (many clients, as the per-client rate limiter sees them; the 1,000-client row reuses 1,000 addresses in turn, as returning browsers do; the one-client row shows the limiter at work). " +
        "CPU is utime+stime of the instance's workerd processes (wrangler's proxy and the Worker's runtime) from /proc/<pid>/stat; " +
        '"incl. consumer" runs until every accepted event is visible through GET, so it includes the queue and the D1 writes.',
    );
    out.push("");
  }

  if (R.keyCache?.length) {
    out.push("#### Key cache — single-event POSTs with and without the per-isolate key cache (issue 3)");
    out.push("");
    out.push("| load | accepted req/s | p50 / p99 ms (worst pass) | workerd CPU µs per accepted event |");
    out.push("|---|---:|---:|---:|");
    for (const r of R.keyCache)
      out.push(`| ${r.label} | ${n0(r.acceptedReqPerSec)} | ${n1(r.p50)} / ${n1(r.p99)} | ${n0(r.cpuPerEventUs)} |`);
    const [on, off] = R.keyCache;
    if (on && off)
      out.push(
        "",
        `With the cache: ${(on.acceptedReqPerSec / off.acceptedReqPerSec).toFixed(2)}× the requests/s of a D1 key lookup per request. Two interleaved passes per variant, 50 connections, a client per request; the uncached instance runs with \`--var KEY_CACHE_SECONDS:0\`.`,
      );
    out.push("");
  }

  if (R.e2e.length || R.counts.length) {
    out.push("#### 2. End to end — first POST until all visible through GET (`count`)");
    out.push("");
    if (R.e2e.length) {
      out.push(
        "| run | events stored | POSTs took s | first POST → all visible, s | events/s end to end | POST p50 / p99 ms | statuses |",
      );
      out.push("|---|---:|---:|---:|---:|---:|---|");
      for (const r of R.e2e) {
        out.push(
          `| ${r.label} | ${n0(r.visible)}${r.reached ? "" : " (**not all**)"} | ${n2(r.postSeconds)} | ${n2(r.seconds)} | ${n0(r.visible / r.seconds)} | ${n1(r.p50)} / ${n1(r.p99)} | ${statuses(r.statuses)}${r.retries ? `, retried ${r.retries}` : ""} |`,
        );
      }
      out.push("");
      const big = R.e2e[R.e2e.length - 1];
      out.push(
        `Target ≥ 20,000 events/s end to end for 100,000 events: ${n0(big.visible / big.seconds)} (${yes(big.visible / big.seconds >= 20_000)}); the original stored 100–200 events/s.`,
      );
      out.push("");
    }
    if (R.counts.length) {
      out.push(
        "| POST size | events | queue messages | per 1,000 events | D1 statements | per 1,000 events | queue() batches | rows per queue() batch min / median / max |",
      );
      out.push("|---|---:|---:|---:|---:|---:|---:|---|");
      for (const c of R.counts) {
        out.push(
          `| ${c.perRequest} | ${n0(c.events)} | ${n0(c.messages)} | ${n1(c.messagesPer1000)} | ${n0(c.d1Statements)} | ${n1(c.statementsPer1000)} | ${n0(c.queueBatches)} | ${c.batchRows.min} / ${c.batchRows.p50} / ${c.batchRows.max} |`,
        );
      }
      out.push("");
      out.push(
        "Counted, not estimated: the probe (bench/probe/) runs the real Worker with its Queue binding wrapped to count messages sent " +
          "and, in queue(), its D1 binding wrapped to count statements (batched or single).",
      );
      out.push("");
    }
  }

  if (R.consumer.length) {
    const raw = R.consumer.find((c) => c.variant === "sqlite_single");
    const rawV = R.consumer.find((c) => c.variant === "sqlite_json_each");
    out.push(
      `#### 3. Consumer — ${n0(R.consumer[0].rows)} rows, transactions of ${n0(R.consumer[0].rowsPerTxn)} rows (one consumer batch of 20 messages × 250 events)`,
    );
    out.push("");
    out.push(
      "| writer | rows/s | × raw SQLite, bare single-row INSERTs | × raw SQLite, json_each + the handler's other statements | D1 statements per transaction |",
    );
    out.push("|---|---:|---:|---:|---:|");
    for (const c of R.consumer) {
      out.push(
        `| ${c.writer} | ${n0(c.rowsPerSec)} | ${ratio(c.rowsPerSec, raw?.rowsPerSec)} | ${ratio(c.rowsPerSec, rawV?.rowsPerSec)} | ${c.statementsPerTxn ?? ""} |`,
      );
    }
    out.push("");
    const real = R.consumer.find((c) => c.variant === "real");
    out.push(
      `Target: queue() handler ≥ 0.5 × raw SQLite → ${ratio(real?.rowsPerSec, raw?.rowsPerSec)} of the bare single-row insert ceiling (${yes(real && raw && real.rowsPerSec >= 0.5 * raw.rowsPerSec)}). ` +
        "The workerd rows are timed from Node around one HTTP request per batch to the probe, which calls the real `queue()` export with " +
        "a MessageBatch of those messages (so zod parsing, plan() and the D1 batch are in; the local queue broker is not) — or, for the two " +
        "prototype rows, the same rows, planned by the handler's plan(), through another INSERT, with the other statements insertAll() sends " +
        "(recorded from the real insertAll()). Raw SQLite: a fresh file with migrations/*.sql applied, WAL, synchronous=NORMAL; the bare " +
        "single-row row does only the INSERTs, the other two also run insertAll()'s other statements in each transaction.",
    );
    out.push("");
  }

  if (R.fix?.length) {
    const small = Math.min(10_000, m.sizes.e2eBatch);
    const big = m.sizes.e2eBatch > small ? m.sizes.e2eBatch : undefined;
    out.push("#### Levers measured inside the pipeline: the consumer's INSERT shape, the queue's batch timeout");
    out.push("");
    out.push(
      `| consumer insert | events queue | e2e ${n0(small)} events, events/s (s) | ${big ? `e2e ${n0(big)} events, events/s (s)` : "(no larger e2e in a quick run)"} | 500-event POSTs at 50 connections: accepted events/s | p50 / p99 ms | stored/s until drained | workerd CPU µs per event until drained |`,
    );
    out.push("|---|---|---:|---:|---:|---:|---:|---:|");
    for (const f of R.fix) {
      const e = (x) => (x ? `${n0(x.perSec)} (${n2(x.seconds)})${x.reached ? "" : " not all"}` : "—");
      out.push(
        `| ${{ real: "the queue() handler, as in src/", values12: "bench prototype: 12-row INSERT…VALUES", json_each: "bench prototype: json_each per 512 KiB" }[f.mode]} | ${f.settings} | ${e(f.small)} | ${e(f.big)} | ` +
          `${f.ingestPerSec !== undefined ? n0(f.ingestPerSec) : "—"} | ${f.p50 !== undefined ? `${f.p50} / ${f.p99}` : "—"} | ${f.storedPerSec !== undefined ? n0(f.storedPerSec) : "—"} | ${f.totalPerEventUs !== undefined ? n0(f.totalPerEventUs) : "—"} |`,
      );
    }
    out.push("");
    out.push(
      "Through the probe (the real Worker; its queue() switched at run time between the real handler and a prototype, which keeps the " +
        "handler's plan() and insertAll()'s other statements in the same D1 batch and only changes how the rows are INSERTed); the last row " +
        "runs a probe whose generated wrangler.toml sets the events queue's max_batch_timeout to 0.",
    );
    out.push("");
  }

  if (R.query) {
    const q = R.query;
    out.push(
      `#### 4. Queries at ${n0(q.rows)} events — limit 100, 1 connection, ${m.sizes.latencySeconds} s per shape in ${q.passes} interleaved passes`,
    );
    out.push("");
    out.push(
      `Trivial Worker GET at 1 connection, same passes: p50 ${n2(q.trivialP50)} ms, p99 ${n2(q.trivialP99)} ms (${n0(q.trivialN)} requests). ` +
        `Target p50 ≤ 3× trivial = ${n2(3 * q.trivialP50)} ms. Latency is per request from the client (sequential fetches on one keep-alive connection), body read in full.`,
    );
    out.push("");
    out.push(
      "| shape | results (count) | Worker p50 / p99 ms | × trivial p50 | D1 rows_read: page + count | raw SQLite p50 / p99 ms | rows_read target |",
    );
    out.push("|---|---:|---:|---:|---:|---:|---|");
    for (const s of q.shapes) {
      const limit = 100;
      let target;
      if (s.mode === "cursor") target = `≤ ${limit + 1}: ${yes(s.rowsRead <= limit + 1)}`;
      else {
        const listOk = s.rowsReadList <= s.offset + limit + 1;
        const countOk = !(s.count >= 0.5 * q.rows && s.rowsReadCount >= 0.5 * q.rows);
        target = `page ≤ ${n0(s.offset + limit + 1)}: ${yes(listOk)}; count ${countOk ? "ok" : "**reads the matches**"}`;
      }
      out.push(
        `| ${s.name} | ${n0(s.results)}${s.count !== undefined ? ` (${n0(s.count)})` : ""} | ${n2(s.p50)} / ${n2(s.p99)} | ${ratio(s.p50, q.trivialP50)} | ` +
          `${n0(s.rowsReadList)} + ${n0(s.rowsReadCount)} | ${n2(s.rawP50)} / ${n2(s.rawP99)} | ${target} |`,
      );
    }
    out.push("");
    const worst = Math.max(...q.shapes.map((s) => s.p50));
    out.push(
      `p50 target: worst shape ${n2(worst)} ms vs ${n2(3 * q.trivialP50)} ms (${yes(worst <= 3 * q.trivialP50)}).`,
    );
    if (q.concurrency) {
      out.push(
        `At 10 connections: trivial ${n0(q.concurrency.trivial.reqPerSec)} req/s (p50 ${q.concurrency.trivial.p50} ms); ` +
          q.concurrency.shapes
            .map((c) => `${c.name} ${n0(c.reqPerSec)} req/s (p50 ${c.p50} / p99 ${c.p99} ms)`)
            .join("; ") +
          ".",
      );
    }
    if (R.querySplit) {
      const qs = R.querySplit;
      out.push(
        `Where a query's time goes (p50, one probe instance, 1 connection): runtime alone (a handler returning "ok") ${n2(qs.ok.p50)} ms; ` +
          qs.shapes
            .map(
              (x) =>
                `${x.name}: its ${x.statements} D1 statements alone ${n2(x.d1.p50)} ms sent in parallel, ${n2(x.d1batch.p50)} ms as one D1 batch; the whole app ${n2(x.app.p50)} ms`,
            )
            .join("; ") +
          ".",
      );
    }
    out.push("");
    out.push(
      `Data set: ${n0(q.rows)} synthetic events over 30 days (2021-01), 5 categories × 10 names, sessions of 20 events, the README's \`data\` shape, ` +
        `app_id of the dev key; ${q.reused ? "reused from an earlier run (same migrations and loader)" : "built in this run"}: ` +
        `migrations up to the one creating \`events\` applied by wrangler, the rows written straight into the local D1 SQLite file ` +
        `(<persist>/v3/d1/miniflare-D1DatabaseObject/<id>.sqlite) by node:sqlite with wrangler stopped — indexes dropped, rows inserted in one ` +
        `transaction, indexes recreated from their own SQL — in ${q.dataset.loadSeconds} s, then the remaining migrations (${q.dataset.appliedAfterLoad.join(", ") || "none"}) ` +
        `and the dev seed applied as \`npm run dev\` does (${q.dataset.migrateSeconds} s), so later backfills cover the rows. ` +
        `rows_read: the probe runs the request through the real app and re-runs each D1 statement it issued alone to read D1's meta.rows_read ` +
        `(page = the ORDER BY statement, count = the others). Raw SQLite runs those same statements with the same parameters on the same file.`,
    );
    out.push("");
  }

  if (R.cost.pipeline || R.cost.query || R.profile) {
    out.push("#### 5. Cost per event");
    out.push("");
    out.push("| | value |");
    out.push("|---|---:|");
    for (const r of R.ingest) {
      out.push(
        `| workerd CPU per accepted event, ${r.label} (load only${r.cpuTotalPerEventUs !== undefined ? " / incl. consumer" : ""}) | ${n0(r.cpuPerEventUs)}${r.cpuTotalPerEventUs !== undefined ? ` / ${n0(r.cpuTotalPerEventUs)}` : ""} µs |`,
      );
    }
    if (R.cost.pipeline) {
      const c = R.cost.pipeline;
      out.push(
        `| bytes per stored event, D1 file after the ingest runs (${n0(c.rows)} events stored through HTTP → Queue → consumer) | ${n0(c.bytesPerEvent)} B |`,
      );
    }
    if (R.cost.query) {
      const c = R.cost.query;
      out.push(
        `| bytes per stored event, D1 file of the query data set (${n0(c.rows)} events; ${n0(c.bytes / 1048576)} MiB, ${c.journalMode}, page ${c.pageSize} B) | ${n0(c.bytesPerEvent)} B |`,
      );
    }
    for (const p of R.profile ?? []) {
      const label = {
        parse: "JSON.parse + eventsOf",
        validate: "… + validateEvents (zod, data checks, SHA-256 content id)",
        pack: "… + eventMessages + JSON.stringify of the messages",
      }[p.part];
      out.push(
        `| Worker's own ingest code inside workerd, per event of a 500-event body: ${label} | ${n1(p.usPerEvent)} µs |`,
      );
    }
    const rss = R.ingest.find((r) => r.key === "single")?.rssMiB;
    if (rss) out.push(`| workerd resident memory after the ingest loads (proxy + Worker) | ${n0(rss)} MiB |`);
    out.push("");
  }
  return out.join("\n");
}

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";

/** Replaces the generated block of BENCHMARKS.md (creating the file if needed); the rest is hand-written. */
export function writeBenchmarksMd(file, md) {
  const block = `${START}\n<!-- Generated by \`npm run bench\`; everything between these markers is replaced on each full run. -->\n\n${md}\n${END}`;
  let text = existsSync(file)
    ? readFileSync(file, "utf8")
    : "# Benchmarks\n\nHow to reproduce: `npm run bench` (full, about 7 minutes) or `npm run bench -- --quick`. See bench/README.md.\n\n## Latest full run\n\n";
  if (text.includes(START) && text.includes(END))
    text = text.slice(0, text.indexOf(START)) + block + text.slice(text.indexOf(END) + END.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}
