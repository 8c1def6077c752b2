// Delivers a batch to the Worker's real queue() handler as the runtime would, and reports what it
// acked and retried. The test pool's getQueueResult() drops retry delays, so each message's
// retry() is observed on the way through to record the delay the consumer asked for.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";

export interface Delivery {
  id?: string;
  body: unknown;
  attempts?: number;
}

export async function deliver(queueName: string, deliveries: Delivery[], bindings: Env = env) {
  const batch = createMessageBatch(
    queueName,
    deliveries.map((d) => ({
      id: d.id ?? crypto.randomUUID(),
      timestamp: new Date(),
      attempts: d.attempts ?? 1,
      body: d.body,
    })),
  );
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    Object.defineProperty(message, "retry", {
      value: (options?: QueueRetryOptions) => {
        delays.set(message.id, options?.delaySeconds);
        retry(options);
      },
    });
  }
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, bindings, ctx);
  const result = await getQueueResult(batch, ctx);
  return {
    batch,
    result,
    /** The messages retried, with the delay asked for each, in the order they were retried. */
    retried: [...delays].map(([id, delaySeconds]) => ({ id, delaySeconds })),
  };
}
