// Asking relay pods what they run: their admin /status (relay/contract/status.ts says what it holds),
// with the relay's admin token for the figures, shared by every reconcile that asks within a poll.
import { request } from "node:http";
import { signAdminRequest } from "../../relay/contract/admin-auth.js";
import { parsePodReport, type PodReport } from "../../relay/contract/status.js";
import type { MailRelay } from "../api.js";
import { ADMIN_PORT } from "../render/meta.js";
import { R, type KubeClient, type KubeObject } from "../runtime/kube.js";
import type { PodObject } from "../objects.js";

/**
 * Asks one relay pod what it runs and reports (undefined: no answer). Without the relay's admin
 * token (spec.admin.tokenSecretRef) a pod reports its config hash and queue depth but no figures.
 */
export type StatusProbe = (pod: PodObject, port: number, token?: string) => Promise<PodReport | undefined>;

export const httpStatusProbe: StatusProbe = (pod, port, token) =>
  new Promise((resolve) => {
    const ip = pod.status?.podIP;
    if (!ip) return resolve(undefined);
    const host = ip.includes(":") ? `[${ip}]` : ip;
    // the token signs the request and never crosses the pod network (relay/contract/admin-auth.ts)
    const hostHeader = `${host}:${port}`;
    const headers = {
      host: hostHeader,
      ...(token ? { authorization: signAdminRequest(token, "GET", "/status", hostHeader) } : {}),
    };
    const req = request(`http://${hostHeader}/status`, { timeout: 2000, headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > 4 * 1024 * 1024) return req.destroy(); // not a relay's /status
        chunks.push(c);
      });
      res.on("end", () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
          resolve(res.statusCode === 200 ? parsePodReport(body) : undefined);
        } catch {
          resolve(undefined);
        }
      });
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });

/**
 * The relay's admin token (spec.admin.tokenSecretRef), read from the API server for this probe only:
 * the operator's caches hold no Secret values. Undefined when not set or not readable.
 */
export async function relayAdminToken(
  deps: { client: KubeClient },
  relay: MailRelay,
): Promise<string | undefined> {
  const ref = relay.spec.admin?.tokenSecretRef;
  const ns = relay.metadata.namespace;
  if (!ref || !ns) return undefined;
  const secret = await deps.client
    .find<KubeObject & { data?: Record<string, string> }>(R.Secret, ns, ref.name)
    .catch(() => undefined);
  const b64 = secret?.data?.[ref.key];
  const token = b64 ? Buffer.from(b64, "base64").toString("utf8").trim() : "";
  return token || undefined;
}

/**
 * Which ready pods of a relay run what they should (`current`: the config hash, or a test of the hash
 * a pod reports), and what each one reported.
 */
export async function probeRelay(
  deps: { probe: StatusProbe },
  pods: PodObject[],
  current: string | ((configHash: string) => boolean),
  token?: string,
): Promise<{
  ready: number;
  current: string[];
  behind: string[];
  /** Behind pods that refused the configuration they found (their lastReloadError). */
  refused: { pod: string; error: string }[];
  /** The pods that answered, with what they said. */
  reports: { pod: string; report: PodReport }[];
}> {
  const results = await Promise.all(
    pods.map(async (p) => ({ p, r: await deps.probe(p, ADMIN_PORT, token).catch(() => undefined) })),
  );
  const ok = (r: PodReport | undefined): boolean =>
    r !== undefined && (typeof current === "string" ? r.configHash === current : current(r.configHash));
  const cur = results.filter((x) => ok(x.r)).map((x) => x.p.metadata.name);
  const behind = results.filter((x) => !ok(x.r)).map((x) => x.p.metadata.name);
  const reports = results.flatMap((x) => (x.r ? [{ pod: x.p.metadata.name, report: x.r }] : []));
  const refused = results.flatMap((x) =>
    !ok(x.r) && x.r?.lastReloadError ? [{ pod: x.p.metadata.name, error: x.r.lastReloadError }] : [],
  );
  return { ready: pods.length, current: cur, behind, refused, reports };
}

/**
 * One relay pod's /status answer shared by every reconcile that asks within `ttlMs`: N policy
 * reconciles of one relay ask its pods once, not N times (each answer lists the figures of all N
 * policies). A new pod (uid) or address is asked afresh.
 */
export class SharedProbe {
  private readonly answers = new Map<string, { at: number; result: Promise<PodReport | undefined> }>();

  constructor(
    private readonly probe: StatusProbe,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  readonly get: StatusProbe = (pod, port, token) => {
    const m = pod.metadata;
    const key = `${m.namespace ?? ""}/${m.name}/${m.uid ?? ""}/${pod.status?.podIP ?? ""}:${port}${token ? "+token" : ""}`;
    const now = this.now();
    const hit = this.answers.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.result;
    const result = this.probe(pod, port, token).catch(() => undefined);
    this.answers.set(key, { at: now, result });
    if (this.answers.size > 256)
      for (const [k, v] of this.answers) if (now - v.at >= this.ttlMs) this.answers.delete(k);
    return result;
  };
}
