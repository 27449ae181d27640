// What the operator bench waits for, seen through watches (the operator's own Informer class, with the
// bench's admin client) instead of polling lists: each watch event updates the tallies, and a
// condition is checked after every event, so a convergence time is the moment of the event that
// completed it (no polling interval in the figure, and no list of N policies every few hundred ms
// loading the apiserver the operator is measured against).
import { Informer } from "../../operator/runtime/informer.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import { CONFIG_GZ_FILE, configMapJson } from "../../relay/contract/config-encoding.js";

interface PolicyObj extends KubeObject {
  status?: { conditions?: { type: string; status: string; reason?: string; observedGeneration?: number }[] };
}
interface ConfigMapObj extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** Accepted=True, reason Compiled, for the policy's current generation. */
export function acceptedNow(p: PolicyObj): boolean {
  return (
    p.status?.conditions?.some(
      (c) =>
        c.type === "Accepted" &&
        c.status === "True" &&
        c.reason === "Compiled" &&
        c.observedGeneration === p.metadata.generation,
    ) ?? false
  );
}

export interface RelayConfigSummary {
  policies: Set<string>;
  domains: Set<string>;
  /** Bytes the ConfigMap holds (gzip), and of the JSON. */
  bytes: number;
  jsonBytes: number;
}

export class ConvergenceWatch {
  private readonly policies: Informer<PolicyObj>;
  private readonly configMaps: Informer<ConfigMapObj>;
  private readonly accepted = new Set<string>();
  readonly configs = new Map<string, RelayConfigSummary>();
  private waiters: { cond: () => boolean; resolve: (t: number) => void }[] = [];

  constructor(
    client: KubeClient,
    private readonly namespace: string,
  ) {
    this.policies = new Informer<PolicyObj>(client, R.MailDomainPolicy, { namespaces: [namespace] });
    this.configMaps = new Informer<ConfigMapObj>(client, R.ConfigMap, { namespaces: [namespace] });
    this.policies.on((type, p) => {
      if (type !== "delete" && acceptedNow(p)) this.accepted.add(p.metadata.name);
      else this.accepted.delete(p.metadata.name);
      this.check();
    });
    this.configMaps.on((type, cm) => {
      const name = cm.metadata.name;
      if (!name.endsWith("-config")) return;
      const relay = name.slice(0, -"-config".length);
      // when the event arrived: decoding it (1-2 MB of JSON at 10,000 policies, 10-40 ms) is the
      // bench's own work, not the operator's
      const arrived = performance.now();
      const json = configMapJson(cm);
      if (type === "delete" || !json) this.configs.delete(relay);
      else {
        const cfg = JSON.parse(json) as { policies?: { name: string; domains: string[] }[] };
        this.configs.set(relay, {
          policies: new Set((cfg.policies ?? []).map((p) => p.name)),
          domains: new Set((cfg.policies ?? []).flatMap((p) => p.domains)),
          bytes: Buffer.from(cm.binaryData?.[CONFIG_GZ_FILE] ?? "", "base64").length,
          jsonBytes: Buffer.byteLength(json),
        });
      }
      this.check(arrived);
    });
  }

  async start(): Promise<void> {
    this.policies.start();
    this.configMaps.start();
    await Promise.all([this.policies.waitForSync(), this.configMaps.waitForSync()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.policies.stop(), this.configMaps.stop()]);
  }

  acceptedCount(): number {
    return this.accepted.size;
  }

  isAccepted(name: string): boolean {
    return this.accepted.has(name);
  }

  policy(name: string): PolicyObj | undefined {
    return this.policies.get(this.namespace, name);
  }

  /**
   * Resolves with performance.now() of the arrival of the event after which `cond` first held (at
   * once if it holds now); rejects after timeoutMs.
   */
  until(what: string, cond: () => boolean, timeoutMs: number): Promise<number> {
    if (cond()) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const waiter = {
        cond,
        resolve: (t: number) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves the waiters whose condition holds now, with `arrived`: when the event came in. */
  private check(arrived = performance.now()): void {
    if (!this.waiters.length) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.cond()) w.resolve(arrived);
      else still.push(w);
    }
    this.waiters = still;
  }
}
