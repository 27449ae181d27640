// Informers: per namespace (or one cluster-wide stream), list, then watch from the list's
// resourceVersion (with bookmarks), keeping a cache of the objects and handing every change to the
// handlers; client-go's reflector in small:
// - the watch ends normally (the apiserver's timeout): watch again from the last resourceVersion;
// - 410 Gone (the resourceVersion is too old), as a status or an ERROR event: list again, and hand
//   the differences to the handlers (deletes for what is gone, updates for what changed);
// - any other failure (429 while a new CRD's watch cache warms up, the apiserver restarting, a dropped
//   connection): start again with exponential backoff; watches that keep ending right away back off
//   too (100 ms doubling to 5 s), so nothing spins;
// - a periodic resync hands every cached object to the handlers again (level-triggered: a missed
//   event is repaired within one resync period).
// Lists and watches go through KubeClient (keep-alive connections), not client-node's ListWatch:
// client-node's ListWatch and Watch load its generated API models, about 60 MB of memory.
import type { Logger } from "pino";
import { backoffDelay } from "./workqueue.js";
import {
  ApiError,
  resourcePath,
  type KubeClient,
  type KubeObject,
  type Resource,
  type WatchEvent,
} from "./kube.js";

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
  /** A watch asks the apiserver to end it after a random time in [min, 2 x min] (default 300 s). */
  watchTimeoutSeconds?: number;
}

interface Stream<T> {
  namespace: string | undefined;
  /** The cache: namespace → name → object. */
  objects: Map<string, Map<string, T>>;
  resourceVersion: string;
  synced: boolean;
  failures: number;
  /** Watches that ended less than a second after they started, in a row. */
  quick: number;
  timer?: NodeJS.Timeout;
  abort?: AbortController;
  running: boolean;
}

class Gone extends Error {}

/** The read side of an informer: what ClusterState and the controllers use of a kind's cache. */
export interface Cache<T> {
  on(handler: Handler<T>): void;
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
  version(namespace?: string): number;
}

export class Informer<T extends KubeObject> implements Cache<T> {
  private readonly streams: Stream<T>[] = [];
  private readonly handlers: Handler<T>[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private stopped = true;
  private readonly syncWaiters: (() => void)[] = [];
  /** Per namespace, how many adds/updates/deletes the cache took (derived views memoise on it). */
  private readonly versions = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    readonly resource: Resource,
    private readonly opts: InformerOptions<T> = {},
  ) {
    const namespaces = opts.namespaces?.length ? opts.namespaces : [undefined];
    for (const namespace of namespaces)
      this.streams.push({
        namespace,
        objects: new Map(),
        resourceVersion: "",
        synced: false,
        failures: 0,
        quick: 0,
        running: false,
      });
  }

  on(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  get(namespace: string, name: string): T | undefined {
    for (const s of this.streams) {
      if (s.namespace !== undefined && s.namespace !== namespace) continue;
      const o = s.objects.get(namespace)?.get(name);
      if (o) return o;
    }
    return undefined;
  }

  list(namespace?: string): T[] {
    const out: T[] = [];
    for (const s of this.streams) {
      if (namespace !== undefined && s.namespace !== undefined && s.namespace !== namespace) continue;
      if (namespace !== undefined) {
        const m = s.objects.get(namespace);
        if (m) for (const o of m.values()) out.push(o);
      } else for (const m of s.objects.values()) for (const o of m.values()) out.push(o);
    }
    return out;
  }

  /**
   * A number that changes whenever the cache's objects in `namespace` change (undefined: every
   * namespace). Views computed from list(namespace) stay valid while it stays the same.
   */
  version(namespace?: string): number {
    if (namespace === undefined) {
      let sum = 0;
      for (const v of this.versions.values()) sum += v;
      return sum;
    }
    return this.versions.get(namespace) ?? 0;
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
    for (const s of this.streams) this.run(s);
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

  /** Stops watching (a list in flight is left to finish; its result is dropped). */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const s of this.streams) {
      if (s.timer) clearTimeout(s.timer);
      s.abort?.abort();
    }
    return Promise.resolve();
  }

  /** The stream's loop: list when needed, watch, and again, until stopped (errors: backoff, then again). */
  private run(s: Stream<T>): void {
    s.timer = undefined;
    if (this.stopped || s.running) return;
    s.running = true;
    void (async () => {
      let delay = 0;
      try {
        if (!s.resourceVersion) await this.relist(s);
        const started = Date.now();
        await this.watchOnce(s);
        // ended normally: again at once, unless watches keep ending right away
        s.quick = Date.now() - started < 1000 ? s.quick + 1 : 0;
        delay = s.quick ? backoffDelay(s.quick, 100, 5000) : 0;
      } catch (err) {
        if (err instanceof Gone || (err instanceof ApiError && err.code === 410)) s.resourceVersion = "";
        else delay = this.onError(s, err);
      } finally {
        s.running = false;
      }
      if (this.stopped) return;
      if (delay > 0) {
        s.timer = setTimeout(() => this.run(s), delay);
        s.timer.unref();
      } else setImmediate(() => this.run(s));
    })();
  }

  private async relist(stream: Stream<T>): Promise<void> {
    const selector = this.opts.labelSelector;
    const transform = this.opts.transform;
    let list;
    try {
      // transformed page by page: 10,000 policies' managedFields (or Secrets' values) are dropped as
      // they arrive, not held until the last page (the operator's peak memory at a cold start)
      list = await this.client.list<T>(
        this.resource,
        stream.namespace,
        selector ? { labelSelector: selector } : {},
        transform,
      );
    } catch (e) {
      if (this.opts.optional && (e as { code?: number }).code === 404) this.markSynced(stream);
      throw e;
    }
    if (this.stopped) return;
    const fresh = new Map<string, Map<string, T>>();
    for (const it of list.items) {
      const ns = it.metadata.namespace ?? "";
      let byName = fresh.get(ns);
      if (!byName) fresh.set(ns, (byName = new Map<string, T>()));
      byName.set(it.metadata.name, it);
    }
    // what is gone since the last list, then what is new or changed
    for (const [ns, m] of stream.objects)
      for (const [name, old] of m)
        if (!fresh.get(ns)?.has(name)) {
          m.delete(name);
          this.bump(ns);
          this.emit("delete", old);
        }
    for (const [ns, m] of fresh) for (const obj of m.values()) this.store(stream, ns, obj);
    for (const [ns, m] of stream.objects) if (m.size === 0) stream.objects.delete(ns);
    stream.resourceVersion = list.metadata.resourceVersion ?? "";
    stream.failures = 0;
    this.markSynced(stream);
  }

  private watchOnce(s: Stream<T>): Promise<void> {
    const min = this.opts.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.floor(min * (1 + Math.random()));
    s.abort = new AbortController();
    return this.client.watch(
      resourcePath(this.resource, s.namespace),
      {
        resourceVersion: s.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.opts.labelSelector,
      },
      (ev) => this.onWatchEvent(s, ev),
      // no byte for this long: the connection is dead (bookmarks come about once a minute)
      { signal: s.abort.signal, idleMs: (timeoutSeconds + 60) * 1000 },
    );
  }

  private onWatchEvent(s: Stream<T>, ev: WatchEvent): void {
    if (this.stopped) return;
    const obj = ev.object as T;
    if (ev.type === "ERROR") {
      if (ev.object?.code === 410) throw new Gone("resourceVersion too old");
      throw new ApiError(ev.object?.code ?? 500, "WATCH", this.resource.plural, ev.object);
    }
    const rv = obj?.metadata?.resourceVersion;
    if (ev.type === "BOOKMARK") {
      if (rv) s.resourceVersion = rv;
      return;
    }
    if (!obj?.metadata?.name) return;
    s.failures = 0;
    const ns = obj.metadata.namespace ?? "";
    if (ev.type === "DELETED") {
      const m = s.objects.get(ns);
      const old = m?.get(obj.metadata.name);
      if (m && old) {
        m.delete(obj.metadata.name);
        if (m.size === 0) s.objects.delete(ns);
        this.bump(ns);
        this.opts.transform?.(obj);
        this.emit("delete", obj, old);
      }
    } else {
      this.opts.transform?.(obj);
      this.store(s, ns, obj);
    }
    if (rv) s.resourceVersion = rv;
  }

  /** Puts an object into the cache and tells the handlers (nothing when it is the version cached). */
  private store(s: Stream<T>, ns: string, obj: T): void {
    let m = s.objects.get(ns);
    if (!m) s.objects.set(ns, (m = new Map<string, T>()));
    const old = m.get(obj.metadata.name);
    const rv = obj.metadata.resourceVersion;
    if (old && rv !== undefined && old.metadata.resourceVersion === rv) return;
    m.set(obj.metadata.name, obj);
    this.bump(ns);
    this.emit(old ? "update" : "add", obj, old);
  }

  private bump(ns: string): void {
    this.versions.set(ns, (this.versions.get(ns) ?? 0) + 1);
  }

  /** Logs a failed list/watch and returns the backoff before the next try. */
  private onError(s: Stream<T>, err: unknown): number {
    if (this.stopped) return 0;
    s.failures++;
    const delay = backoffDelay(s.failures, this.opts.retryBaseMs ?? 250, this.opts.retryMaxMs ?? 30_000);
    const e = err as { statusCode?: number; code?: number | string; message?: string };
    const status = e?.statusCode ?? e?.code;
    const notInstalled = this.opts.optional && status === 404;
    this.opts.log?.[notInstalled ? "debug" : "warn"](
      { resource: this.resource.plural, namespace: s.namespace, status, err: e?.message, retryInMs: delay },
      notInstalled ? "resource not installed, checking again later" : "list/watch failed, restarting",
    );
    return delay;
  }

  private markSynced(s: Stream<T>): void {
    if (s.synced) return;
    s.synced = true;
    if (this.hasSynced()) for (const w of this.syncWaiters.splice(0)) w();
  }

  private emit(type: EventType, obj: T, old?: T): void {
    if (type !== "resync" && this.opts.log?.isLevelEnabled("trace"))
      this.opts.log.trace(
        {
          resource: this.resource.plural,
          type,
          object: `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`,
          resourceVersion: obj.metadata.resourceVersion,
        },
        "informer event",
      );
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (e) {
        this.opts.log?.error({ err: e }, "informer handler failed");
      }
    }
  }
}
