// A small JSON client for the Kubernetes API on top of client-node's KubeConfig (authentication, TLS,
// token refresh). Objects stay plain JSON as the apiserver sends them (the watch delivers plain JSON
// too, so the informer caches hold one shape), server-side apply sends our body as is (no model
// serializer that could drop fields), and the status subresource is a path away.
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type * as k8s from "@kubernetes/client-node";

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
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    plural: "mailrelays",
    namespaced: true,
  },
  MailDomainPolicy: {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    plural: "maildomainpolicies",
    namespaced: true,
  },
  RelayCredential: {
    apiVersion: "sealpost.dev/v1alpha1",
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

export class KubeClient {
  /** Called after every request (metrics; tests count writes). */
  readonly listeners = new Set<(info: RequestInfo) => void>();

  constructor(readonly kubeConfig: k8s.KubeConfig) {}

  async request<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    const url = new URL(cluster.server.replace(/\/$/, "") + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const options: RequestOptions & { headers: Record<string, string> } = {
      method,
      headers: { Accept: "application/json" },
    };
    await this.kubeConfig.applyToHTTPSOptions(options);
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      options.headers["Content-Type"] = opts.contentType ?? "application/json";
      options.headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      });
      req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
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
  ): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.request<KubeList<T>>("GET", resourcePath(r, namespace), {
        query: { ...query, limit: 500, continue: cont },
      });
      for (const it of page.items ?? []) items.push({ ...it, apiVersion: r.apiVersion, kind: r.kind });
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

  async delete(r: Resource, namespace: string | undefined, name: string): Promise<void> {
    try {
      await this.request("DELETE", resourcePath(r, namespace, name), {
        body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" },
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
