// The operator: informers (started at once, so a standby has warm caches), one controller per kind
// (started when this process leads), and the mapping from every watched object back to the keys of
// the MailRelays, MailDomainPolicies and RelayCredentials it affects.
import type { Logger } from "pino";
import { policyReferences } from "./compile/relay-config.js";
import { policyEventKeys, relayEventKeys, type EventKeys } from "./mapping.js";
import { names, RELAY_LABEL } from "./render/meta.js";
import type { RelaySettings } from "./render/input.js";
import { AppliedObjects } from "./runtime/applied.js";
import { Controller } from "./runtime/controller.js";
import { EventRecorder } from "./runtime/events.js";
import type { EventType } from "./runtime/informer.js";
import { KubeClient, type KubeObject } from "./runtime/kube.js";
import type { KubeAuth } from "./runtime/kubeconfig.js";
import { OperatorMetrics } from "./runtime/metrics.js";
import {
  httpStatusProbe,
  SharedProbe,
  WrittenStatus,
  type ReconcilerDeps,
  type StatusProbe,
} from "./reconcilers/common.js";
import { reconcileMailDomainPolicy } from "./reconcilers/maildomainpolicy.js";
import { reconcileMailRelay } from "./reconcilers/mailrelay.js";
import { reconcileRelayCredential } from "./reconcilers/relaycredential.js";
import { allInformers, ClusterState, makeCaches, type Caches, type CredentialObject } from "./state.js";

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

const key = (o: { metadata: { namespace?: string; name?: string } }): string =>
  `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;

/** Whether an AppliedObjects key names one of relay `relay`'s objects (names.* in render/meta.ts). */
const ownedName = (k: string, relay: string): boolean => {
  const name = k.slice(k.lastIndexOf("/") + 1);
  return name === relay || name === `${relay}-config` || name === `${relay}-tls`;
};

export class Operator {
  readonly client: KubeClient;
  readonly caches: Caches;
  readonly state: ClusterState;
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
    const resyncMs = o.resyncMs ?? 300_000;
    const deps: ReconcilerDeps = {
      client: this.client,
      state: this.state,
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
    };
    const queue = { baseDelayMs: o.retryBaseMs ?? 200, maxDelayMs: o.retryMaxMs ?? 60_000 };
    const copts = (workers: number, minIntervalMs = 0, minIntervalFactor = 0) => ({
      workers,
      metrics: this.metrics,
      log: o.log,
      queue: { ...queue, minIntervalMs, minIntervalFactor },
    });
    this.controllers = {
      relays: new Controller(
        "mailrelay",
        (k) => reconcileMailRelay(deps, k),
        // and at least 3x its last reconcile's duration: a relay with a large config coalesces more
        copts(2, o.relayIntervalMs ?? 250, o.relayIntervalMs === 0 ? 0 : 3),
      ),
      policies: new Controller(
        "maildomainpolicy",
        (k) => reconcileMailDomainPolicy(deps, k),
        copts(o.workers ?? 8),
      ),
      credentials: new Controller("relaycredential", (k) => reconcileRelayCredential(deps, k), copts(2)),
    };
    this.wire();
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
    for (const r of this.caches.relays.list()) this.controllers.relays.enqueue(key(r));
    for (const p of this.caches.policies.list()) this.controllers.policies.enqueue(key(p));
    for (const c of this.caches.credentials.list()) this.controllers.credentials.enqueue(key(c));
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

  private enqueueKeys(k: EventKeys): void {
    for (const r of k.relays) this.controllers.relays.enqueue(r);
    for (const p of k.policies) this.controllers.policies.enqueue(p);
  }

  /** Policies (and the relays selecting them) that reference a Secret/ConfigMap/RelayCredential by name. */
  private enqueueReferencing(ns: string, kind: "secrets" | "configMaps" | "credentials", name: string): void {
    const creds = new Map<string, CredentialObject>();
    for (const c of this.caches.credentials.list(ns)) creds.set(c.metadata.name, c);
    for (const p of this.caches.policies.list(ns)) {
      let refs;
      try {
        refs = policyReferences(p, creds);
      } catch {
        continue;
      }
      if (!refs[kind].has(name)) continue;
      this.controllers.policies.enqueue(key(p));
      for (const r of this.state.relaysSelecting(p)) this.controllers.relays.enqueue(key(r));
    }
    // relay-wide inbound credentials, and relays using a Secret for their server certificate
    for (const r of this.caches.relays.list(ns)) {
      const spec = r.spec as {
        inbound?: {
          credentialRefs?: { name: string }[];
          localRecipients?: { configMapRef?: { name: string } };
        };
        certificate?: { secretRef?: { name: string } };
      };
      if (kind === "credentials" && spec.inbound?.credentialRefs?.some((c) => c.name === name))
        this.controllers.relays.enqueue(key(r));
      // the recipients list of the local domains (issue 15 finding 7)
      if (kind === "configMaps" && spec.inbound?.localRecipients?.configMapRef?.name === name)
        this.controllers.relays.enqueue(key(r));
      if (kind === "secrets") {
        if (spec.certificate?.secretRef?.name === name) this.controllers.relays.enqueue(key(r));
        if (names.fleetSecret(r.metadata.name) === name) this.controllers.relays.enqueue(key(r));
        for (const ref of spec.inbound?.credentialRefs ?? []) {
          const c = creds.get(ref.name);
          if (c?.spec.passwordSecretRef?.name === name) this.controllers.relays.enqueue(key(r));
        }
      }
    }
    if (kind === "secrets")
      for (const c of creds.values()) {
        const s = c.spec as { passwordSecretRef?: { name: string }; secretRef?: { name: string } };
        if (
          s.passwordSecretRef?.name === name ||
          s.secretRef?.name === name ||
          `${c.metadata.name}-client-tls` === name
        )
          this.controllers.credentials.enqueue(key(c));
      }
  }

  private ownerKey(o: KubeObject, kind: string): string | undefined {
    const ref = o.metadata.ownerReferences?.find(
      (r) => r.kind === kind && r.apiVersion.startsWith("sealpost.dev/"),
    );
    return ref ? `${o.metadata.namespace ?? ""}/${ref.name}` : undefined;
  }

  private wire(): void {
    const c = this.caches;
    const ctl = this.controllers;
    // the relay itself; its policies (before and after) only when its selector/spec changed
    c.relays.on((t: EventType, r, old) => {
      if (t === "delete") {
        this.state.forgetCompile(key(r));
        const ns = r.metadata.namespace ?? "";
        this.applied.forget((k) => k.includes(`/${ns}/`) && ownedName(k, r.metadata.name));
        this.written.forget(`MailRelay/${key(r)}`);
      }
      this.enqueueKeys(relayEventKeys(t, r, old, c.policies.list(r.metadata.namespace)));
    });
    // the policy itself, the relays selecting it, and the policies claiming one of its domains
    // (conflicts) — not the whole namespace: a policy's own status write must not fan out to N
    c.policies.on((t: EventType, p, old) => {
      const ns = p.metadata.namespace;
      if (t === "delete") this.written.forget(`MailDomainPolicy/${key(p)}`);
      const peers = (d: string): string[] => this.state.domainClaimants(ns ?? "", d);
      this.enqueueKeys(policyEventKeys(t, p, old, c.relays.list(ns), peers));
    });
    c.credentials.on((t: EventType, cr) => {
      if (t !== "delete") ctl.credentials.enqueue(key(cr));
      if (t !== "resync")
        this.enqueueReferencing(cr.metadata.namespace ?? "", "credentials", cr.metadata.name);
    });
    c.secrets.on((_t, s) => this.enqueueReferencing(s.metadata.namespace ?? "", "secrets", s.metadata.name));
    c.configMaps.on((_t, cm) => {
      const owner = this.ownerKey(cm, "MailRelay");
      if (owner) ctl.relays.enqueue(owner);
      else this.enqueueReferencing(cm.metadata.namespace ?? "", "configMaps", cm.metadata.name);
    });
    // the Service's addresses (ClusterIP, load-balancer ingress) go into the relay's config
    c.services?.on((_t, svc) => {
      const owner = this.ownerKey(svc, "MailRelay");
      if (owner) ctl.relays.enqueue(owner);
    });
    c.statefulSets.on((_t, s) => {
      const owner = this.ownerKey(s, "MailRelay");
      if (owner) ctl.relays.enqueue(owner);
    });
    c.certificates.on((_t, cert) => {
      const relay = this.ownerKey(cert, "MailRelay");
      if (relay) ctl.relays.enqueue(relay);
      const cred = this.ownerKey(cert, "RelayCredential");
      if (cred) {
        ctl.credentials.enqueue(cred);
        const { metadata } = cert;
        this.enqueueReferencing(metadata.namespace ?? "", "credentials", cred.split("/")[1]!);
      }
    });
    c.queueVolumes.on((_t, v) => {
      const relay = v.metadata.labels?.[RELAY_LABEL];
      if (relay) ctl.relays.enqueue(`${v.metadata.namespace ?? ""}/${relay}`);
    });
    c.pods.on((_t, p) => {
      const relay = p.metadata.labels?.[RELAY_LABEL];
      if (!relay) return;
      ctl.relays.enqueue(`${p.metadata.namespace ?? ""}/${relay}`);
      // the policies whose Enforced this pod reports on
      const r = c.relays.get(p.metadata.namespace ?? "", relay);
      if (r) for (const pol of this.state.selectedPolicies(r)) ctl.policies.enqueue(key(pol));
    });
  }
}
