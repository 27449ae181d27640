// Delivery scheduling over the spool: up to `queue.workers` messages in flight; each attempt splits
// the pending recipients by route (under the config loaded at that moment), delivers the groups,
// and persists per-recipient state after every group (a partial success is never re-sent to the
// recipients that got it). Temporary failures back off exponentially; 5xx replies and expiry
// bounce with a DSN to the sender (none for the null sender); a message is removed only when no
// recipient is pending any more. A bounce writes the recipients' failure before the DSN (notify),
// and the message goes only once the journal cannot bring it back (spool.ts remove): after any
// crash or failed write a bounced recipient is never delivered to, and its DSN is queued at least
// once (twice only after a crash between the DSN and the write that records it).
// Which message is next comes from a min-heap (due-heap.ts) keyed by nextAttemptAt, then receivedAt,
// so a pump costs O(log n) per message it starts, however many deferred messages wait for a retry
// hours away. Invalidation is lazy: a node carries the time it was pushed with; a node whose entry is
// gone, in flight or pushed again since (superseded) is dropped when it surfaces; one whose entry's
// nextAttemptAt has changed in place is pushed again with the current time, never dropped, so an
// entry missing a push is attempted late at worst, never lost. When stale nodes outnumber the
// entries the heap is rebuilt from the entries (O(n), amortised over the pushes that made them).
import type { LoadedConfig } from "../config/load.js";
import { deliveryLine, messageIdOf, type DeliveryLine } from "../delivery-log.js";
import { composeDsn, DSN_HEADER_BYTES } from "../dsn.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { Deliverer, RecipientResult } from "../outbound/deliver.js";
import { tlsRequiredNo } from "../outbound/requiretls.js";
import { reportSender } from "../outbound/tlsrpt.js";
import { destinationOf } from "../outbound/destination-slots.js";
import { groupRecipients } from "../outbound/route.js";
import { replyText } from "../reply-text.js";
import { errorMessage } from "../contract/failure.js";
import { expired, nextAttemptAt, staggerRecovery } from "./backoff.js";
import { DestinationGate } from "./destination-gate.js";
import { DueHeap } from "./due-heap.js";
import {
  certainHoldOf,
  deliveryCost,
  groupCost,
  holdOf,
  MemoryBudget,
  tooLargeResult,
  tooLargeToHold,
} from "./memory-budget.js";
import type { MessageBody } from "./message-body.js";
import { LOCAL_PEERS, type Envelope } from "./envelope.js";
import { newQueueId, type Spool } from "./spool.js";

export interface SchedulerDeps {
  spool: Spool;
  config(): LoadedConfig;
  deliverer: Deliverer;
  log: Logger;
  metrics: Metrics;
  now?: () => number;
  /**
   * A clock that never steps (performance.now), read beside `now` to tell a step of the wall clock
   * from time passing (clockStepped). Default: performance.now, or `now` itself when `now` is given
   * (a test's clock then never steps unless it gives both).
   */
  monotonic?: () => number;
  /** Draws the retry jitter (backoff.ts); default Math.random. */
  random?: () => number;
  /**
   * The encryption receipt of a delivered recipient (relay/receipts/): written before the recipient
   * is recorded as delivered; never rejects.
   */
  receipt?(env: Envelope, line: DeliveryLine, r: RecipientResult): Promise<void>;
}

/** A heap node: the entry and the nextAttemptAt it was pushed with. */
interface DueEntry {
  env: Envelope;
  at: number;
  tie: number;
}

/** Scheduling work done so far (cumulative): for tests and benches. */
export interface SchedulerStats {
  /** pump() runs. */
  pumps: number;
  /** Nodes pushed (including re-pushes and rebuilds). */
  pushes: number;
  /** Nodes popped: attempts started plus stale nodes dropped or re-pushed. */
  pops: number;
  /** Popped nodes dropped (entry gone, in flight, or superseded by a newer push). */
  dropped: number;
  /** Popped nodes pushed again because their entry's nextAttemptAt had changed in place. */
  repushed: number;
  /** Heap rebuilds from the entries. */
  rebuilds: number;
  /** Key comparisons in the heap. */
  compares: number;
  /** Nodes in the heap now (live and stale). */
  heapSize: number;
}

/** The heap key of an entry; a NaN nextAttemptAt (never written by us) counts as due at once. */
const dueAt = (e: Envelope): number => (Number.isNaN(e.nextAttemptAt) ? -Infinity : e.nextAttemptAt);

/**
 * How many of `workers` messages in the bounce lane (inBounceLane) may hold at once. Their
 * destinations are whoever a MAIL FROM or a DNS record named, unchecked: an Internet client that
 * forges MAIL FROMs at domains whose MX accepts and never speaks, and writes to users the internal
 * server refuses, had every worker held by the bounces for whole attempt deadlines while the
 * organisation's own mail waited (attack review, session 11; each domain its own, so the
 * per-destination limit never applied). A quarter, at least one: the rest always delivers. Under
 * such an attack the lane's own messages wait (they are retried until queue.maxAge, never lost).
 */
export function bounceWorkers(workers: number): number {
  return Math.max(1, Math.floor(workers / 4));
}

/**
 * How many of `workers` the messages to one destination may hold at once (the scheduler's gate,
 * destination-gate.ts): its `limit` (delivery.destinationConcurrencyLimit), but never more than the
 * workers less the bounce lane's share, so a quarter of them is always left to other destinations.
 * The gate's limit was the destination limit alone, 20 by default, with 16 workers: a destination was
 * never full before every worker was on it, and a partner whose MX accepts and stays silent, with
 * 16 messages queued, held them all (test/mail/attack-tarpit-default-limits.test.ts). The sessions
 * to it stay bounded by `limit` (outbound/destination-slots.ts). Pure.
 */
export function destinationWorkers(limit: number, workers: number): number {
  return Math.max(1, Math.min(limit, workers - bounceWorkers(workers)));
}

/**
 * Whether a message goes through the bounce lane: the null sender (DSNs, the relay's and those it
 * relays) and the relay's own TLS-RPT reports, whose mailto: targets come from the DNS of any domain
 * it delivered to (the review of the lane, session 11): known by their sender (`reportSender`, so
 * also on a fleet peer that took them over in a drain, where `peer` is the sending pod) or their
 * peer - unless all of it goes to the internal next hop, which no outsider chooses (a DSN to a local
 * user does not wait behind an attacker's). Pure.
 */
export function inBounceLane(e: Envelope, reportFrom: string, internalOnly: () => boolean): boolean {
  const lane = e.from === "" || e.from === reportFrom || e.peer === LOCAL_PEERS.tlsRpt;
  return lane && !internalOnly();
}

type RouteGroups = ReturnType<typeof groupRecipients>;

/** Where route groups' deliveries go (one key per group with a route), as the deliverer counts. */
function destinationsOf(groups: RouteGroups): string[] {
  return groups.flatMap((g) => (g.route ? [destinationOf(g.route)] : []));
}

/** The bounce lane's one key in its gate. */
const BOUNCES = "<>";

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A wall clock moving back by more than this between two pumps has stepped (clockStepped). */
const CLOCK_STEP_MS = 1000;

/** Rebuild when the heap holds more than 2 x entries + this many nodes. */
const REBUILD_SLACK = 1024;

export class Scheduler {
  private entries = new Map<string, Envelope>();
  private inFlight = new Map<string, Promise<void>>();
  private heap = new DueHeap<DueEntry>();
  /** Each queued entry's newest heap node; older nodes of the same entry are superseded. */
  private scheduled = new Map<string, DueEntry>();
  private counters = { pumps: 0, pushes: 0, pops: 0, dropped: 0, repushed: 0, rebuilds: 0 };
  private timer: NodeJS.Timeout | undefined;
  /** The wall clock and the monotonic clock at the last pump (clockStepped). */
  private lastWall = NaN;
  private lastMono = NaN;
  private readonly monotonic: () => number;
  private pumpPending = false;
  private stopped = false;
  private readonly now: () => number;
  /** Messages whose destinations are all busy wait here, not in a worker (destination-gate.ts). */
  private readonly gate = new DestinationGate<Envelope>(() => {
    const c = this.d.config().config;
    return destinationWorkers(c.delivery.destinationConcurrencyLimit, c.queue.workers);
  });
  /** Bounce-lane messages past their share of the workers wait here (inBounceLane, bounceWorkers). */
  private readonly bounceGate = new DestinationGate<Envelope>(() =>
    bounceWorkers(this.d.config().config.queue.workers),
  );
  /**
   * Message data the attempts hold in memory (issue 15.5: queue.memoryBytes); the attempts to one
   * set of destinations hold at most three quarters of it while others wait (MemoryBudget's key
   * share), as with the workers (destinationWorkers): a silent partner's large signed mail never
   * holds all of it.
   */
  readonly budget = new MemoryBudget(
    () => this.d.config().config.queue.memoryBytes,
    (total) => Math.floor((total * 3) / 4),
  );

  constructor(private d: SchedulerDeps) {
    this.now = d.now ?? Date.now;
    this.monotonic = d.monotonic ?? d.now ?? (() => performance.now());
  }

  depth(): number {
    return this.entries.size;
  }

  /** oldestAgeSeconds' last walk: when, and the earliest receivedAt it found. */
  private oldest: { at: number; receivedAt: number } | undefined;

  /**
   * The age of the oldest queued message. A walk over every entry, so its result is kept for a
   * second: /metrics and /status answer anyone who reaches the admin port, and each asks (with
   * 100,000 messages queued, a flood of requests would otherwise keep the event loop walking).
   */
  oldestAgeSeconds(): number {
    const now = this.now();
    if (!this.oldest || now - this.oldest.at >= 1000 || now < this.oldest.at) {
      let oldest = Infinity;
      for (const e of this.entries.values()) oldest = Math.min(oldest, e.receivedAt);
      this.oldest = { at: now, receivedAt: oldest };
    }
    const r = this.oldest.receivedAt;
    return r === Infinity || this.entries.size === 0 ? 0 : Math.max(0, (now - r) / 1000);
  }

  stats(): SchedulerStats {
    return { ...this.counters, compares: this.heap.compares, heapSize: this.heap.size };
  }

  add(env: Envelope): void {
    this.entries.set(env.id, env);
    this.schedule(env);
    this.kick();
  }

  /** The messages found at startup (oldest first): due staggered, not all at once (backoff.ts). */
  addRecovered(envs: readonly Envelope[]): void {
    const now = this.now();
    const queue = this.d.config().config.queue;
    // no backoff is longer than retry.max: a later time was computed under a clock ahead of this
    // one (the last life's, another node's) and would hold the message for the difference
    // (test/unit/attack-clock-step-back.test.ts)
    const latest = now + queue.retry.max * 1000;
    for (const e of envs) if (e.nextAttemptAt > latest) e.nextAttemptAt = latest;
    const due = staggerRecovery(envs, now, queue.workers);
    envs.forEach((e, i) => {
      e.nextAttemptAt = due[i]!;
      this.add(e);
    });
  }

  /** Retry everything now (e.g. after a config change). */
  retryAll(): void {
    for (const e of this.entries.values())
      if (!this.inFlight.has(e.id)) e.nextAttemptAt = Math.min(e.nextAttemptAt, this.now());
    this.gate.releaseAll(); // routes may have changed: the rebuild puts every one back on the heap
    this.bounceGate.releaseAll(); // and the number of workers
    this.rebuild();
    this.kick();
  }

  /** Runs pump() once after the current callbacks, however many times it is kicked until then. */
  kick(): void {
    if (this.stopped || this.pumpPending) return;
    this.pumpPending = true;
    setImmediate(() => {
      this.pumpPending = false;
      this.pump();
    });
  }

  /** Pushes a node for `env` with its current nextAttemptAt (superseding older ones). */
  private schedule(env: Envelope): void {
    if (env.held) return void this.scheduled.delete(env.id); // on hold: no node until released
    const node: DueEntry = { env, at: dueAt(env), tie: env.receivedAt };
    this.scheduled.set(env.id, node);
    this.heap.push(node);
    this.counters.pushes++;
    if (this.heap.size > 2 * this.entries.size + REBUILD_SLACK) this.rebuild();
  }

  /** Replaces the heap by one node per entry not in flight (drops every stale node). */
  private rebuild(): void {
    this.scheduled.clear();
    const nodes: DueEntry[] = [];
    for (const env of this.entries.values()) {
      if (this.inFlight.has(env.id) || env.held) continue;
      const node: DueEntry = { env, at: dueAt(env), tie: env.receivedAt };
      this.scheduled.set(env.id, node);
      nodes.push(node);
    }
    this.heap.reset(nodes);
    this.counters.pushes += nodes.length;
    this.counters.rebuilds++;
  }

  /**
   * The earliest live node, left in the heap: stale tops are popped on the way (dropped, or pushed
   * again with their entry's current time). undefined: nothing waits.
   */
  private top(): DueEntry | undefined {
    for (;;) {
      const n = this.heap.peek();
      if (!n) return undefined;
      const id = n.env.id;
      const latest = this.scheduled.get(id) === n;
      if (!latest || this.entries.get(id) !== n.env || this.inFlight.has(id) || n.env.held) {
        this.heap.pop();
        this.counters.pops++;
        this.counters.dropped++;
        if (latest) this.scheduled.delete(id);
        continue;
      }
      if (dueAt(n.env) !== n.at) {
        // changed in place since the push (e.g. lowered by a caller that did not push): keep it
        this.heap.pop();
        this.counters.pops++;
        this.counters.repushed++;
        this.schedule(n.env);
        continue;
      }
      return n;
    }
  }

  private pump(): void {
    if (this.stopped) return;
    this.counters.pumps++;
    clearTimeout(this.timer);
    this.timer = undefined;
    const workers = this.d.config().config.queue.workers;
    const now = this.now();
    this.clockStepped(now);
    while (this.inFlight.size < workers) {
      const n = this.top();
      if (!n || n.at > now) break;
      this.heap.pop();
      this.counters.pops++;
      this.scheduled.delete(n.env.id);
      // the bounce lane full, or every destination of it busy: park it without a worker, try the
      // next due message
      const groups = this.pendingGroups(n.env);
      const lane = this.laneOf(n.env, groups);
      const laneFull = this.bounceGate.blockedBy(lane);
      if (laneFull !== undefined) {
        this.bounceGate.park(laneFull, n.env);
        continue;
      }
      const keys = destinationsOf(groups);
      const full = this.gate.blockedBy(keys);
      if (full !== undefined) this.gate.park(full, n.env);
      else {
        // a destination of it that is full now is left out of this attempt (its groups are not
        // sent, the message comes back for them: finishAttempt): waited for inside the attempt, a
        // tarpit partner on Cc of a few messages held every worker
        // (test/mail/attack-tarpit-cc-holds-workers.test.ts)
        const busy = new Set(keys.filter((k) => this.gate.full(k)));
        this.start(
          n.env,
          keys.filter((k) => !busy.has(k)),
          lane,
          busy,
        );
      }
    }
    if (this.inFlight.size < workers) {
      const next = this.top();
      if (next && next.at !== Infinity) {
        // beyond setTimeout's range Node would fire after 1 ms: wake at the limit and re-arm instead
        const delay = Math.min(MAX_TIMER_MS, Math.max(10, next.at - this.now()));
        this.timer = setTimeout(() => this.pump(), delay);
        this.timer.unref();
      }
    }
  }

  /**
   * The wall clock stepped (NTP correcting a clock that ran ahead or behind, two time sources
   * fighting) by more than CLOCK_STEP_MS since the last pump, measured against the monotonic clock:
   * the waiting times were computed under the old clock, so they move by the step too, and each
   * message waits the real time its backoff meant. Back: a step of a day held a deferred message
   * for a day (test/unit/attack-clock-step-back.test.ts); never before now. Forward, only the times
   * still ahead at the last pump: without it a clock jumping 30 s ahead and back every few seconds
   * wore every wait away by 30 s a cycle (test/unit/attack-clock-oscillation.test.ts). The heap is
   * built again from them: top() re-pushes only the node it looks at, so a stale node's key would
   * let a message deferred after the step run first and arm the timer for it. A message's age
   * (queue.maxAge, the DSN's arrival date) is real time too: receivedAt moves by every step, both
   * ways, so a clock corrected six days forward does not bounce mail deferred two minutes ago as
   * expired, nor does an oscillating one keep it young (test/unit/attack-clock-step-forward-expiry.test.ts).
   */
  private clockStepped(now: number): void {
    const mono = this.monotonic();
    const before = this.lastWall;
    const step = now - before - (mono - this.lastMono);
    this.lastWall = now;
    this.lastMono = mono;
    if (!(Math.abs(step) > CLOCK_STEP_MS)) return;
    for (const e of this.entries.values()) {
      e.receivedAt += step;
      if (e.acceptedAt !== undefined) e.acceptedAt += step;
      if (step > 0 && e.nextAttemptAt > before) e.nextAttemptAt += step;
      else if (step < 0 && e.nextAttemptAt > now) e.nextAttemptAt = Math.max(now, e.nextAttemptAt + step);
    }
    this.rebuild();
  }

  /** The bounce lane's key when `e` goes through it (inBounceLane), else none. */
  private laneOf(e: Envelope, groups: RouteGroups): string[] {
    const internalOnly = (): boolean => groups.length > 0 && groups.every((g) => g.route?.internal === true);
    return inBounceLane(e, reportSender(this.d.config().config), internalOnly) ? [BOUNCES] : [];
  }

  /** The route groups of the pending recipients, under the config loaded now. */
  private pendingGroups(e: Envelope): RouteGroups {
    const pending = e.recipients.filter((r) => r.state === "pending").map((r) => r.address);
    return pending.length === 0 ? [] : groupRecipients(pending, this.d.config().config);
  }

  private start(
    e: Envelope,
    keys: readonly string[],
    lane: readonly string[],
    busy: ReadonlySet<string> = new Set(),
  ): void {
    this.gate.begin(keys);
    this.bounceGate.begin(lane);
    const p = this.attempt(e, busy)
      .catch((err) => {
        this.d.log.error({ event: "queue-error", queueId: e.id, err: errorMessage(err) }, "attempt failed");
        // e.g. its state could not be written (disk full): back off like a deferral, never retry at once
        const r = this.d.config().config.queue.retry;
        e.nextAttemptAt = nextAttemptAt(
          this.now(),
          (e.attempts += 1),
          r.initial,
          r.max,
          r.jitter,
          this.d.random,
        );
      })
      .finally(() => {
        this.inFlight.delete(e.id);
        const cur = this.entries.get(e.id);
        if (cur) this.schedule(cur);
        // the messages parked for the slots this attempt frees go back on the heap, in due order
        const live = (x: Envelope) => this.entries.get(x.id) === x && !this.inFlight.has(x.id) && !x.held;
        for (const x of this.gate.end(keys, live)) this.schedule(x);
        for (const x of this.bounceGate.end(lane, live)) this.schedule(x);
        this.kick();
      });
    this.inFlight.set(e.id, p);
  }

  /**
   * One attempt of `env`; the route groups to a destination in `busy` (full when it was started:
   * pump) are not sent this time, their recipients stay pending (finishAttempt brings it back).
   */
  private async attempt(env: Envelope, busy: ReadonlySet<string> = new Set()): Promise<void> {
    const loaded = this.d.config();
    const config = loaded.config;
    const { spool, log } = this.d;
    const pending = env.recipients.filter((r) => r.state === "pending");
    const waiting = new Set<string>();
    if (pending.length) {
      let message: MessageBody | undefined;
      try {
        message = await spool.openMessage(env.id);
      } catch (e) {
        log.error({ event: "queue-error", queueId: env.id, err: errorMessage(e) }, "message file unreadable");
      }
      const all = groupRecipients(
        pending.map((r) => r.address),
        config,
      );
      const groups = all.filter((g) => !(g.route && busy.has(destinationOf(g.route))));
      for (const g of all) if (!groups.includes(g)) for (const a of g.recipients) waiting.add(a);
      // admitted once what it may hold fits in the budget (a large body is streamed, not held);
      // held groups send nothing, nor do those that would hold more than the pod can (deliverGroups)
      const dkim = env.signable === true && config.dkim.length > 0;
      const hold = (g: (typeof groups)[number]) => holdOf(g.route?.outbound, dkim);
      // what a group would hold whatever its attempt finds, when more than the pod can (its
      // transaction is not started); a smime TLS fallback judges its own when it applies
      const tooLarge = (g: (typeof groups)[number]): number | undefined => {
        const certain = certainHoldOf(g.route?.outbound, dkim);
        return message !== undefined && tooLargeToHold(message, certain, config.queue.memoryBytes)
          ? groupCost(message, certain)
          : undefined;
      };
      const cost = message
        ? deliveryCost(message, groups.filter((g) => g.route && tooLarge(g) === undefined).map(hold))
        : 0;
      const granted = Math.min(cost, config.queue.memoryBytes);
      const destinations = [...new Set(destinationsOf(groups))].sort().join(" ");
      const release = message ? await this.budget.acquire(cost, destinations) : () => undefined;
      // the groups share what was granted: more of them than it pays for take turns (one at a time
      // when nothing is left of it beside the body)
      const share = new MemoryBudget(() => Math.max(1, granted - (message?.inMemory ? message.size : 0)));
      try {
        await this.deliverGroups(
          env,
          message,
          groups,
          (g) => share.acquire(message ? groupCost(message, hold(g)) : 0),
          tooLarge,
          config.queue.memoryBytes,
        );
      } finally {
        release();
      }
    }
    await this.finishAttempt(env, loaded, waiting);
  }

  /** Delivers each route group of `env` (in parallel), persisting per-recipient state as it goes. */
  private async deliverGroups(
    env: Envelope,
    message: MessageBody | undefined,
    groups: ReturnType<typeof groupRecipients>,
    admit: (g: ReturnType<typeof groupRecipients>[number]) => Promise<() => void>,
    tooLarge: (g: ReturnType<typeof groupRecipients>[number]) => number | undefined,
    /** queue.memoryBytes of the config the groups and their ceiling were judged under. */
    memoryBytes: number,
  ): Promise<void> {
    const { spool, metrics, log } = this.d;
    let writes = Promise.resolve();
    const persist = (): Promise<void> => (writes = writes.then(() => spool.update(env)));
    const messageId = message ? messageIdOf(message.head) : undefined;
    const deliver = async (group: ReturnType<typeof groupRecipients>[number]): Promise<RecipientResult[]> => {
      // held by routing (a policy with a problem, a domain without a canonical form): never sent
      if (group.hold)
        return group.recipients.map((address) => ({
          address,
          outcome: group.hold.temporary ? "deferred" : "failed",
          code: group.hold.code,
          message: group.hold.message,
          status: group.hold.status,
        }));
      if (!message)
        return group.recipients.map((address) => ({
          address,
          outcome: "deferred",
          code: "MESSAGE_UNREADABLE",
          message: "message file unreadable",
          status: "4.3.0",
        }));
      const holds = tooLarge(group);
      if (holds !== undefined)
        return group.recipients.map((address) => tooLargeResult(address, message.size, holds));
      const release = await admit(group);
      try {
        return await this.d.deliverer.deliver({
          queueId: env.id,
          from: env.from,
          recipients: group.recipients,
          message,
          route: group.route,
          // a smime TLS fallback, which encrypts only when it applies, judges its hold against the
          // same ceiling as the groups were (a reload meanwhile does not change it mid-attempt)
          memoryBytes,
          ...(env.requireTls ? { requireTls: true } : {}),
          ...(env.signable ? { signable: true } : {}),
          ...(env.tlsRequiredNoTrusted && tlsRequiredNo(message.head) ? { tlsRequiredNo: true } : {}),
          ...(env.mtaSts?.length ? { carriedSts: env.mtaSts } : {}),
        });
      } catch (err) {
        // a step that threw instead of answering (a bug, ours or a library's): its recipients are
        // deferred like any other (a retry may send twice, never lose), so finishAttempt's expiry and
        // DSN still apply; thrown out of the attempt, the message was retried for ever, never bounced
        log.error(
          { event: "queue-error", queueId: env.id, code: "DELIVERY_ERROR", err: errorMessage(err) },
          "delivery step threw",
        );
        return group.recipients.map((address) => ({
          address,
          outcome: "deferred",
          code: "DELIVERY_ERROR",
          message: "internal error in the delivery",
          status: "4.3.0",
        }));
      } finally {
        release();
      }
    };
    // every group settles before the attempt ends, even when one's bookkeeping throws (a receipt, a
    // state write on a full disk): ended early, the attempt freed its budget and its in-flight mark
    // while the other groups were still sending, and a retry could send them again alongside
    const settled = await Promise.allSettled(
      groups.map(async (group) => {
        const results = await deliver(group);
        const policy = (group.route ?? group.hold).policy;
        if (group.hold)
          log.warn(
            { event: "held", queueId: env.id, policy, domain: group.hold.domain, code: group.hold.code },
            group.hold.message,
          );
        let deferredReason: string | undefined;
        const receipts: Promise<void>[] = [];
        for (const result of results) {
          const rec = env.recipients.find((x) => x.address === result.address && x.state === "pending");
          if (!rec) continue;
          const receipt = this.logDelivery(env, result, policy, messageId);
          if (receipt) receipts.push(receipt);
          if (result.outcome === "delivered") {
            rec.state = "delivered";
            delete rec.lastError;
            metrics.delivered.inc({ policy });
          } else {
            rec.lastError = {
              code: result.code,
              // what the envelope keeps is bounded, whoever wrote it (a next hop's reply: issue 22.3)
              message: replyText(result.message),
              status: result.status,
              ...(result.remoteMta ? { remoteMta: result.remoteMta } : {}),
            };
            if (result.outcome === "failed") {
              rec.state = "failed";
              metrics.bounced.inc({ policy, reason: result.code });
            } else deferredReason = result.code;
          }
        }
        if (deferredReason) metrics.deferred.inc({ policy, reason: deferredReason });
        await Promise.all(receipts);
        // every recipient done and none to notify: the message is removed next, so its state is not
        // persisted first (a crash in between re-sends it: a duplicate, never a loss)
        const finished = env.recipients.every(
          (x) => x.state === "delivered" || (x.state === "failed" && x.notified),
        );
        if (!finished) await persist();
      }),
    );
    await writes;
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /**
   * After the deliveries: expiry, the DSN, and removal or the next attempt's time. `waiting`: the
   * recipients whose destination was full (not sent this time, attempt's `busy`); when they are all
   * that is left pending, the message is due again at once and no attempt is counted: the next pump
   * parks it under that destination without a worker (destination-gate.ts) or sends it.
   */
  private async finishAttempt(
    env: Envelope,
    loaded: LoadedConfig,
    waiting: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    const config = loaded.config;
    const { spool, metrics, log } = this.d;
    const onlyWaiting =
      waiting.size > 0 && env.recipients.every((r) => r.state !== "pending" || waiting.has(r.address));
    if (!onlyWaiting) env.attempts += 1;
    const now = this.now();
    if (
      env.recipients.some((r) => r.state === "pending") &&
      expired(env.receivedAt, now, config.queue.maxAge)
    ) {
      for (const recipient of env.recipients.filter((x) => x.state === "pending")) {
        recipient.state = "failed";
        recipient.lastError = {
          code: "EXPIRED",
          message: replyText(`delivery time expired; last error: ${recipient.lastError?.message ?? "none"}`),
          status: "4.4.7",
          ...(recipient.lastError?.remoteMta ? { remoteMta: recipient.lastError.remoteMta } : {}),
        };
        metrics.bounced.inc({ policy: "n/a", reason: "EXPIRED" });
        const { code, message, status } = recipient.lastError;
        // a failed recipient: no receipt to wait for
        void this.logDelivery(env, {
          address: recipient.address,
          outcome: "failed",
          code,
          message,
          status: status ?? "4.4.7",
        });
      }
    }
    await this.notify(env, loaded, now);
    if (env.recipients.every((r) => r.state !== "pending")) {
      // every recipient delivered or failed (its DSN queued): the done record may be late
      await spool.remove(env.id, { delivered: true });
      this.entries.delete(env.id);
      log.info(
        {
          event: "queue-done",
          queueId: env.id,
          delivered: env.recipients.filter((r) => r.state === "delivered").length,
          failed: env.recipients.filter((r) => r.state === "failed").length,
        },
        "message done",
      );
      return;
    }
    const retry = config.queue.retry;
    env.nextAttemptAt = onlyWaiting
      ? now
      : nextAttemptAt(now, env.attempts, retry.initial, retry.max, retry.jitter, this.d.random);
    await spool.update(env);
  }

  /** The delivery log's line of one recipient's result (relay/delivery-log.ts), and its receipt. */
  private logDelivery(
    env: Envelope,
    r: RecipientResult,
    policy?: string,
    messageId?: string,
  ): Promise<void> | undefined {
    const line = deliveryLine(
      {
        queueId: env.id,
        from: env.from,
        size: env.size,
        ...(messageId ? { messageId } : {}),
        attempt: env.attempts,
        receivedAt: env.receivedAt,
        ...(env.acceptedAt !== undefined ? { acceptedAt: env.acceptedAt } : {}),
        ...(policy ? { policy } : {}),
        now: this.now(),
      },
      r,
    );
    this.d.log[line.status === "sent" ? "info" : "warn"](line, `delivery ${line.status}`);
    if (line.status !== "deferred")
      this.d.metrics.deliveryDelay.observe(
        { status: line.status },
        Math.max(0, line.delay - line.delays.beforeQueue),
      );
    return line.status === "sent" ? this.d.receipt?.(env, line, r) : undefined;
  }

  /** Queues one DSN for the recipients that failed since the last one (never for the null sender). */
  private async notify(env: Envelope, loaded: LoadedConfig, now: number): Promise<void> {
    const failed = env.recipients.filter((r) => r.state === "failed" && !r.notified);
    if (!failed.length) return;
    if (env.from !== "") {
      // the failures are durable before the DSN that reports them, as Postfix appends a failed
      // recipient to the message's bounce log (a file) and only later makes the DSN from that log,
      // deleting the log once the DSN is queued (bounce(8)): a crash after the DSN finds them
      // failed, never pending (a sender told "failed" while the recipient gets the mail). A crash between the DSN and the
      // `notified` write below queues a second DSN: at least once, never "failed" and delivered.
      await this.d.spool.update(env);
      let original: Buffer = Buffer.alloc(0);
      // a REQUIRETLS message's DSN is sent with REQUIRETLS too (RFC 8689 section 4.3): over verified
      // TLS to a next hop offering it, or not at all (a DSN's own failure is never reported); its
      // headers (Subject, To, ...) stay out all the same
      if (!env.requireTls)
        try {
          original = await this.d.spool.readMessage(env.id, DSN_HEADER_BYTES); // its headers only
        } catch {
          // headers unavailable: the DSN goes out without them
        }
      const dsn = composeDsn({
        reportingMta: loaded.config.hostname,
        queueId: env.id,
        originalSender: env.from,
        arrivalDate: new Date(env.receivedAt),
        now: new Date(now),
        original,
        // a sender nobody checked (not relayFrom, not logged in: the flag is set at accept time for
        // those) may have forged MAIL FROM: its DSN returns only what identifies the message
        returned: env.tlsRequiredNoTrusted ? "headers" : "identifying",
        // a sender outside the organisation, checked or not (a partner's login writes only to the
        // local domains, over the internal next hop), learns no next hop's name nor local reason
        diagnostics: env.ownSender ? "full" : "codes",
        recipients: failed.map((r) => ({
          address: r.address,
          status: r.lastError?.status ?? "5.0.0",
          diagnostic: r.lastError?.message ?? "failed",
          remote: /^\d{3}[ -]/.test(r.lastError?.message ?? ""),
          // (an outsider's DSN leaves it out: relay/dsn.ts)
          ...(r.lastError?.remoteMta ? { remoteMta: r.lastError.remoteMta } : {}),
        })),
      });
      const id = newQueueId(now);
      const queued = await this.d.spool.enqueue(
        {
          id,
          from: "",
          recipients: [{ address: env.from, state: "pending" }],
          receivedAt: now,
          peer: LOCAL_PEERS.dsn,
          ...(env.requireTls ? { requireTls: true } : {}),
        },
        Buffer.alloc(0),
        dsn,
      );
      if (!queued.ok) throw new Error(`could not queue DSN: ${queued.message}`);
      this.d.log.info(
        { event: "dsn", queueId: env.id, dsnId: id, to: env.from, recipients: failed.length },
        "bounce queued",
      );
      this.add(queued.value);
    }
    for (const r of failed) r.notified = true;
    await this.d.spool.update(env);
  }

  /** Admin (relay/queue/admin-api.ts): the queued messages, oldest first. */
  list(): Envelope[] {
    return [...this.entries.values()].sort((a, b) => a.receivedAt - b.receivedAt);
  }

  /** Admin: one queued message, and whether a delivery attempt is running for it. */
  get(id: string): { env: Envelope; inFlight: boolean } | undefined {
    const env = this.entries.get(id);
    return env ? { env, inFlight: this.inFlight.has(id) } : undefined;
  }

  /** Admin: the stored message, its first `max` bytes. */
  message(id: string, max: number): Promise<Buffer> {
    return this.d.spool.readMessage(id, max);
  }

  /** Admin: attempt this message now (false: not queued). */
  retry(id: string): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    if (!this.inFlight.has(id)) {
      e.nextAttemptAt = Math.min(e.nextAttemptAt, this.now());
      this.schedule(e);
    }
    this.kick();
    return true;
  }

  /**
   * Admin: gives up on a message (after a running attempt ends): its pending recipients fail with
   * `reason` (5.0.0), the sender gets a DSN, the message leaves the queue. false: not queued.
   */
  bounce(id: string, reason: string): Promise<boolean> {
    // a bounce that fails part way (e.g. the DSN could not be queued) leaves the message queued
    return this.exclusive(id, async (env) => {
      for (const r of env.recipients.filter((x) => x.state === "pending")) {
        r.state = "failed";
        r.lastError = { code: "ADMIN_BOUNCE", message: reason, status: "5.0.0" };
        this.d.metrics.bounced.inc({ policy: "n/a", reason: "ADMIN_BOUNCE" });
      }
      await this.notify(env, this.d.config(), this.now());
      await this.d.spool.remove(id);
      this.entries.delete(id);
      this.d.log.info(
        { event: "queue-done", queueId: id, bounced: true, reason },
        "message bounced by admin",
      );
    });
  }

  /**
   * Admin: runs `fn` on a queued message once a running attempt ended, with no attempt starting
   * meanwhile; false: not queued (any more).
   */
  private async exclusive(id: string, fn: (env: Envelope) => Promise<void>): Promise<boolean> {
    // every waiter wakes when the running step ends: the loop lets only the first claim the message,
    // the others wait for its step in turn (two bulk bounces must not queue two DSNs)
    while (this.inFlight.has(id)) await this.inFlight.get(id)?.catch(() => undefined);
    const env = this.entries.get(id);
    if (!env) return false;
    const p = fn(env);
    this.inFlight.set(id, p);
    try {
      await p;
    } finally {
      this.inFlight.delete(id);
      const cur = this.entries.get(id);
      if (cur) {
        this.schedule(cur);
        this.kick();
      }
    }
    return true;
  }

  /** Admin (postsuper -h): never attempted until released; persisted, so it survives a restart. */
  hold(id: string): Promise<boolean> {
    return this.exclusive(id, async (env) => {
      if (env.held) return;
      env.held = true;
      await this.d.spool.update(env);
      this.d.log.info({ event: "queue-hold", queueId: id }, "message put on hold by admin");
    });
  }

  /** Admin (postsuper -H): back in the queue, due now. */
  release(id: string): Promise<boolean> {
    return this.exclusive(id, async (env) => {
      if (!env.held) return;
      delete env.held;
      env.nextAttemptAt = this.now();
      await this.d.spool.update(env);
      this.d.log.info({ event: "queue-release", queueId: id }, "message released by admin");
    });
  }

  /** Admin (postsuper -r): due now with a fresh backoff (attempts from 0); a held one stays held. */
  requeue(id: string): Promise<boolean> {
    return this.exclusive(id, async (env) => {
      env.attempts = 0;
      env.nextAttemptAt = this.now();
      await this.d.spool.update(env);
      this.d.log.info({ event: "queue-requeue", queueId: id }, "message requeued by admin");
    });
  }

  /** Admin (postsuper -d): removed without a DSN to the sender. */
  remove(id: string): Promise<boolean> {
    return this.exclusive(id, async (env) => {
      await this.d.spool.remove(id);
      this.entries.delete(id);
      this.scheduled.delete(id);
      const pending = env.recipients.filter((r) => r.state === "pending").map((r) => r.address);
      this.d.log.warn(
        { event: "queue-done", queueId: id, deleted: true, pending },
        "message deleted by admin, no bounce",
      );
    });
  }

  /**
   * Drain (drain.ts): runs `fn` (a handover) on a queued message once a running attempt or admin
   * command ended, and none starts until it has: an administrator's bounce, hold or delete waits for
   * the handover instead of acting on a message the peer is taking. false: not queued (any more).
   */
  claim(id: string, fn: (env: Envelope) => Promise<void>): Promise<boolean> {
    return this.exclusive(id, fn);
  }

  /**
   * Drain, within claim(): queues the DSN of recipients that failed and were never reported (a
   * crash or a failed write between their failure and their DSN) before the rest is handed over;
   * rejects when the DSN cannot be queued (the message stays).
   */
  notifyFailed(env: Envelope): Promise<void> {
    return this.notify(env, this.d.config(), this.now());
  }

  /** Drain (drain.ts): the message left the queue another way (handed over); forget it. */
  forget(id: string): void {
    this.entries.delete(id);
    this.scheduled.delete(id); // its node, now superseded, is dropped when it surfaces
  }

  /** Stops starting attempts; waits (up to graceMs) for the ones in flight. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const all = Promise.allSettled([...this.inFlight.values()]);
    await Promise.race([all, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }
}
