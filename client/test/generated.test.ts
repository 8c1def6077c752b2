// The client's types and limits are the server's: src/generated/server.ts is exactly what
// scripts/generate.mjs makes from the server's schemas, through the OpenAPI document's converter,
// and wrangler.toml now.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generate, loadServer, OUTPUT } from "../scripts/generate.mjs";

describe("generated from the server", () => {
  it("src/generated/server.ts has not drifted from the server's schemas and limits (npm run generate rewrites it)", async () => {
    expect(readFileSync(OUTPUT, "utf8")).toBe(await generate());
  });

  it("data, a z.custom the server's converter annotates as a JSON object, is what the server's validator accepts", async () => {
    const { eventInput } = await loadServer();
    const event = (data: unknown) => ({
      session_id: "s",
      category: "c",
      name: "n",
      timestamp: "2026-01-01T00:00:00Z",
      data,
    });
    expect(eventInput.safeParse(event({})).success).toBe(true);
    expect(eventInput.safeParse(event({ nested: { a: [1, "x", null] } })).success).toBe(true);
    for (const notObject of [[], null, "text", 1, true, undefined])
      expect(eventInput.safeParse(event(notObject)).success).toBe(false);
  });
});
