// Informers: client-node's ListWatch (list, then watch from the list's resourceVersion; a 410 Gone
// relists) per namespace, plus what ListWatch leaves to its user: it stops on any other error (for
// instance 429 while a new CRD's watch cache warms up, or the apiserver restarting), so we start it
// again with exponential backoff; a periodic resync hands every cached object to the handlers again
// (level-triggered: a missed event is repaired within one resync period).
import * as k8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { backoffDelay } from "./workqueue.js";
import { resourcePath, type KubeClient, type KubeObject, type Resource } from "./kube.js";

export type EventType = "add" | "update" | "delete" | "resync";
/** `old`: for an update, the version the cache held before (for a resync, the object itself). */
export type Handler<T> = (type: EventType, obj: T, old?: T) => void;

export interface InformerOptions<T> {
  /** Namespaces to watch; undefined or empty: all namespaces (one cluster-wide watch). */
  namespaces?: string[];
  labelSelector?: string;
  /** Resync period; 0 disables. */
  resyncMs?: number;
  /** Applied to every object before it enters the cache (e.g. drop Secret values). Mutates in place. */
  transform?: (obj: T) => void;
  log?: Logger;
  /**
   * The resource may not be installed (e.g. cert-manager's CRDs): a 404 counts as synced and empty, and
   * the informer keeps trying in the background, so it picks the resource up once it is installed.
   */
  optional?: boolean;
  /** Backoff for restarting a failed list/watch. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

// ListWatch's typings want client-node's model types; the cache holds our plain JSON objects.
type LW = k8s.ListWatch<k8s.KubernetesObject>;

interface Stream {
  namespace: string | undefined;
  lw: LW;
  synced: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
}

/**
 * A Watch that will not reconnect in a tight loop: ListWatch re-watches (or relists on 410) at once when
 * a watch ends, so a watch the apiserver keeps closing right away would spin. Watches that start in
 * quick succession wait with exponential backoff (100 ms doubling to 5 s); one that lasted resets it.
 */
export class ThrottledWatch extends k8s.Watch {
  private lastStart = 0;
  private quick = 0;
  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const now = Date.now();
    this.quick = now - this.lastStart < 1000 ? this.quick + 1 : 0;
    if (this.quick > 0) await new Promise((r) => setTimeout(r, backoffDelay(this.quick, 100, 5000)));
    this.lastStart = Date.now();
    return super.watch(path, queryParams, callback, done);
  }
}

export class Informer<T extends KubeObject> {
  private readonly streams: Stream[] = [];
  private readonly handlers: Handler<T>[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private stopped = true;
  private readonly syncWaiters: (() => void)[] = [];
  /** The last version handed to the handlers per namespace/name: an update's old object (event filters). */
  private readonly last = new Map<string, T>();

  constructor(
    private readonly client: KubeClient,
    readonly resource: Resource,
    private readonly opts: InformerOptions<T> = {},
  ) {
    const namespaces = opts.namespaces?.length ? opts.namespaces : [undefined];
    for (const ns of namespaces) this.streams.push(this.makeStream(ns));
  }

  on(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    for (const s of this.streams) {
      if (s.namespace !== undefined && s.namespace !== namespace) continue;
      const o = s.lw.get(name, namespace);
      if (o) return o as unknown as T;
    }
    return undefined;
  }

  list(namespace?: string): T[] {
    const out: T[] = [];
    for (const s of this.streams) {
      if (namespace !== undefined && s.namespace !== undefined && s.namespace !== namespace) continue;
      out.push(...(s.lw.list(namespace) as unknown as T[]));
    }
    return out;
  }

  hasSynced(): boolean {
    return this.streams.every((s) => s.synced);
  }

  /** Resolves once every stream has listed successfully (retrying for as long as it takes). */
  waitForSync(): Promise<void> {
    if (this.hasSynced()) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const s of this.streams) this.startStream(s);
    const every = this.opts.resyncMs ?? 0;
    if (every > 0) {
      this.resyncTimer = setInterval(() => this.resync(), every);
      this.resyncTimer.unref();
    }
  }

  /** Hands every cached object to the handlers as a "resync" event. */
  resync(): void {
    for (const o of this.list()) this.emit("resync", o, o);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const s of this.streams) {
      if (s.timer) clearTimeout(s.timer);
      await s.lw.stop();
    }
  }

  private makeStream(namespace: string | undefined): Stream {
    const path = resourcePath(this.resource, namespace);
    const selector = this.opts.labelSelector;
    const stream = {} as Stream;
    const listFn = async (): Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> => {
      let list;
      try {
        list = await this.client.list<T>(
          this.resource,
          namespace,
          selector ? { labelSelector: selector } : {},
        );
      } catch (e) {
        if (this.opts.optional && (e as { code?: number }).code === 404)
          setImmediate(() => this.markSynced(stream));
        throw e;
      }
      for (const it of list.items) this.opts.transform?.(it);
      stream.failures = 0;
      // the first successful list marks the stream synced once ListWatch has filled its cache (it does
      // so synchronously after awaiting this promise, i.e. before the next macrotask)
      setImmediate(() => this.markSynced(stream));
      return list as unknown as k8s.KubernetesListObject<k8s.KubernetesObject>;
    };
    const lw: LW = new k8s.ListWatch(
      path,
      new ThrottledWatch(this.client.kubeConfig),
      listFn,
      false,
      selector,
    );
    Object.assign(stream, { namespace, lw, synced: false, failures: 0 });
    const transform = this.opts.transform;
    // ListWatch hands watch events' objects to these callbacks after storing them; transform first.
    const wrap =
      (type: EventType) =>
      (o: k8s.KubernetesObject): void => {
        const obj = o as unknown as T;
        transform?.(obj);
        const k = `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
        const old = this.last.get(k);
        if (type === "delete") this.last.delete(k);
        else this.last.set(k, obj);
        this.emit(type, obj, old);
      };
    lw.on(k8s.ADD, wrap("add"));
    lw.on(k8s.UPDATE, wrap("update"));
    lw.on(k8s.DELETE, wrap("delete"));
    lw.on(k8s.ERROR, (err: unknown) => this.onError(stream, err));
    return stream;
  }

  private startStream(s: Stream): void {
    s.timer = undefined;
    if (this.stopped) return;
    s.lw.start().catch((err: unknown) => this.onError(s, err));
  }

  private onError(s: Stream, err: unknown): void {
    if (this.stopped) return;
    s.failures++;
    const delay = backoffDelay(s.failures, this.opts.retryBaseMs ?? 250, this.opts.retryMaxMs ?? 30_000);
    const e = err as { statusCode?: number; code?: number; message?: string };
    const status = e?.statusCode ?? e?.code;
    const notInstalled = this.opts.optional && status === 404;
    this.opts.log?.[notInstalled ? "debug" : "warn"](
      { resource: this.resource.plural, namespace: s.namespace, status, err: e?.message, retryInMs: delay },
      notInstalled ? "resource not installed, checking again later" : "list/watch failed, restarting",
    );
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => this.startStream(s), delay);
    s.timer.unref();
  }

  private markSynced(s: Stream): void {
    if (s.synced) return;
    s.synced = true;
    if (this.hasSynced()) for (const w of this.syncWaiters.splice(0)) w();
  }

  private emit(type: EventType, obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (e) {
        this.opts.log?.error({ err: e }, "informer handler failed");
      }
    }
  }
}
