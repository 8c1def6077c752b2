// The Worker's entry: HTTP requests go to the Hono app, queue batches to the consumer, the
// cron to the storage maintenance.
import { createApp } from "./app";
import { queue } from "./consume/consumer";
import { scheduled } from "./maintain/scheduled";

const app = createApp();

export default {
  fetch: app.fetch,
  queue,
  scheduled,
} satisfies ExportedHandler<Env, unknown>;
