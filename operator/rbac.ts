// The operator's least-privilege ClusterRole, as data: the Helm chart renders it, and the integration
// tests run the operator under exactly these rules (a missing verb fails a test, not a production
// rollout). Keep it in step with what operator/ reads and writes.

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const READ = ["get", "list", "watch"];
/** Server-side apply is PATCH (it creates the object when missing, which the apiserver authorises as create). */
const MANAGE = ["get", "list", "watch", "create", "patch"];

/** Cluster-wide (or bound per namespace with RoleBindings when --namespaces restricts the operator). */
export const operatorClusterRules: PolicyRule[] = [
  {
    apiGroups: ["sealpost.dev"],
    resources: ["maildomainpolicies", "relaycredentials"],
    verbs: READ,
  },
  // patch: only the queue finalizer (reconcilers/mailrelay-deletion.ts); the chart's admission policy
  // refuses any other change, so the spec stays the user's
  { apiGroups: ["sealpost.dev"], resources: ["mailrelays"], verbs: [...READ, "patch"] },
  {
    apiGroups: ["sealpost.dev"],
    resources: ["mailrelays/status", "maildomainpolicies/status", "relaycredentials/status"],
    verbs: ["get", "patch", "update"],
  },
  // presence of referenced keys only; values are dropped from the operator's cache as they arrive.
  // create: only the fleet Secret `<relay>-fleet` and the empty Secrets cert-manager fills, a
  // RelayCredential's `<credential>-client-tls` and a MailRelay's `<relay>-tls` and `<relay>-mta-sts`
  // (never updated; the chart's admission policy holds the operator to those: Opaque owned by a
  // MailRelay, empty kubernetes.io/tls owned by the RelayCredential or MailRelay)
  { apiGroups: [""], resources: ["secrets"], verbs: [...READ, "create"] },
  { apiGroups: [""], resources: ["services", "serviceaccounts"], verbs: MANAGE },
  // delete: only a relay's own ConfigMap that someone else made immutable, to write it again
  // (controllers/mailrelay/immutable-config.ts; the chart's admission policy holds the operator to those)
  { apiGroups: [""], resources: ["configmaps"], verbs: [...MANAGE, "delete"] },
  // relay pods: readiness and pod IP for the /status probe
  { apiGroups: [""], resources: ["pods"], verbs: READ },
  // the relays' queue PVCs (never written): ones left beyond spec.replicas are reported on the status
  { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: READ },
  { apiGroups: ["apps"], resources: ["statefulsets"], verbs: MANAGE },
  { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: MANAGE },
  { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: MANAGE },
  { apiGroups: ["cert-manager.io"], resources: ["certificates"], verbs: MANAGE },
  // read once, only for a Secret at an issued Secret's name that the operator did not create (an
  // upgrade): its proof that cert-manager issued it for the operator's Certificate
  // (controllers/issued-secret-adoption.ts); never watched, never written
  { apiGroups: ["cert-manager.io"], resources: ["certificaterequests"], verbs: ["get", "list"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
];

/**
 * In the operator's own namespace (a Role): its leader-election Lease, and its own pod, whose
 * "relay-image" container names the default relay image (--relay-image-from-container).
 */
export const operatorLeaderElectionRules: PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
];

/** ClusterRole manifest (for the chart and tests). */
export function operatorClusterRole(name = "sealpost-operator"): Record<string, unknown> {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name, labels: { "app.kubernetes.io/name": "sealpost-operator" } },
    rules: operatorClusterRules,
  };
}

export function operatorLeaderElectionRole(
  namespace: string,
  name = "sealpost-operator-leader-election",
): Record<string, unknown> {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name, namespace, labels: { "app.kubernetes.io/name": "sealpost-operator" } },
    rules: operatorLeaderElectionRules,
  };
}
