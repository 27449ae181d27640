// What kubelet does for a relay pod's config volume, as pure functions: the StatefulSet's projected
// `config` volume names ConfigMaps and Secrets (key -> path items); each item becomes a file in the
// config directory. Then the laptop overrides: the few config.json fields a pod gets from its
// network namespace (listen addresses and ports, DNS, its own disk) that a process on a laptop has to
// be told instead. Everything else runs exactly as the operator rendered it.
import { createHash } from "node:crypto";
import { referencedFiles } from "../relay/config/load.js";
import { CONFIG_GZ_FILE, decodeConfig } from "../relay/contract/config-encoding.js";
import { RelayConfig } from "../relay/contract/config.js";

export interface KeyToPath {
  key: string;
  path: string;
}

/** One entry of `projected.sources` (only the kinds the operator renders). */
export interface ProjectedSource {
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  secret?: { name: string; items?: KeyToPath[]; optional?: boolean };
}

export interface StatefulSetLike {
  spec?: {
    template?: { spec?: { volumes?: { name: string; projected?: { sources?: ProjectedSource[] } }[] } };
  };
}

export interface ConfigMapLike {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export interface SecretLike {
  /** base64, as the API returns it */
  data?: Record<string, string>;
}

export interface SourceLookup {
  configMap(name: string): ConfigMapLike | undefined;
  secret(name: string): SecretLike | undefined;
}

export interface MaterialisedFile {
  path: string;
  content: Buffer;
  /** "configMap edge-config key config.json" */
  from: string;
}

export interface Materialised {
  files: MaterialisedFile[];
  /** Optional sources or keys that are absent (kubelet skips them). */
  skipped: string[];
}

/** The projected sources of the StatefulSet's volume `volume` (default "config"). */
export function projectedSources(sts: StatefulSetLike, volume = "config"): ProjectedSource[] {
  const v = sts.spec?.template?.spec?.volumes?.find((x) => x.name === volume);
  if (!v?.projected) throw new Error(`the StatefulSet has no projected volume "${volume}"`);
  return v.projected.sources ?? [];
}

function checkPath(p: string): void {
  if (!p || p.startsWith("/") || p.split("/").some((s) => s === ".." || s.startsWith("..")))
    throw new Error(`unsafe path in a projected volume: ${p}`);
}

/**
 * The files of a projected volume, as kubelet writes them. A missing non-optional object or key is
 * an error (kubelet would not start the pod: "configmap ... not found"); optional ones are skipped.
 */
export function materialise(sources: ProjectedSource[], lookup: SourceLookup): Materialised {
  const files: MaterialisedFile[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const s of sources) {
    const kind = s.configMap ? "configMap" : s.secret ? "secret" : undefined;
    if (!kind) throw new Error(`unsupported projected source: ${Object.keys(s).join(", ")}`);
    const ref = (s.configMap ?? s.secret)!;
    let values: Map<string, Buffer> | undefined;
    if (kind === "configMap") {
      const cm = lookup.configMap(ref.name);
      if (cm) {
        values = new Map();
        for (const [k, v] of Object.entries(cm.data ?? {})) values.set(k, Buffer.from(v, "utf8"));
        for (const [k, v] of Object.entries(cm.binaryData ?? {})) values.set(k, Buffer.from(v, "base64"));
      }
    } else {
      const sec = lookup.secret(ref.name);
      if (sec)
        values = new Map(Object.entries(sec.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
    }
    if (!values) {
      if (ref.optional) {
        skipped.push(`${kind} ${ref.name} (optional, absent)`);
        continue;
      }
      throw new Error(`${kind} ${ref.name} not found: kubelet would not start the pod`);
    }
    const items = ref.items ?? [...values.keys()].sort().map((key) => ({ key, path: key }));
    for (const it of items) {
      checkPath(it.path);
      const content = values.get(it.key);
      if (!content) {
        if (ref.optional) {
          skipped.push(`${kind} ${ref.name} key ${it.key} (optional, absent)`);
          continue;
        }
        throw new Error(`${kind} ${ref.name} has no key ${it.key}: kubelet would not start the pod`);
      }
      if (seen.has(it.path)) throw new Error(`two sources project ${it.path}`);
      seen.add(it.path);
      files.push({ path: it.path, content, from: `${kind} ${ref.name} key ${it.key}` });
    }
  }
  return { files, skipped };
}

/** The projected volume's objects, fetched with `find` (kind, name), then materialised. */
export async function fetchAndMaterialise(
  sources: ProjectedSource[],
  find: (kind: "configMap" | "secret", name: string) => Promise<(ConfigMapLike & SecretLike) | undefined>,
): Promise<Materialised> {
  const found = new Map<string, ConfigMapLike & SecretLike>();
  for (const s of sources) {
    const kind = s.configMap ? "configMap" : "secret";
    const name = (s.configMap ?? s.secret)?.name;
    if (!name) continue;
    const o = await find(kind, name);
    if (o) found.set(`${kind}/${name}`, o);
  }
  return materialise(sources, {
    configMap: (n) => found.get(`configMap/${n}`),
    secret: (n) => found.get(`secret/${n}`),
  });
}

/**
 * The files the volume's config.json names that the volume does not hold. The operator applies the
 * ConfigMap before the StatefulSet, so a config that names a new Secret reaches a running pod before
 * the template that mounts it: that pod refuses the reload (CONFIG_FILES_MISSING) and keeps its config
 * until the rollout. Whoever plays kubelet waits for the template that covers the config.
 */
export function unmountedConfigFiles(m: Materialised): string[] {
  const gz = m.files.find((f) => f.path === CONFIG_GZ_FILE);
  if (!gz) return [CONFIG_GZ_FILE];
  const decoded = decodeConfig(gz.content);
  if (!decoded.ok) throw new Error(decoded.message);
  const mounted = new Set(m.files.map((f) => f.path));
  const config = RelayConfig.parse(JSON.parse(decoded.value.toString("utf8")));
  return referencedFiles(config).filter((f) => !mounted.has(f));
}

export const sha256 = (b: string | Buffer): string => createHash("sha256").update(b).digest("hex");

/** What differs between a pod in the cluster and a process on a laptop. */
export interface LaptopOverrides {
  /** Every enabled listener binds here (a pod binds 0.0.0.0 in its own network namespace). */
  host: string;
  /** Port per enabled listener name (smtp, smtps, submission). */
  ports: Record<string, number>;
  admin: number;
  /** The queue volume (a PVC in the cluster). */
  queueDir: string;
  /** The cluster's DNS is not the laptop's: the partner domains resolve on a loopback DNS server. */
  dnsServers: string[];
  /**
   * The partners' MX hosts are on loopback, which the relay refuses as a destination chosen by DNS
   * (issue 22 finding 4): the laptop allows these ranges (delivery.allowedInternalCidrs).
   */
  allowedInternalCidrs?: string[];
  /** Short retry intervals so the demo sees a second attempt (seconds). */
  retry?: { initial: number; max: number };
  /** Explicit next hops whose port the laptop cannot offer (policy name -> port). */
  nextHopPorts?: Record<string, number>;
}

export interface Override {
  field: string;
  from: string;
  to: string;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const show = (v: unknown): string =>
  v === undefined ? "(unset)" : typeof v === "string" ? v : JSON.stringify(v);

/**
 * config.json with the laptop overrides applied, the list of what changed (for printing), and the
 * sha256 of both texts: the relay reports the hash of what it loaded on /status; the demo's pod shim
 * knows the pair, so it can tell the operator "this pod runs your configuration, plus these overrides".
 */
export function applyOverrides(
  configJson: string,
  o: LaptopOverrides,
): { json: string; overrides: Override[]; originalHash: string; hash: string } {
  const c = JSON.parse(configJson) as Json;
  const overrides: Override[] = [];
  const set = (parent: Json, key: string, field: string, value: unknown): void => {
    const before = parent[key];
    if (JSON.stringify(before) === JSON.stringify(value)) return;
    overrides.push({ field, from: show(before), to: show(value) });
    parent[key] = value;
  };

  const listeners = obj(c.listeners);
  c.listeners = listeners;
  for (const name of Object.keys(listeners).sort()) {
    const l = obj(listeners[name]);
    listeners[name] = l;
    if (l.enabled === false) continue;
    const port = o.ports[name];
    if (port === undefined) throw new Error(`no laptop port for the enabled listener ${name}`);
    const before = `${show(l.host ?? "0.0.0.0")}:${show(l.port)}`;
    l.host = o.host;
    l.port = port;
    overrides.push({ field: `listeners.${name}`, from: before, to: `${o.host}:${port}` });
  }
  const admin = obj(c.admin);
  const adminBefore = `${show(admin.host ?? "0.0.0.0")}:${show(admin.port ?? 8080)}`;
  c.admin = { ...admin, host: o.host, port: o.admin };
  overrides.push({ field: "admin", from: adminBefore, to: `${o.host}:${o.admin}` });

  const queue = obj(c.queue);
  c.queue = queue;
  set(queue, "dir", "queue.dir", o.queueDir);
  if (o.retry) set(queue, "retry", "queue.retry", o.retry);
  const dns = obj(c.dns);
  c.dns = dns;
  set(dns, "servers", "dns.servers", o.dnsServers);
  if (o.allowedInternalCidrs) {
    const delivery = obj(c.delivery);
    c.delivery = delivery;
    set(delivery, "allowedInternalCidrs", "delivery.allowedInternalCidrs", o.allowedInternalCidrs);
  }

  for (const [policy, port] of Object.entries(o.nextHopPorts ?? {})) {
    const p = ((c.policies as Json[] | undefined) ?? []).find((x) => x.name === policy);
    const hop = p ? obj(obj(p.outbound).nextHop) : undefined;
    if (!hop?.host) throw new Error(`policy ${policy} has no explicit next hop to override`);
    const before = `${show(hop.host)}:${show(hop.port ?? 25)}`;
    hop.port = port;
    overrides.push({ field: `policy ${policy} nextHop`, from: before, to: `${show(hop.host)}:${port}` });
  }
  const json = JSON.stringify(c, null, 2) + "\n";
  return { json, overrides, originalHash: sha256(configJson), hash: sha256(json) };
}
