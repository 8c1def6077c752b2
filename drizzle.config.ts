// drizzle-kit turns src/db/schema.ts (and the pre-0011 tables of legacy-schema.ts) into the SQL migrations under migrations/.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: ["./src/db/schema.ts", "./src/db/legacy-schema.ts"],
  out: "./migrations",
});
