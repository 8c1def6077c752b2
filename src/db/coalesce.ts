// One D1 round trip for what a request reads at once. A GET starts its filter's lookups, its page
// and its count side by side (event-reads.ts withFilters); each is a D1 call of its own, and a
// call costs more than the reads it carries (an RPC to the database, its JSON both ways). This
// binding holds the statements and batches issued in one turn of the event loop and sends them
// together as one D1 batch, then gives each caller its own answer in the shape it asked for.
//
// Only for reads: a batch is one transaction, so writes would commit or fail together. A batch
// that fails is sent again caller by caller, so each gets its own answer or its own error, as
// without this binding.

type Method = "all" | "raw" | "run" | "first";
type Unit =
  | { stmt: D1PreparedStatement; method: Method; args: unknown[]; settle: (p: Promise<unknown>) => void }
  | { stmts: D1PreparedStatement[]; settle: (p: Promise<unknown>) => void };

const REAL = Symbol("statement");
type Held = D1PreparedStatement & { [REAL]: D1PreparedStatement };

/** A batch answer in the shape the method would have answered on its own. */
function shaped(result: D1Result, method: Method, args: unknown[]): unknown {
  const rows = result.results as Record<string, unknown>[];
  if (method === "raw") {
    const values = rows.map((row) => Object.keys(row).map((k) => row[k]));
    const options = args[0] as { columnNames?: boolean } | undefined;
    return options?.columnNames ? [Object.keys(rows[0] ?? {}), ...values] : values;
  }
  if (method === "first") {
    const row = rows[0];
    if (row === undefined) return null;
    return typeof args[0] === "string" ? (row[args[0]] ?? null) : row;
  }
  return result;
}

/** `real` (a D1 binding or session) with what one turn reads sent as one batch. */
export function coalesced<T extends D1Database | D1DatabaseSession>(real: T): T {
  let pending: Unit[] = [];
  const alone = (u: Unit): Promise<unknown> =>
    "stmts" in u
      ? real.batch(u.stmts)
      : (u.stmt[u.method] as (...a: unknown[]) => Promise<unknown>).apply(u.stmt, u.args);
  const flush = async () => {
    const units = pending;
    pending = [];
    if (units.length === 1) return units[0]!.settle(alone(units[0]!));
    let results: D1Result[];
    try {
      results = await real.batch(units.flatMap((u) => ("stmts" in u ? u.stmts : [u.stmt])));
    } catch {
      for (const u of units) u.settle(alone(u));
      return;
    }
    let i = 0;
    for (const u of units) {
      if ("stmts" in u) {
        u.settle(Promise.resolve(results.slice(i, i + u.stmts.length)));
        i += u.stmts.length;
      } else u.settle(Promise.resolve(shaped(results[i++]!, u.method, u.args)));
    }
  };
  const hold = <R>(unit: (settle: (p: Promise<unknown>) => void) => Unit) =>
    new Promise<R>((resolve, reject) => {
      if (pending.length === 0) setTimeout(flush, 0);
      pending.push(unit((p) => p.then((v) => resolve(v as R), reject)));
    });
  const wrap = (stmt: D1PreparedStatement): Held => {
    const call =
      (method: Method) =>
      (...args: unknown[]) =>
        hold((settle) => ({ stmt, method, args, settle }));
    return {
      [REAL]: stmt,
      bind: (...values: unknown[]) => wrap(stmt.bind(...values)),
      all: call("all"),
      raw: call("raw"),
      run: call("run"),
      first: call("first"),
    } as unknown as Held;
  };
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query));
      if (prop === "batch")
        return (list: D1PreparedStatement[]) =>
          hold((settle) => ({ stmts: list.map((s) => (s as Held)[REAL] ?? s), settle }));
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
