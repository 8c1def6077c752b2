// A new user's first request: GET / names the service, its version and where the API and docs are.
import { describe, expect, it } from "vitest";
import { version } from "../../package.json";
import { BASE, worker } from "../helpers/api";

describe("GET /", () => {
  it("answers JSON with the service, its version, the API's endpoints and where the docs are, with no key", async () => {
    for (const path of ["/", "/api", "/api/"]) {
      const res = await worker.fetch(`${BASE}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const body = (await res.json()) as {
        service: string;
        version: string;
        api: string;
        endpoints: { method: string; path: string }[];
        docs: string;
      };
      expect(body).toMatchObject({ service: "The Eye", version, api: "/api/" });
      expect(body.endpoints.map((e) => `${e.method} ${e.path}`)).toEqual(
        expect.arrayContaining([
          "POST /api/event/",
          "GET /api/event/",
          "GET /api/sessions/{session_id}/events",
          "GET /api/errors/",
        ]),
      );
      expect(body.docs).toMatch(/README/);
    }
  });

  it("answers a browser with a small HTML page saying the same", async () => {
    const res = await worker.fetch(`${BASE}/`, {
      headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain(`version ${version}`);
    expect(html).toContain("/api/sessions/{session_id}/events");
  });

  it("answers other methods with 405 and Allow", async () => {
    const res = await worker.fetch(`${BASE}/`, { method: "POST", body: "{}" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
  });
});
