// Privilege review (GitHub issue 8, item 5), pure: the operator's RBAC rules equal the reviewed list
// below (a new verb or resource fails here and must be reviewed and added on purpose), and the relay
// StatefulSet the operator renders runs without an API token, as non-root, with a read-only root
// filesystem and no capabilities. No control plane needed: operator/rbac.ts and operator/render/*
// are data and pure functions.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { operatorClusterRules, operatorLeaderElectionRules, type PolicyRule } from "../../operator/rbac.js";
import type { RelayRenderInput } from "../../operator/render/input.js";
import { renderStatefulSet } from "../../operator/render/statefulset.js";

/**
 * Reviewed: "group/resource" -> verbs. Secrets are read-only; nothing may escalate or bind, nothing
 * may delete but ConfigMaps (below).
 */
const REVIEWED_CLUSTER: Record<string, string[]> = {
  // patch: only the finalizer sealpost.dev/queue-drained (issue 17), held to it by the chart's
  // ValidatingAdmissionPolicy (chart-admission.test.ts); never update, the spec is the user's
  "sealpost.dev/mailrelays": ["get", "list", "patch", "watch"],
  "sealpost.dev/maildomainpolicies": ["get", "list", "watch"],
  "sealpost.dev/relaycredentials": ["get", "list", "watch"],
  "sealpost.dev/mailrelays/status": ["get", "patch", "update"],
  "sealpost.dev/maildomainpolicies/status": ["get", "patch", "update"],
  "sealpost.dev/relaycredentials/status": ["get", "patch", "update"],
  // create: only the fleet Secret of the queue handover (issue 15.2) and the empty Secrets
  // cert-manager issues into, a RelayCredential's (attack review, session 13) and a MailRelay's
  // (attack-squatted-relay-secret), held to them by the chart's ValidatingAdmissionPolicy (issue 15.9)
  "core/secrets": ["create", "get", "list", "watch"],
  // delete: only a relay's own ConfigMap someone made immutable, written again (session 16,
  // attack-immutable-relay-config), held to it by the chart's <release>-operator-deletes; patch, which
  // the operator has anyway, could empty any ConfigMap: delete adds no reach beyond it
  "core/configmaps": ["create", "delete", "get", "list", "patch", "watch"],
  "core/services": ["create", "get", "list", "patch", "watch"],
  "core/serviceaccounts": ["create", "get", "list", "patch", "watch"],
  "core/pods": ["get", "list", "watch"],
  "core/persistentvolumeclaims": ["get", "list", "watch"],
  "apps/statefulsets": ["create", "get", "list", "patch", "watch"],
  "policy/poddisruptionbudgets": ["create", "get", "list", "patch", "watch"],
  "networking.k8s.io/networkpolicies": ["create", "get", "list", "patch", "watch"],
  "cert-manager.io/certificates": ["create", "get", "list", "patch", "watch"],
  // read only for an issued Secret the operator did not create: cert-manager's proof that it issued it
  // for the operator's Certificate (an upgrade: upgrade-issued-secret-adoption)
  "cert-manager.io/certificaterequests": ["get", "list"],
  "events.k8s.io/events": ["create", "patch"],
};
const REVIEWED_LEADER: Record<string, string[]> = {
  "coordination.k8s.io/leases": ["create", "get", "update"],
  // its own pod's relay-image container, in its own namespace only (issue 17)
  "core/pods": ["get"],
};

function flatten(rules: PolicyRule[]): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const r of rules) {
    assert.equal(r.resourceNames, undefined, "no rule is expected to be name-restricted; review it");
    for (const g of r.apiGroups)
      for (const res of r.resources) {
        const k = `${g === "" ? "core" : g}/${res}`;
        for (const v of r.verbs) (out[k] ??= new Set()).add(v);
      }
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v].sort()]));
}

const FORBIDDEN_VERBS = ["*", "delete", "deletecollection", "escalate", "bind", "impersonate"];

describe("operator RBAC equals the reviewed list", () => {
  it("cluster rules: verbs per resource", () => {
    assert.deepEqual(flatten(operatorClusterRules), REVIEWED_CLUSTER);
  });
  it("leader election role: verbs per resource", () => {
    assert.deepEqual(flatten(operatorLeaderElectionRules), REVIEWED_LEADER);
  });
  it("no wildcard groups/resources and no dangerous verbs anywhere", () => {
    for (const r of [...operatorClusterRules, ...operatorLeaderElectionRules]) {
      assert.ok(!r.apiGroups.includes("*") && !r.resources.includes("*"), JSON.stringify(r));
      const configMapsOnly = r.apiGroups.join() === "" && r.resources.join() === "configmaps";
      for (const v of FORBIDDEN_VERBS)
        if (!(v === "delete" && configMapsOnly))
          assert.ok(!r.verbs.includes(v), `${v} in ${JSON.stringify(r)}`);
    }
    assert.deepEqual(flatten(operatorClusterRules)["core/secrets"], ["create", "get", "list", "watch"]);
  });
});

function input(): RelayRenderInput {
  return {
    owner: {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailRelay",
      name: "edge",
      namespace: "mail",
      uid: "u-1",
    },
    listeners: [
      { name: "smtp", port: 25 },
      { name: "smtps", port: 465 },
      { name: "submission", port: 587 },
    ],
    service: { type: "ClusterIP" },
    serverCertSecret: "edge-tls",
    replicas: 2,
    queueSize: "1Gi",
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
    configStored: Buffer.from(""),
    configHash: "0".repeat(64),
    restartHash: "1".repeat(64),
    sources: [
      {
        kind: "secret",
        name: "partner-login",
        items: [{ key: "password", path: "secrets/p/pw" }],
        optional: false,
      },
    ],
    egressPorts: [25],
    networkPolicy: { metricsFrom: [], egressExcept: [], internalEgress: [], allowedInternalCidrs: [] },
    pod: { image: "sealpost:test" },
    settings: {
      image: "sealpost:test",
      operatorNamespace: "sealpost-system",
      operatorPodLabels: { app: "op" },
    },
  };
}

type Obj = Record<string, unknown>;
const at = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((x, k) => (x && typeof x === "object" ? (x as Obj)[k] : undefined), o);

describe("relay StatefulSet privileges", () => {
  const sts = renderStatefulSet(input());
  const pod = at(sts, "spec", "template", "spec") as Obj;
  const containers = pod.containers as Obj[];

  it("no service account token in the relay pod (the relay has no API access at all)", () => {
    assert.equal(pod.automountServiceAccountToken, false);
    for (const v of (pod.volumes as Obj[]) ?? [])
      assert.ok(!JSON.stringify(v).includes("serviceAccountToken"), "no projected token volume");
  });

  it("pod and every container: non-root, read-only root filesystem, drop ALL, no privilege escalation", () => {
    assert.equal(at(pod, "securityContext", "runAsNonRoot"), true);
    assert.notEqual(at(pod, "securityContext", "runAsUser"), 0);
    assert.ok(containers.length >= 1);
    for (const c of [...containers, ...((pod.initContainers as Obj[]) ?? [])]) {
      assert.equal(at(c, "securityContext", "runAsNonRoot"), true, String(c.name));
      assert.equal(at(c, "securityContext", "readOnlyRootFilesystem"), true, String(c.name));
      assert.equal(at(c, "securityContext", "allowPrivilegeEscalation"), false, String(c.name));
      assert.notEqual(at(c, "securityContext", "privileged"), true, String(c.name));
      assert.deepEqual(at(c, "securityContext", "capabilities", "drop"), ["ALL"], String(c.name));
      assert.equal(at(c, "securityContext", "capabilities", "add"), undefined, String(c.name));
    }
    assert.equal(pod.hostNetwork, undefined);
    assert.equal(pod.hostPID, undefined);
  });

  it("the config (with the Secrets) is mounted read-only", () => {
    const mounts = containers[0]!.volumeMounts as Obj[];
    const config = mounts.find((m) => m.name === "config");
    assert.equal(config?.readOnly, true);
  });
});
