// A namespace user for the tenant-against-tenant attack tests: a ServiceAccount bound by a Role to
// exactly the rules given (e.g. create MailDomainPolicies, update only its own by resourceNames),
// and a client that speaks as it; and the relay's decisions (a domain's route, who may log in from a
// host) taken from a compiled config, as the attack tests compare them.
import * as k8s from "@kubernetes/client-node";
import { KubeClient } from "../../operator/runtime/kube.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import { allowedAccounts, compileAuthority, type CompiledAuthority } from "../../relay/inbound/authority.js";
import {
  compileInbound,
  decideInbound,
  type InboundDecision,
  type ListenerKind,
} from "../../relay/inbound/rules.js";
import { routeFor } from "../../relay/outbound/route.js";
import type { ControlPlane } from "./controlplane.js";

/** A client for ServiceAccount `name` in `namespace`, bound to `rules` by a Role of the same name. */
export async function tenantClient(
  cp: ControlPlane,
  admin: KubeClient,
  namespace: string,
  name: string,
  rules: unknown[],
): Promise<KubeClient> {
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}`;
  await admin.request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
    body: { metadata: { name } },
  });
  await admin.request("POST", `${rbac}/roles`, { body: { metadata: { name }, rules } });
  await admin.request("POST", `${rbac}/rolebindings`, {
    body: {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace }],
    },
  });
  const tr = await admin.request<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 3600 },
      },
    },
  );
  const cluster = cp.kubeConfig.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromString(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: { server: ${cluster.server}, certificate-authority-data: ${cluster.caData} }
users:
- name: ${name}
  user: { token: ${tr.status.token} }
contexts:
- name: ${name}
  context: { cluster: test, user: ${name}, namespace: ${namespace} }
current-context: ${name}
`);
  return new KubeClient(kc);
}

/**
 * How the relay's config decides `domain`: `policy:mode@host:port` (`default(catch-all policy):...`
 * for the catch-all's route), or `hold:CODE`.
 */
export function routeDecision(domain: string, c: RelayConfig): string {
  const r = routeFor(domain, c);
  if (r.hold) return `hold:${r.hold.code}`;
  const hop = r.route.nextHop ? `@${r.route.nextHop.host}:${r.route.nextHop.port}` : "";
  const by = r.route.catchAll ? `(${r.route.catchAll})` : "";
  return `${r.route.policy}${by}:${r.route.outbound.tls.mode}${hop}`;
}

/**
 * What the relay compiled from `c` decides for a client at `ip` on `listener` (default submission):
 * the accounts it may log in with, the authority (each account's grant) and the inbound decision.
 */
export function loginAt(
  c: RelayConfig,
  ip: string,
  listener: ListenerKind = "submission",
): { allowed: string[]; authority: CompiledAuthority; decision: InboundDecision } {
  const ci = compileInbound(c);
  if (!ci.ok) throw new Error(`the compiled config's inbound rules do not compile: ${ci.message}`);
  const authority = compileAuthority(c, new Map());
  const decision = decideInbound(ci.value, ip, listener);
  return { allowed: allowedAccounts(authority, decision), authority, decision };
}
