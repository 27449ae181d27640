// The operator's composition root: the API client, the informer caches (started at once, so a
// standby has warm caches) and one controller per kind (started when this process leads). Each
// controller (operator/controllers/<kind>/) registers its own watches and owns its conditions; this
// file only wires them and decides their queue settings.
import type { Logger } from "pino";
import type { ReconcilerDeps } from "./controllers/deps.js";
import type { ControllerOptions } from "./controllers/event-keys.js";
import { newMailDomainPolicyController } from "./controllers/maildomainpolicy/controller.js";
import { newMailRelayController } from "./controllers/mailrelay/controller.js";
import { httpStatusProbe, SharedProbe, type StatusProbe } from "./controllers/relay-probe.js";
import { httpCheckAsk, PolicyChecks, type CheckAsk } from "./controllers/check-ask.js";
import { newRelayCredentialController } from "./controllers/relaycredential/controller.js";
import { WrittenStatus } from "./controllers/status-write.js";
import { CompileMemo } from "./compile/memo.js";
import { keyOf } from "./objects.js";
import type { RelaySettings } from "./render/input.js";
import { AppliedObjects } from "./runtime/applied.js";
import type { Controller } from "./runtime/controller.js";
import { EventRecorder } from "./runtime/events.js";
import { KubeClient } from "./runtime/kube.js";
import type { KubeAuth } from "./runtime/kubeconfig.js";
import { OperatorMetrics } from "./runtime/metrics.js";
import { allInformers, ClusterState, makeCaches, type Informers } from "./state.js";

export interface OperatorOptions {
  /** A client-node KubeConfig, or runtime/kubeconfig.ts's loadKubeAuth(). */
  kubeConfig: KubeAuth;
  /** Namespaces to watch; undefined/empty: all. */
  namespaces?: string[];
  settings: RelaySettings;
  log: Logger;
  identity: string;
  resyncMs?: number;
  probe?: StatusProbe;
  /** How a relay pod is asked for a pre-flight check (default: its admin POST /check). */
  checkAsk?: CheckAsk;
  enforcePollMs?: number;
  /** How often a policy's delivery figures are refreshed from its relay pods (default 30 s). */
  figuresPollMs?: number;
  metrics?: OperatorMetrics;
  /** Concurrent reconciles of MailDomainPolicies (default 8: mostly status writes, I/O-bound). */
  workers?: number;
  /**
   * A MailRelay is reconciled at most once per this many ms (default 250), and at most once per three
   * times its last reconcile's duration: a burst of policy changes becomes one ConfigMap apply per
   * interval, not one per policy. 0: no limit.
   */
  relayIntervalMs?: number;
  /** Backoff of failed reconciles. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export class Operator {
  readonly client: KubeClient;
  readonly caches: Informers;
  readonly state: ClusterState;
  readonly compiler: CompileMemo;
  readonly metrics: OperatorMetrics;
  readonly controllers: { relays: Controller; policies: Controller; credentials: Controller };
  /** What this process applied and wrote last (skips writes that would change nothing). */
  readonly applied = new AppliedObjects();
  readonly written = new WrittenStatus();
  private running = false;

  constructor(readonly o: OperatorOptions) {
    this.client = new KubeClient(o.kubeConfig);
    this.metrics = o.metrics ?? new OperatorMetrics();
    this.client.listeners.add((i) =>
      this.metrics.apiRequests.inc({ method: i.method, code: String(i.status) }),
    );
    this.client.onConnection = () => this.metrics.apiConnections.inc();
    this.caches = makeCaches(this.client, {
      namespaces: o.namespaces,
      resyncMs: o.resyncMs ?? 300_000,
      log: o.log,
    });
    this.state = new ClusterState(this.caches);
    this.compiler = new CompileMemo(this.state);
    const resyncMs = o.resyncMs ?? 300_000;
    const deps: ReconcilerDeps = {
      client: this.client,
      state: this.state,
      compiler: this.compiler,
      settings: o.settings,
      events: new EventRecorder(this.client, o.identity, o.log),
      log: o.log,
      // pods are asked at most twice per poll period, however many policy reconciles want to know
      probe: new SharedProbe(
        o.probe ?? httpStatusProbe,
        Math.min(o.enforcePollMs ?? 10_000, o.figuresPollMs ?? 30_000) / 2,
      ).get,
      enforcePollMs: o.enforcePollMs ?? 10_000,
      figuresPollMs: o.figuresPollMs ?? 30_000,
      now: () => new Date(),
      applied: this.applied,
      reapplyMs: resyncMs,
      written: this.written,
      checks: new PolicyChecks(),
      checkAsk: o.checkAsk ?? httpCheckAsk,
    };
    const queue = { baseDelayMs: o.retryBaseMs ?? 200, maxDelayMs: o.retryMaxMs ?? 60_000 };
    const copts = (workers: number, minIntervalMs = 0, minIntervalFactor = 0): ControllerOptions => ({
      workers,
      metrics: this.metrics,
      log: o.log,
      queue: { ...queue, minIntervalMs, minIntervalFactor },
    });
    this.controllers = {
      // and at least 3x its last reconcile's duration: a relay with a large config coalesces more
      relays: newMailRelayController(
        deps,
        copts(2, o.relayIntervalMs ?? 250, o.relayIntervalMs === 0 ? 0 : 3),
      ),
      // 16 status writes at once: with 8, a burst of 10,000 policies POSTed 16 at a time left the
      // operator's share of the apiserver behind the POSTs (converged 14.3 s after the last POST; with
      // 16, 2.8 s: docs/benchmarks.md, issue 18)
      policies: newMailDomainPolicyController(deps, copts(o.workers ?? 16)),
      credentials: newRelayCredentialController(deps, copts(2)),
    };
  }

  /** Starts the informers (also on a standby: its caches are warm when it takes over). */
  startInformers(): void {
    for (const i of allInformers(this.caches)) i.start();
  }

  async waitForSync(): Promise<void> {
    await Promise.all(allInformers(this.caches).map((i) => i.waitForSync()));
  }

  hasSynced(): boolean {
    return allInformers(this.caches).every((i) => i.hasSynced());
  }

  /** Starts reconciling (once leading): every known object is queued. */
  async startControllers(): Promise<void> {
    if (this.running) return;
    await this.waitForSync();
    this.running = true;
    for (const c of Object.values(this.controllers)) c.start();
    this.resync();
  }

  isRunning(): boolean {
    return this.running;
  }

  /** Queues every MailRelay, MailDomainPolicy and RelayCredential (what the periodic resync does). */
  resync(): void {
    for (const r of this.caches.relays.list()) this.controllers.relays.enqueue(keyOf(r));
    for (const p of this.caches.policies.list()) this.controllers.policies.enqueue(keyOf(p));
    for (const c of this.caches.credentials.list()) this.controllers.credentials.enqueue(keyOf(c));
  }

  /** Resolves when no controller has queued or running work (delayed requeues don't count). */
  async waitIdle(): Promise<void> {
    for (;;) {
      await Promise.all(Object.values(this.controllers).map((c) => c.queue.whenIdle()));
      // a reconcile of one kind may have queued another; settle for a moment and look again
      await new Promise((r) => setTimeout(r, 50));
      if (Object.values(this.controllers).every((c) => c.queue.isIdle())) return;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(Object.values(this.controllers).map((c) => c.stop()));
    await Promise.all(allInformers(this.caches).map((i) => i.stop()));
    this.client.close();
  }
}
