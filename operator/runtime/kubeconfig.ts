// Where the operator's Kubernetes API is and how it authenticates: a kubeconfig file, $KUBECONFIG,
// ~/.kube/config, or the pod's service account (in-cluster), with client-node's rules for which one.
// What KubeClient needs of it is small (KubeAuth: the server, TLS material and the Authorization
// header), and loading client-node for it costs about 85 MB of resident memory (its generated API
// models come with its KubeConfig class), more than the operator's own working set at 1,000 policies.
// So the common cases are read here: server, CA (file or data), insecure-skip-tls-verify,
// tls-server-name; bearer token (inline or a token file, re-read every minute like client-node, so
// projected service account tokens rotate), client certificate and key (file or data), basic auth.
// Anything else (exec plugins, auth providers, proxies, impersonation, several $KUBECONFIG files) is
// handed to client-node's KubeConfig, loaded only then.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { isIPv6 } from "node:net";
import { parse as parseYaml } from "yaml";

/** What KubeClient uses of a kubeconfig; client-node's KubeConfig has the same shape. */
export interface KubeAuth {
  getCurrentCluster(): { server: string } | null;
  /** Sets TLS options (ca, cert, key, rejectUnauthorized, servername) and headers on request options. */
  applyToHTTPSOptions(opts: object): Promise<void>;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** A token file is read again after this long (client-node's FileAuth does the same). */
const TOKEN_FILE_TTL_MS = 60_000;

interface Named<T> {
  name?: string;
  [k: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}
type Dict = Record<string, unknown>;

/** Which kubeconfig fields this loader handles; a field outside these sends the config to client-node. */
const CLUSTER_FIELDS = new Set([
  "server",
  "certificate-authority",
  "certificate-authority-data",
  "insecure-skip-tls-verify",
  "tls-server-name",
  "extensions",
]);
const USER_FIELDS = new Set([
  "token",
  "tokenFile",
  "client-certificate",
  "client-certificate-data",
  "client-key",
  "client-key-data",
  "username",
  "password",
  "extensions",
]);

export interface SimpleKubeConfigSpec {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
  tlsServerName?: string;
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
}

/** A kubeconfig this module could read fully. */
export class SimpleKubeConfig implements KubeAuth {
  private token?: { value: string; readAt: number };

  constructor(
    readonly spec: SimpleKubeConfigSpec,
    private readonly now: () => number = Date.now,
  ) {}

  getCurrentCluster(): { server: string } {
    return { server: this.spec.server };
  }

  async applyToHTTPSOptions(o: object): Promise<void> {
    const opts = o as Dict & { headers?: Record<string, string> };
    const s = this.spec;
    if (s.ca) opts.ca = s.ca;
    if (s.cert) opts.cert = s.cert;
    if (s.key) opts.key = s.key;
    if (s.insecure) opts.rejectUnauthorized = false;
    if (s.tlsServerName) opts.servername = s.tlsServerName;
    opts.headers ??= {};
    const token = this.bearer();
    if (token) opts.headers.Authorization = `Bearer ${token}`;
    else if (s.username !== undefined) opts.auth = `${s.username}:${s.password ?? ""}`;
    return Promise.resolve();
  }

  private bearer(): string | undefined {
    const s = this.spec;
    if (!s.tokenFile) return s.token;
    const now = this.now();
    if (!this.token || now - this.token.readAt >= TOKEN_FILE_TTL_MS)
      this.token = { value: readFileSync(s.tokenFile, "utf8").trim(), readAt: now };
    return this.token.value;
  }
}

const b64 = (v: unknown): Buffer | undefined =>
  typeof v === "string" ? Buffer.from(v, "base64") : undefined;
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/**
 * Reads a kubeconfig document (YAML or JSON) into a SimpleKubeConfigSpec, or undefined when it uses
 * something this module does not handle. `dir`: the folder relative file paths are relative to. Pure
 * apart from reading the files it names.
 */
export function simpleSpecFromKubeconfig(text: string, dir: string): SimpleKubeConfigSpec | undefined {
  const doc = parseYaml(text) as Dict | null;
  if (!doc || typeof doc !== "object") return undefined;
  const current = str(doc["current-context"]);
  const byName = <T>(list: unknown, name: string | undefined, field: keyof Named<T>): T | undefined => {
    if (!Array.isArray(list)) return undefined;
    const hit = (list as Named<T>[]).find((x) => x?.name === name);
    return hit?.[field] as T | undefined;
  };
  const context = byName<Dict>(doc.contexts, current, "context");
  if (!context) return undefined;
  const cluster = byName<Dict>(doc.clusters, str(context.cluster), "cluster");
  const user = byName<Dict>(doc.users, str(context.user), "user") ?? {};
  if (!cluster || typeof cluster.server !== "string") return undefined;
  if (Object.keys(cluster).some((k) => !CLUSTER_FIELDS.has(k))) return undefined;
  if (Object.keys(user).some((k) => !USER_FIELDS.has(k))) return undefined;
  const file = (v: unknown): Buffer | undefined =>
    typeof v === "string" && v !== "" ? readFileSync(isAbsolute(v) ? v : join(dir, v)) : undefined;
  const path = (v: unknown): string | undefined =>
    typeof v === "string" && v !== "" ? (isAbsolute(v) ? v : join(dir, v)) : undefined;
  const spec: SimpleKubeConfigSpec = { server: cluster.server };
  const ca = b64(cluster["certificate-authority-data"]) ?? file(cluster["certificate-authority"]);
  if (ca) spec.ca = ca;
  if (cluster["insecure-skip-tls-verify"] === true) spec.insecure = true;
  const sni = str(cluster["tls-server-name"]);
  if (sni) spec.tlsServerName = sni;
  const cert = b64(user["client-certificate-data"]) ?? file(user["client-certificate"]);
  if (cert) spec.cert = cert;
  const key = b64(user["client-key-data"]) ?? file(user["client-key"]);
  if (key) spec.key = key;
  const token = str(user.token);
  if (token) spec.token = token;
  const tokenFile = path(user.tokenFile);
  if (tokenFile) spec.tokenFile = tokenFile;
  if (typeof user.username === "string") {
    spec.username = user.username;
    if (typeof user.password === "string") spec.password = user.password;
  }
  // client-node refuses plain http without insecure-skip-tls-verify; so do we (via client-node)
  if (spec.server.startsWith("http:") && !spec.insecure) return undefined;
  return spec;
}

/** The pod's service account, as client-node's loadFromCluster reads it. */
export function inClusterSpec(env: NodeJS.ProcessEnv = process.env, dir = SA_DIR): SimpleKubeConfigSpec {
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  const port = env.KUBERNETES_SERVICE_PORT ?? "";
  const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
  const h = isIPv6(host) ? `[${host}]` : host;
  const caFile = join(dir, "ca.crt");
  return {
    server: `${scheme}://${h}:${port}`,
    ...(existsSync(caFile) ? { ca: readFileSync(caFile) } : {}),
    tokenFile: join(dir, "token"),
  };
}

/**
 * The kubeconfig the operator runs with: `file` if given, else client-node's default order
 * ($KUBECONFIG, ~/.kube/config, in-cluster). Falls back to client-node's KubeConfig for what
 * simpleSpecFromKubeconfig does not handle.
 */
export async function loadKubeAuth(file?: string): Promise<KubeAuth> {
  const fromFile = async (f: string): Promise<KubeAuth> => {
    const spec = simpleSpecFromKubeconfig(readFileSync(f, "utf8"), dirname(f));
    if (spec) return new SimpleKubeConfig(spec);
    const k8s = await import("@kubernetes/client-node");
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(f);
    return kc;
  };
  if (file) return fromFile(file);
  const env = process.env.KUBECONFIG?.split(delimiter).filter(Boolean) ?? [];
  if (env.length === 1) return fromFile(env[0]!);
  if (env.length === 0) {
    const home = join(homedir(), ".kube", "config");
    if (existsSync(home)) return fromFile(home);
    if (process.env.KUBERNETES_SERVICE_HOST) return new SimpleKubeConfig(inClusterSpec());
  }
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  return kc;
}
