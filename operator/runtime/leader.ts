// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
// - a candidate takes the Lease when it is free or its holder has not renewed it for leaseDuration,
//   measured on the candidate's own clock from when it last saw the record change (no clock-skew
//   trust in renewTime);
// - every write carries the resourceVersion it read, so two candidates can't both win (409);
// - the leader renews every retryPeriod and gives up (onStoppedLeading) when it could not renew for
//   renewDeadline; on a graceful stop it releases the Lease so a standby takes over at once.
import type { Logger } from "pino";
import { isConflict, isNotFound, R, type KubeClient, type KubeObject } from "./kube.js";

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export interface LeaseObject extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading: () => void;
  /** Called once when leadership is lost (or released). The process should stop reconciling. */
  onStoppedLeading: () => void;
  log?: Logger;
}

/** MicroTime for Lease timestamps. */
function leaseTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** What a candidate should do with the lease it read. Pure. */
export function leaseDecision(
  spec: LeaseSpec | undefined,
  identity: string,
  observedAtMs: number,
  nowMs: number,
  leaseDurationMs: number,
): "renew" | "acquire" | "wait" {
  const holder = spec?.holderIdentity ?? "";
  if (holder === identity) return "renew";
  if (!holder) return "acquire";
  const duration =
    spec?.leaseDurationSeconds !== undefined ? spec.leaseDurationSeconds * 1000 : leaseDurationMs;
  return observedAtMs + duration <= nowMs ? "acquire" : "wait";
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private observed?: { key: string; at: number };
  private lastRenew = 0;
  private lease?: LeaseObject;

  constructor(
    private readonly client: KubeClient,
    private readonly o: LeaderElectionOptions,
  ) {}

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops campaigning; a leader releases the Lease (holder cleared) for a fast handover. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leading && this.lease) {
      this.leading = false;
      try {
        const l = await this.client.get<LeaseObject>(R.Lease, this.o.namespace, this.o.name);
        if (l.spec?.holderIdentity === this.o.identity) {
          l.spec = {
            ...l.spec,
            holderIdentity: null,
            leaseDurationSeconds: 1,
            renewTime: leaseTime(Date.now()),
          };
          await this.client.replace(l);
          this.o.log?.info({ lease: this.o.name }, "released leadership");
        }
      } catch (e) {
        this.o.log?.warn({ err: (e as Error).message }, "could not release the lease");
      }
      this.o.onStoppedLeading();
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (e) {
      this.o.log?.warn({ err: (e as Error).message }, "leader election: lease request failed");
    }
    if (this.stopped) return;
    const now = Date.now();
    if (ok) {
      this.lastRenew = now;
      if (!this.leading) {
        this.leading = true;
        this.o.log?.info(
          { identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}` },
          "became leader",
        );
        this.o.onStartedLeading();
      }
    } else if (this.leading && now - this.lastRenew > this.o.renewDeadlineMs) {
      this.leading = false;
      this.o.log?.error({ identity: this.o.identity }, "lost leadership: could not renew the lease in time");
      this.stopped = true;
      this.o.onStoppedLeading();
      return;
    }
    this.schedule(this.o.retryPeriodMs);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = Date.now();
    const durationS = Math.max(1, Math.round(this.o.leaseDurationMs / 1000));
    const existing = await this.client.find<LeaseObject>(R.Lease, this.o.namespace, this.o.name);
    if (!existing) {
      try {
        this.lease = await this.client.create<LeaseObject>({
          apiVersion: R.Lease.apiVersion,
          kind: R.Lease.kind,
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: {
            holderIdentity: this.o.identity,
            leaseDurationSeconds: durationS,
            acquireTime: leaseTime(now),
            renewTime: leaseTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      } catch (e) {
        if (isConflict(e) || (e as { code?: number }).code === 409) return false;
        throw e;
      }
    }
    const spec = existing.spec ?? {};
    const key = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}|${existing.metadata.resourceVersion ?? ""}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const decision = leaseDecision(spec, this.o.identity, this.observed.at, now, this.o.leaseDurationMs);
    if (decision === "wait") return false;
    const next: LeaseObject = {
      ...existing,
      spec: {
        ...spec,
        holderIdentity: this.o.identity,
        leaseDurationSeconds: durationS,
        renewTime: leaseTime(now),
        ...(decision === "acquire"
          ? {
              acquireTime: leaseTime(now),
              leaseTransitions: (spec.leaseTransitions ?? 0) + (spec.holderIdentity ? 1 : 0),
            }
          : {}),
      },
    };
    try {
      this.lease = await this.client.replace(next);
      this.observed = undefined;
      return true;
    } catch (e) {
      if (isConflict(e) || isNotFound(e)) return false;
      throw e;
    }
  }
}
