// Before each test file: apply the project's migrations and the dev seed (what `npm run dev` does).
import { applyD1Migrations, env } from "cloudflare:test";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
const seed = env.TEST_DEV_SEED.split("\n")
  .filter((line) => !line.startsWith("--"))
  .join("\n")
  .split(";")
  .map((s) => s.trim())
  .filter(Boolean);
await env.DB.batch(seed.map((s) => env.DB.prepare(s)));
