// Where the relay's deliveries run (issue 18). By default on a thread of their own
// (delivery-worker.ts): the connections to next hops, their TLS, DKIM and S/MIME work no longer
// share the event loop that answers SMTP clients, whose accept latency they stretched (session 11
// measured the tail with deliveries held off that loop: docs/benchmarks.md). The scheduler, the
// journal, the receipts and every book the admin API reads stay on the relay's thread: the thread
// only delivers, and what it observes comes back as the plain records the observers already take
// (delivery-observers.ts), its log lines as lines. A relay given a clock of its own (tests) keeps
// its deliveries on its own thread: a function cannot cross to another thread.
// Hand-written over worker_threads: a pool library (piscina) would add task queues and thread
// counts this one long-lived thread with its own connection pool does not need.
import { Worker } from "node:worker_threads";
import type { LoadedConfig } from "./config/load.js";
import {
  buildDeliverer,
  type DeliveryObservers,
  type DeliveryView,
  type ObserverName,
} from "./delivery-runtime.js";
import type { ListenerKind } from "./inbound/rules.js";
import type { Logger } from "./log.js";
import type { Deliverer, DeliveryRequest, RecipientResult } from "./outbound/deliver.js";
import type { StsLookup } from "./outbound/mta-sts.js";
import type { Timeouts } from "./outbound/transport-options.js";

/** What the scheduler hands deliveries to, on whichever thread they run. */
export interface DeliveryEngine {
  deliver(req: DeliveryRequest): Promise<RecipientResult[]>;
  /** A new config is loaded: no connection set up under the old one is reused. */
  reloaded(l: LoadedConfig): void;
  /** The listeners are bound (loop detection compares next hops with them). */
  listening(bound: Iterable<readonly [ListenerKind, number]>): void;
  close(): Promise<void>;
}

/** Deliveries on the relay's own thread. */
export class InProcessDelivery implements DeliveryEngine {
  private readonly deliverer: Deliverer;
  constructor(private readonly v: DeliveryView) {
    this.deliverer = buildDeliverer(v);
  }
  deliver(req: DeliveryRequest): Promise<RecipientResult[]> {
    return this.deliverer.deliver(req);
  }
  reloaded(): void {
    this.v.pool.clear();
  }
  listening(): void {} // the view reads the listeners as they are
  close(): Promise<void> {
    this.v.pool.clear();
    return Promise.resolve();
  }
}

/** A message's bytes as they cross to the thread: copied once, or the file it is read from there. */
export type WireBody = { bytes: Uint8Array } | { file: string; size: number; head: Uint8Array };
export type WireRequest = Omit<DeliveryRequest, "message"> & { message: WireBody };

export interface WorkerData {
  timeouts: Timeouts;
  mxPort: number;
  poolIdleMs: number;
  logLevel: string;
}

export type ToThread =
  | { t: "config"; loaded: LoadedConfig }
  | { t: "bound"; bound: [ListenerKind, number][] }
  | { t: "deliver"; id: number; req: WireRequest }
  | { t: "sts"; id: number; lookup?: StsLookup; error?: string };

export type FromThread =
  | { t: "result"; id: number; results?: RecipientResult[]; error?: string }
  | { t: "event"; name: ObserverName; record: unknown }
  | { t: "sts"; id: number; domain: string }
  | { t: "log"; line: string };

export interface DeliveryThreadOptions {
  loaded(): LoadedConfig;
  mtaSts(domain: string): Promise<StsLookup>;
  observers: DeliveryObservers;
  log: Logger;
  timeouts: Timeouts;
  mxPort: number;
  poolIdleMs: number;
}

/** A thread that ends within this long of its start is restarted only after it. */
const RESTART_DELAY_MS = 1000;

const SOURCE = import.meta.url.endsWith(".ts");
const WORKER_URL = new URL(SOURCE ? "./delivery-worker.ts" : "./delivery-worker.js", import.meta.url);

/** Pino's level numbers, as the thread's log lines carry them. */
const LEVELS: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

interface Pending {
  req: DeliveryRequest;
  resolve(r: RecipientResult[]): void;
  reject(e: Error): void;
}

export class DeliveryThread implements DeliveryEngine {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private bound: [ListenerKind, number][] = [];
  private closing = false;
  private startedAt = 0;

  constructor(private readonly o: DeliveryThreadOptions) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const data: WorkerData = {
      timeouts: this.o.timeouts,
      mxPort: this.o.mxPort,
      poolIdleMs: this.o.poolIdleMs,
      logLevel: this.o.log.level,
    };
    // from source (tests, the demo), the thread loads TypeScript as the relay's own thread does
    const w = new Worker(WORKER_URL, {
      workerData: data,
      execArgv: SOURCE ? ["--import", import.meta.resolve("tsx")] : [],
    });
    this.startedAt = Date.now();
    w.unref(); // the relay's listeners and timers keep the process; the thread never does alone
    w.on("message", (m: FromThread) => this.received(w, m));
    w.on("error", (e) =>
      this.o.log.error({ event: "delivery-thread", err: String(e) }, "delivery thread failed"),
    );
    w.on("exit", (code) => this.exited(w, code));
    w.postMessage({ t: "config", loaded: this.o.loaded() } satisfies ToThread);
    if (this.bound.length) w.postMessage({ t: "bound", bound: this.bound } satisfies ToThread);
    return w;
  }

  async deliver(req: DeliveryRequest): Promise<RecipientResult[]> {
    const message = await wireBody(req.message);
    const w = this.worker;
    if (!w) return interrupted(req, "the delivery thread is restarting");
    const id = ++this.next;
    return new Promise<RecipientResult[]>((resolve, reject) => {
      this.pending.set(id, { req, resolve, reject });
      const msg: ToThread = { t: "deliver", id, req: { ...req, message } };
      w.postMessage(
        msg,
        "bytes" in message ? [message.bytes.buffer as ArrayBuffer] : [message.head.buffer as ArrayBuffer],
      );
    });
  }

  reloaded(l: LoadedConfig): void {
    this.worker?.postMessage({ t: "config", loaded: l } satisfies ToThread);
  }

  listening(bound: Iterable<readonly [ListenerKind, number]>): void {
    this.bound = [...bound].map(([k, p]) => [k, p]);
    this.worker?.postMessage({ t: "bound", bound: this.bound } satisfies ToThread);
  }

  async close(): Promise<void> {
    this.closing = true;
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private received(w: Worker, m: FromThread): void {
    switch (m.t) {
      case "result": {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.results) p.resolve(m.results);
        else p.reject(new Error(m.error ?? "delivery failed"));
        return;
      }
      case "event":
        (this.o.observers[m.name] as (r: unknown) => void)(m.record);
        return;
      case "sts":
        this.o.mtaSts(m.domain).then(
          (lookup) => w.postMessage({ t: "sts", id: m.id, lookup } satisfies ToThread),
          (e: unknown) => w.postMessage({ t: "sts", id: m.id, error: String(e) } satisfies ToThread),
        );
        return;
      case "log":
        this.relog(m.line);
        return;
    }
  }

  /** A log line of the thread, written by the relay's logger (its destination, its format). */
  private relog(line: string): void {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, time: _t, pid: _p, hostname: _h, component: _c, ...fields } = rec;
    const label = LEVELS[typeof level === "number" ? level : 30] ?? "info";
    this.o.log[label](fields, typeof msg === "string" ? msg : "");
  }

  private exited(w: Worker, code: number): void {
    if (w !== this.worker) return;
    this.worker = undefined;
    // what was in flight is retried: the messages are in the journal until their results are
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve(interrupted(p.req, "the delivery thread ended during the attempt"));
    }
    if (this.closing) return;
    this.o.log.error({ event: "delivery-thread", code }, "delivery thread ended; restarting it");
    const wait = Date.now() - this.startedAt < RESTART_DELAY_MS ? RESTART_DELAY_MS : 0;
    setTimeout(() => {
      if (!this.closing && !this.worker) this.worker = this.spawn();
    }, wait).unref();
  }
}

/** Every recipient of a delivery the thread could not finish: deferred, retried later. */
function interrupted(req: DeliveryRequest, why: string): RecipientResult[] {
  return req.recipients.map((address) => ({
    address,
    outcome: "deferred",
    code: "CONNECTION_LOST",
    message: why,
    status: "4.4.2",
  }));
}

/** The body as it crosses: a fresh copy the thread takes over, or the file and its head. */
async function wireBody(b: DeliveryRequest["message"]): Promise<WireBody> {
  if (!b.inMemory && b.file) return { file: b.file, size: b.size, head: new Uint8Array(b.head) };
  // a copy of its own: a journal buffer may be a view of a larger one, which a transfer would take
  return { bytes: new Uint8Array(await b.load()) };
}
