// Free loopback ports, away from the ones others on this machine use (8787: wrangler dev's
// default; 8800–8899: the benchmark's instances).
import net from "node:net";

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    if (port !== 8787 && (port < 8800 || port > 8899)) return port;
  }
}
