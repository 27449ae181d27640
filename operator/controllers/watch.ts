// What a controller watches, said by the controller itself (controller-runtime's Watches with
// EnqueueRequestsFromMapFunc, cert-manager's per-controller Register): per informer, a small pure
// function from an event to the keys of the controller's own kind to queue.
import type { EventType, Handler } from "../runtime/informer.js";

/** The keys one event queues. */
export type EventKeysOf<T> = (type: EventType, obj: T, old?: T) => Iterable<string>;

export interface Watch {
  /** Starts delivering the informer's events as keys to `enqueue`. */
  start(enqueue: (key: string) => void): void;
}

export function watch<T>(informer: { on(h: Handler<T>): void }, keys: EventKeysOf<T>): Watch {
  return {
    start: (enqueue) =>
      informer.on((type, obj, old) => {
        for (const k of keys(type, obj, old)) enqueue(k);
      }),
  };
}
