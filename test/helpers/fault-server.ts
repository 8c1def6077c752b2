// A stand-in for the network between a client and The Eye, on 127.0.0.1: each request takes
// the next scripted step — answer with a status (429, 503, 401…), drop the connection, never
// answer (a server that hangs), or pass the request on to the real Worker (and optionally drop the
// connection after the Worker answered: the response lost on the way back). Every request is
// recorded. Bodies pass as bytes (gzip stays gzip); `scripted` says which requests take the steps
// (the others are passed on). Used by the client library's tests (client/test/) and the SDKs' (test/sdks/).
//
// `keepAlive: false` answers every request with `Connection: close`, so each request comes on a
// connection of its own. A browser needs it for a drop to reach the code under test: Chromium sends a
// request again by itself, POST included and unseen by the page, when a connection it had already
// used (kept alive) closes before any byte of an answer (HttpNetworkTransaction::ShouldResendRequest),
// so the SDK would get the second answer and never learn that the first one was lost.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";

export type Step =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  | "drop"
  | "hang"
  | "forward"
  | "forward-then-drop";

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** What the Worker answered, for forwarded requests. */
  upstream?: { status: number; body: string };
  /** The body's bytes, as they came. */
  raw: Buffer;
}

export interface FaultServer {
  url: string;
  requests: Recorded[];
  /** Steps still to come; when none is left, requests are forwarded. */
  steps: Step[];
  close(): Promise<void>;
}

export interface FaultServerOptions {
  /** false: `Connection: close` on every answer, no connection serves two requests (default true). */
  keepAlive?: boolean;
}

export async function faultServer(
  upstream: string,
  steps: Step[] = [],
  scripted: (request: Recorded) => boolean = () => true,
  { keepAlive = true }: FaultServerOptions = {},
): Promise<FaultServer> {
  const requests: Recorded[] = [];
  const state = { steps: [...steps] };
  const server: Server = createServer((req, res) => {
    if (!keepAlive) res.setHeader("connection", "close");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks);
      const record: Recorded = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: raw.toString("utf8"),
        raw,
        at: Date.now(),
      };
      requests.push(record);
      const step = (scripted(record) ? state.steps.shift() : undefined) ?? "forward";
      if (step === "drop") return req.socket.destroy();
      if (step === "hang") return; // the connection stays open, unanswered, until the client gives up
      if (typeof step === "object") {
        res.writeHead(step.status, { "content-type": "application/json", ...step.headers });
        return res.end(JSON.stringify(step.body ?? { success: false, message: `injected ${step.status}` }));
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === "string" && k !== "host" && k !== "content-length") headers[k] = v;
      const answer = await fetch(`${upstream}${record.url}`, {
        method: record.method,
        headers,
        body: record.method === "GET" || record.method === "HEAD" ? undefined : raw,
      });
      const bytes = Buffer.from(await answer.arrayBuffer());
      record.upstream = { status: answer.status, body: bytes.toString("utf8") };
      if (step === "forward-then-drop") return req.socket.destroy();
      const out: Record<string, string> = {};
      answer.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "content-encoding" && k !== "transfer-encoding") out[k] = v;
      });
      res.writeHead(answer.status, out);
      res.end(bytes);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get steps() {
      return state.steps;
    },
    set steps(next: Step[]) {
      state.steps = [...next];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
