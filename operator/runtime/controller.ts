// A controller: a work queue of keys and workers running one reconcile function. A reconcile that
// throws is retried with the key's exponential backoff; one that returns requeueAfterMs is looked at
// again then (e.g. polling relay pods for the config they loaded); success resets the backoff.
import type { Logger } from "pino";
import type { OperatorMetrics } from "./metrics.js";
import { WorkQueue, type WorkQueueOptions } from "./workqueue.js";

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

export class Controller {
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];

  constructor(
    readonly name: string,
    private readonly reconcile: Reconcile,
    private readonly opts: {
      workers?: number;
      metrics?: OperatorMetrics;
      log?: Logger;
      queue?: WorkQueueOptions;
    } = {},
  ) {
    this.queue = new WorkQueue(opts.queue);
  }

  enqueue(key: string): void {
    this.queue.add(key);
    this.opts.metrics?.queueDepth.set({ controller: this.name }, this.queue.len());
  }

  start(): void {
    if (this.workers.length) return;
    for (let i = 0; i < (this.opts.workers ?? 1); i++) this.workers.push(this.work());
  }

  /** Stops handing out keys and waits for running reconciles to finish. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
    this.workers = [];
  }

  private async work(): Promise<void> {
    const metrics = this.opts.metrics;
    const labels = { controller: this.name };
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics?.queueDepth.set(labels, this.queue.len());
      const end = metrics?.duration.startTimer(labels);
      try {
        const result = await this.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        metrics?.reconciles.inc({
          ...labels,
          result: result?.requeueAfterMs !== undefined ? "requeue" : "success",
        });
      } catch (e) {
        const delay = this.queue.addRateLimited(key);
        metrics?.reconciles.inc({ ...labels, result: "error" });
        metrics?.errors.inc(labels);
        this.opts.log?.warn(
          { controller: this.name, key, err: (e as Error).message, retryInMs: delay },
          "reconcile failed",
        );
      } finally {
        end?.();
        this.queue.done(key);
        metrics?.queueDepth.set(labels, this.queue.len());
      }
      // A reconcile that needs no I/O completes in microtasks, and so does get() with keys queued: a
      // long queue would run to its end without the event loop polling sockets once (watch events,
      // and other requests in flight, e.g. a large apply that then times out server-side: "socket
      // hang up"). Yield to I/O between reconciles.
      await new Promise<void>((r) => setImmediate(r));
    }
  }
}
