// The Worker's entry: HTTP requests go to the Hono app, queue batches to the consumer.
import { createApp } from "./app";
import { queue } from "./consumer";

const app = createApp();

export default {
  fetch: app.fetch,
  queue,
} satisfies ExportedHandler<Env, unknown>;
