// A small JSON client for the Kubernetes API on top of client-node's KubeConfig (authentication, TLS,
// token refresh). Objects stay plain JSON as the apiserver sends them (the watch delivers plain JSON
// too, so the informer caches hold one shape), server-side apply sends our body as is (no model
// serializer that could drop fields), and the status subresource is a path away.
// Connections are kept alive and reused: client-node's applyToHTTPSOptions hands out a new Agent per
// request (so a new TCP + TLS handshake per request, and a new TLS context with the CA parsed again);
// we keep one keep-alive Agent per set of TLS settings instead (see agentFor).
import { createHash } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest, type RequestOptions } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest, type AgentOptions } from "node:https";
import { API_VERSION } from "../api.js";
import type { KubeAuth } from "./kubeconfig.js";

export const FIELD_MANAGER = "sealpost";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  managedFields?: unknown[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** What the client needs to know about a kind to build its paths. */
export interface Resource {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export const R = {
  MailRelay: {
    apiVersion: API_VERSION,
    kind: "MailRelay",
    plural: "mailrelays",
    namespaced: true,
  },
  MailDomainPolicy: {
    apiVersion: API_VERSION,
    kind: "MailDomainPolicy",
    plural: "maildomainpolicies",
    namespaced: true,
  },
  RelayCredential: {
    apiVersion: API_VERSION,
    kind: "RelayCredential",
    plural: "relaycredentials",
    namespaced: true,
  },
  Secret: { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true },
  ConfigMap: { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true },
  Service: { apiVersion: "v1", kind: "Service", plural: "services", namespaced: true },
  ServiceAccount: { apiVersion: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true },
  Pod: { apiVersion: "v1", kind: "Pod", plural: "pods", namespaced: true },
  PersistentVolumeClaim: {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
    namespaced: true,
  },
  StatefulSet: { apiVersion: "apps/v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true },
  PodDisruptionBudget: {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    plural: "poddisruptionbudgets",
    namespaced: true,
  },
  NetworkPolicy: {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    plural: "networkpolicies",
    namespaced: true,
  },
  Certificate: {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    plural: "certificates",
    namespaced: true,
  },
  CertificateRequest: {
    apiVersion: "cert-manager.io/v1",
    kind: "CertificateRequest",
    plural: "certificaterequests",
    namespaced: true,
  },
  Lease: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: true },
  Event: { apiVersion: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: true },
} as const satisfies Record<string, Resource>;

export function resourceFor(apiVersion: string, kind: string): Resource {
  const r = Object.values(R).find((x) => x.apiVersion === apiVersion && x.kind === kind);
  if (!r) throw new Error(`unknown resource ${apiVersion} ${kind}`);
  return r;
}

/** /api/v1/namespaces/ns/configmaps[/name[/sub]] and friends; namespace undefined = all namespaces. */
export function resourcePath(r: Resource, namespace?: string, name?: string, subresource?: string): string {
  const base = r.apiVersion.includes("/") ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
  let p = base;
  if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) p += `/${subresource}`;
  return p;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly method: string,
    readonly path: string,
    readonly body: unknown,
  ) {
    const msg = body && typeof body === "object" && "message" in body ? String(body.message) : "";
    super(`${method} ${path}: ${code}${msg ? ` ${msg}` : ""}`);
    this.name = "ApiError";
  }
  get reason(): string | undefined {
    const b = this.body as { reason?: string } | undefined;
    return b?.reason;
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.code === 404;
}
export function isConflict(e: unknown): boolean {
  return e instanceof ApiError && e.code === 409;
}

export interface RequestInfo {
  method: string;
  path: string;
  status: number;
}

export interface RequestOpts {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

/** The TLS settings applyToHTTPSOptions puts on request options, which an Agent's sockets are bound to. */
const TLS_KEYS = [
  "ca",
  "cert",
  "key",
  "pfx",
  "passphrase",
  "rejectUnauthorized",
  "servername",
  "ciphers",
  "secureProtocol",
  "secureOptions",
  "crl",
] as const;

/** A fingerprint of the TLS settings of request options (buffers and strings), for keying Agents. Pure. */
export function tlsFingerprint(options: Record<string, unknown>): string {
  const h = createHash("sha256");
  for (const k of TLS_KEYS) {
    const v = options[k];
    h.update(`${k}=`);
    if (v === undefined) h.update("-");
    else if (Buffer.isBuffer(v)) h.update(v);
    else if (Array.isArray(v))
      for (const x of v as unknown[]) h.update(Buffer.isBuffer(x) ? x : JSON.stringify(x));
    else h.update(JSON.stringify(v));
    h.update("\0");
  }
  return h.digest("hex");
}

export interface KubeClientOptions {
  /** Connections per apiserver kept open at most (in use and idle). Default 32. */
  maxSockets?: number;
  /** An idle connection is closed after this long (the apiserver closes idle ones after 90 s). */
  idleTimeoutMs?: number;
}

/** Node's errors when the server closed a kept-alive connection just as a request went out on it. */
const STALE_SOCKET_ERRORS = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/** One event of a watch: the apiserver's JSON line. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KubeObject & { code?: number; reason?: string; message?: string };
}

export class KubeClient {
  /** Called after every request (metrics; tests count writes). */
  readonly listeners = new Set<(info: RequestInfo) => void>();
  /** Keep-alive Agents: requests (bounded), watches (one long-lived connection each, unbounded). */
  private readonly agents = new Map<
    "request" | "watch",
    { fingerprint: string; agent: HttpAgent; protocol: string; tls: unknown[] }
  >();
  /** Called for every connection this client opens for requests (each a TLS handshake for https). */
  onConnection?: () => void;

  constructor(
    readonly kubeConfig: KubeAuth,
    private readonly clientOpts: KubeClientOptions = {},
  ) {}

  /**
   * One keep-alive Agent per use and TLS settings (a rotated client certificate gets a new one; the
   * old one's idle sockets close on their idle timeout). A proxy Agent from client-node's KubeConfig
   * (cluster.proxyUrl) is left as it made it.
   */
  private agentFor(
    options: RequestOptions,
    protocol: string,
    use: "request" | "watch",
  ): HttpAgent | undefined {
    const made = options.agent;
    if (made && typeof made === "object" && made.constructor !== HttpsAgent && made.constructor !== HttpAgent)
      return made;
    const cur = this.agents.get(use);
    // the same TLS values as last time (SimpleKubeConfig hands out the same Buffers): no hashing
    const tls = TLS_KEYS.map((k) => (options as Record<string, unknown>)[k]);
    if (cur && cur.protocol === protocol && tls.every((v, i) => v === cur.tls[i])) return cur.agent;
    const fingerprint = `${protocol}${tlsFingerprint(options as Record<string, unknown>)}`;
    if (cur?.fingerprint === fingerprint) {
      cur.tls = tls;
      return cur.agent;
    }
    const max = use === "watch" ? Infinity : (this.clientOpts.maxSockets ?? 32);
    const agentOptions: AgentOptions = {
      keepAlive: true,
      maxSockets: max,
      maxFreeSockets: use === "watch" ? 16 : max,
      scheduling: "lifo",
      // idle (free) sockets close after this; a request in flight sets its own timeout
      timeout: this.clientOpts.idleTimeoutMs ?? 30_000,
    };
    for (const k of TLS_KEYS) {
      const v = (options as Record<string, unknown>)[k];
      if (v !== undefined) (agentOptions as Record<string, unknown>)[k] = v;
    }
    const agent = protocol === "http:" ? new HttpAgent(agentOptions) : new HttpsAgent(agentOptions);
    if (use === "request") {
      const createConnection = agent.createConnection.bind(agent);
      agent.createConnection = (...args: Parameters<typeof agent.createConnection>) => {
        this.onConnection?.();
        return createConnection(...args);
      };
    }
    this.agents.set(use, { fingerprint, agent, protocol, tls });
    return agent;
  }

  /** Closes the connections (the process exits without waiting for their idle timeout). */
  close(): void {
    for (const a of this.agents.values()) a.agent.destroy();
    this.agents.clear();
  }

  private async prepare(
    method: string,
    path: string,
    query: RequestOpts["query"],
    use: "request" | "watch",
  ): Promise<{ url: URL; options: RequestOptions & { headers: Record<string, string> } }> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    const url = new URL(cluster.server.replace(/\/$/, "") + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const options: RequestOptions & { headers: Record<string, string> } = {
      method,
      headers: { Accept: "application/json" },
    };
    await this.kubeConfig.applyToHTTPSOptions(options);
    options.agent = this.agentFor(options, url.protocol, use);
    return { url, options };
  }

  /**
   * Streams a watch (`?watch=1`): calls onEvent per event until the apiserver ends the watch (resolves)
   * or the connection fails, the response is not 200, or `signal` aborts (rejects). `idleMs`: no byte
   * for this long ends it with an error (a dead connection).
   */
  async watch(
    path: string,
    query: RequestOpts["query"],
    onEvent: (e: WatchEvent) => void,
    opts: { signal?: AbortSignal; idleMs?: number } = {},
  ): Promise<void> {
    const { url, options } = await this.prepare("GET", path, { ...query, watch: 1 }, "watch");
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    await new Promise<void>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new Error("watch aborted"));
      const req = send(url, options, (res) => {
        const status = res.statusCode ?? 0;
        for (const l of this.listeners) l({ method: "GET", path, status });
        if (status !== 200) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {
              // not JSON
            }
            reject(new ApiError(status, "GET", path, body));
          });
          res.on("error", reject);
          return;
        }
        // one JSON document per line; a line (a large object) may span many chunks
        let pending: Buffer[] = [];
        res.on("data", (chunk: Buffer) => {
          let start = 0;
          for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
            const part = chunk.subarray(start, nl);
            const line = pending.length ? Buffer.concat([...pending, part]) : part;
            pending = [];
            start = nl + 1;
            if (line.length === 0) continue;
            let ev: WatchEvent;
            try {
              ev = JSON.parse(line.toString("utf8")) as WatchEvent;
            } catch {
              req.destroy(new Error(`watch ${path}: unparsable event`));
              return;
            }
            try {
              onEvent(ev);
            } catch (e) {
              req.destroy(e as Error);
              return;
            }
          }
          if (start < chunk.length) pending.push(chunk.subarray(start));
        });
        res.on("end", () => resolve());
        res.on("aborted", () => reject(new Error(`watch ${path}: connection closed`)));
        res.on("error", reject);
      });
      req.setTimeout(opts.idleMs ?? 0, () => req.destroy(new Error(`watch ${path}: idle timeout`)));
      req.on("error", reject);
      const abort = (): void => void req.destroy(new Error("watch aborted"));
      opts.signal?.addEventListener("abort", abort, { once: true });
      req.on("close", () => opts.signal?.removeEventListener("abort", abort));
      req.end();
    });
  }

  async request<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    const { url, options } = await this.prepare(method, path, opts.query, "request");
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      options.headers["Content-Type"] = opts.contentType ?? "application/json";
      options.headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    const once = () =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = send(url, options, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
          );
          res.on("error", reject);
        });
        req.setTimeout(opts.timeoutMs ?? 30_000, () =>
          req.destroy(new Error(`${method} ${path}: timed out`)),
        );
        req.on("error", (e: NodeJS.ErrnoException) =>
          reject(
            Object.assign(e, { staleSocket: req.reusedSocket && STALE_SOCKET_ERRORS.has(e.code ?? "") }),
          ),
        );
        req.end(payload);
      });
    let result: { status: number; text: string };
    try {
      result = await once();
    } catch (e) {
      // the apiserver closed an idle kept-alive connection as we reused it: the request never reached
      // it (Node's documented case for one retry on a fresh connection)
      if (!(e as { staleSocket?: boolean }).staleSocket) throw e;
      result = await once();
    }
    const { status, text } = result;
    for (const l of this.listeners) l({ method, path, status });
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (status < 200 || status >= 300) throw new ApiError(status, method, path, parsed);
    return parsed as T;
  }

  async get<T extends KubeObject>(r: Resource, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>("GET", resourcePath(r, namespace, name));
  }

  /** Like get, undefined for 404. */
  async find<T extends KubeObject>(
    r: Resource,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(r, namespace, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Lists every page; items get apiVersion and kind filled in (list items come without them). */
  async list<T extends KubeObject>(
    r: Resource,
    namespace?: string,
    query: { labelSelector?: string; fieldSelector?: string } = {},
    /** Applied to each item as its page arrives (an informer's transform: what it drops is not held until the last page). */
    each?: (item: T) => void,
  ): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.request<KubeList<T>>("GET", resourcePath(r, namespace), {
        query: { ...query, limit: 500, continue: cont },
      });
      for (const it of page.items ?? []) {
        const item = { ...it, apiVersion: r.apiVersion, kind: r.kind };
        each?.(item);
        items.push(item);
      }
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion;
    } while (cont);
    return { metadata: { resourceVersion }, items };
  }

  async create<T extends KubeObject>(obj: T): Promise<T> {
    const r = resourceFor(obj.apiVersion!, obj.kind!);
    return this.request<T>("POST", resourcePath(r, obj.metadata.namespace), { body: obj });
  }

  /** PUT with the object's resourceVersion (optimistic concurrency: 409 when someone was faster). */
  async replace<T extends KubeObject>(obj: T): Promise<T> {
    const r = resourceFor(obj.apiVersion!, obj.kind!);
    return this.request<T>("PUT", resourcePath(r, obj.metadata.namespace, obj.metadata.name), { body: obj });
  }

  /** DELETE; `preconditions`: only that object (uid) at that version (409 otherwise). */
  async delete(
    r: Resource,
    namespace: string | undefined,
    name: string,
    preconditions?: { uid?: string; resourceVersion?: string },
  ): Promise<void> {
    try {
      await this.request("DELETE", resourcePath(r, namespace, name), {
        body: {
          kind: "DeleteOptions",
          apiVersion: "v1",
          propagationPolicy: "Background",
          ...(preconditions ? { preconditions } : {}),
        },
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /**
   * Server-side apply: the body is our whole intent for the fields we manage; fields we stop sending are
   * removed, fields others own are left alone, and `force` takes back fields someone else changed.
   */
  async apply<T extends KubeObject>(
    obj: KubeObject,
    opts: { subresource?: "status"; fieldManager?: string; force?: boolean } = {},
  ): Promise<T> {
    const r = resourceFor(obj.apiVersion!, obj.kind!);
    return this.request<T>(
      "PATCH",
      resourcePath(r, obj.metadata.namespace, obj.metadata.name, opts.subresource),
      {
        body: obj,
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: opts.fieldManager ?? FIELD_MANAGER, force: opts.force ?? true },
      },
    );
  }

  async mergePatch<T extends KubeObject>(
    r: Resource,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    opts: { subresource?: "status"; fieldManager?: string } = {},
  ): Promise<T> {
    return this.request<T>("PATCH", resourcePath(r, namespace, name, opts.subresource), {
      body: patch,
      contentType: "application/merge-patch+json",
      query: { fieldManager: opts.fieldManager },
    });
  }
}
