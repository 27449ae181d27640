// Per-destination concurrency (Postfix's default_destination_concurrency_limit, default 20): at most
// `limit` deliveries at once to one destination over all the queue's workers, however many messages
// for it are due (10,000 deferred to one partner never open 10,000 connections, nor `workers` of them
// when the limit is lower). The destination is where the connection goes: a route's configured next
// hop (host:port), else its recipient domain (whose MX hosts DNS gives), as Postfix's nexthop.
// The scheduler does not start a message whose destinations are all full (queue/destination-gate.ts,
// as Postfix's qmgr): it waits without a queue worker; one that also goes elsewhere is started without
// its groups to the full ones, which it comes back for. What still waits here, first come first
// served, is a group whose slot was taken meanwhile (two groups of one message to one destination,
// a reload lowering the limit), and an admin's immediate run. The limit is read at each start and
// end, so a reload applies from the next one.

export { DEFAULT_DESTINATION_CONCURRENCY } from "../contract/config.js";

/** The destination key of a route. */
export function destinationOf(route: {
  domain: string;
  nextHop?: { host: string; port: number } | undefined;
}): string {
  return route.nextHop ? `[${route.nextHop.host}]:${route.nextHop.port}` : route.domain;
}

interface Destination {
  running: number;
  waiting: (() => void)[];
}

export class DestinationSlots {
  private readonly by = new Map<string, Destination>();

  constructor(private readonly limit: () => number) {}

  /** Deliveries running now to `key` (0 when none). */
  running(key: string): number {
    return this.by.get(key)?.running ?? 0;
  }

  async run<T>(key: string, f: () => Promise<T>): Promise<T> {
    const d = this.by.get(key) ?? { running: 0, waiting: [] };
    this.by.set(key, d);
    // first come first served: a newcomer never overtakes one that waits
    if (d.waiting.length || d.running >= Math.max(1, this.limit()))
      await new Promise<void>((r) => d.waiting.push(r));
    else d.running++;
    try {
      return await f();
    } finally {
      d.running--;
      this.wake(key, d);
    }
  }

  /** Starts waiting runs while the (current) limit allows; forgets an idle destination. */
  private wake(key: string, d: Destination): void {
    while (d.waiting.length && d.running < Math.max(1, this.limit())) {
      d.running++;
      d.waiting.shift()!();
    }
    if (d.running === 0 && !d.waiting.length) this.by.delete(key);
  }
}
