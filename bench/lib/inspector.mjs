// The JS heap of a `wrangler dev` Worker's isolate, through the DevTools protocol on its --inspector-port.
// wrangler's inspector proxy refuses an upgrade without an Origin of a local host, so we send one.

/** Connects to the instance's inspector; returns { heapUsage(), close() }. */
export async function inspect(server, { timeoutMs = 5000 } = {}) {
  const list = await (
    await fetch(`http://127.0.0.1:${server.inspectorPort}/json`, { signal: AbortSignal.timeout(timeoutMs) })
  ).json();
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`${server.name}: no inspector target on port ${server.inspectorPort}`);
  const ws = new WebSocket(url, { headers: { origin: "http://127.0.0.1" } });
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`${server.name}: inspector WebSocket refused`));
  });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  };
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const i = ++id;
      const timer = setTimeout(() => {
        pending.delete(i);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(i, (m) => {
        clearTimeout(timer);
        if (m.error) reject(new Error(`${method}: ${m.error.message}`));
        else resolve(m.result);
      });
      ws.send(JSON.stringify({ id: i, method, params }));
    });
  return {
    /** V8's Runtime.getHeapUsage: usedSize and totalSize of the isolate's JS heap, bytes (plus embedder and backing stores). */
    heapUsage: () => call("Runtime.getHeapUsage"),
    close: () => ws.close(),
  };
}
