// The Helm chart and the kustomize base made from it: `helm lint --strict` is clean, `helm template`
// renders the operator with exactly operator/rbac.ts's rules, the committed GitOps manifests are what
// the chart renders today, and both install onto a real kube-apiserver (no kubelet here: pods never
// run, so the assertions are on the objects the apiserver stores).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { operatorClusterRules, operatorLeaderElectionRules } from "../../operator/rbac.js";
import { renderRulesFile, RULES_FILE } from "../../scripts/gen-chart-rbac.js";
import { renderChart } from "../support/chart.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { repoRoot, toolchainBin } from "../support/toolchain.js";

const run = promisify(execFile);
const bin = toolchainBin(["etcd", "kube-apiserver", "kubectl", "helm"]);
const helmBin = join(bin, "helm");
const chart = join(repoRoot, "charts/sealpost");
const kustomizeDir = join(repoRoot, "deploy/kustomize");
const NS = "sealpost-system";

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

async function helm(args: string[]): Promise<string> {
  try {
    return (await run(helmBin, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args.join(" ")}: ${err.stderr || err.stdout || err.message}`, { cause: e });
  }
}

/** `helm template` of the chart (release "sealpost" in sealpost-system) with these --set values. */
const template = async (...set: string[]): Promise<Obj[]> => (await renderChart(...set)) as unknown as Obj[];

function find(objs: Obj[], kind: string, name?: string): Obj {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  assert.ok(o, `no ${kind} ${name ?? ""} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return o;
}

interface Container {
  name: string;
  args: string[];
  image: string;
  securityContext: Record<string, unknown>;
}
function operatorContainer(objs: Obj[]): Container {
  const d = find(objs, "Deployment") as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  return d.spec.template.spec.containers[0]!;
}
/** The init container whose image the operator runs its relays with (--relay-image-from-container). */
function relayImageContainer(objs: Obj[]): Container {
  const d = find(objs, "Deployment") as unknown as {
    spec: { template: { spec: { initContainers: Container[] } } };
  };
  const c = d.spec.template.spec.initContainers.find((x) => x.name === "relay-image");
  assert.ok(c, "the Deployment names the relay image in its init container relay-image");
  return c;
}

/** JSON round trip: drops `undefined` fields so the comparison is about data only. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe("charts/sealpost", () => {
  it("passes helm lint --strict, with the defaults and with every option switched on", async () => {
    await helm(["lint", "--strict", chart]);
    await helm([
      "lint",
      "--strict",
      chart,
      "--set",
      "watchNamespaces={mail,mail2}",
      "--set",
      "metrics.serviceMonitor.enabled=true",
      "--set",
      "image.digest=sha256:" + "a".repeat(64),
      "--set",
      "admissionPolicy.allowedClusterIssuers={corp-ca}",
      "--set",
      "admissionPolicy.dnsNameSuffixes={example.com}",
    ]);
  });

  it("renders the operator: 2 replicas, leader election, hardened pod, relay image = operator image", async () => {
    const objs = await template();
    const kinds = objs.map((o) => o.kind).sort();
    assert.deepEqual(kinds, [
      "ClusterRole",
      "ClusterRole",
      "ClusterRole",
      "ClusterRoleBinding",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "Deployment",
      "NetworkPolicy",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingAdmissionPolicyBinding",
    ]);
    const deploy = find(objs, "Deployment") as unknown as {
      spec: { replicas: number; template: { spec: Record<string, unknown> } };
    };
    assert.equal(deploy.spec.replicas, 2);
    const c = operatorContainer(objs);
    assert.equal(c.args[0], "operator");
    assert.ok(c.args.includes("--leader-elect"), c.args.join(" "));
    assert.ok(!c.args.some((a) => a.startsWith("--namespaces")), "empty watchNamespaces means all: no flag");
    assert.equal(c.image, "ghcr.io/sealpost/sealpost:0.1.0");
    assert.ok(c.args.includes("--relay-image-from-container=relay-image"), c.args.join(" "));
    assert.equal(relayImageContainer(objs).image, c.image);
    assert.deepEqual(relayImageContainer(objs).securityContext, c.securityContext);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.runAsNonRoot, true);
    assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
    assert.deepEqual(c.securityContext.seccompProfile, { type: "RuntimeDefault" });
    const pod = deploy.spec.template.spec;
    assert.equal((pod.securityContext as { runAsNonRoot: boolean }).runAsNonRoot, true);
    for (const o of objs) {
      if (
        ![
          "ClusterRole",
          "ClusterRoleBinding",
          "CustomResourceDefinition",
          "ValidatingAdmissionPolicy",
          "ValidatingAdmissionPolicyBinding",
        ].includes(o.kind)
      )
        assert.equal(o.metadata.namespace, NS);
    }
  });

  it("grants exactly operator/rbac.ts's rules (files/rbac-rules.yaml is up to date)", async () => {
    assert.equal(await readFile(RULES_FILE, "utf8"), renderRulesFile(), "run: tsx scripts/gen-chart-rbac.ts");
    const objs = await template();
    assert.deepEqual(find(objs, "ClusterRole", "sealpost-operator").rules, plain(operatorClusterRules));
    assert.deepEqual(find(objs, "Role").rules, plain(operatorLeaderElectionRules));
    const crb = find(objs, "ClusterRoleBinding") as unknown as { subjects: unknown[] };
    assert.deepEqual(crb.subjects, [{ kind: "ServiceAccount", name: "sealpost-operator", namespace: NS }]);
  });

  it("is namespace-scoped when namespaces are listed: Roles there, nothing cluster-wide (issue 15.9)", async () => {
    const objs = await template("watchNamespaces={mail,mail2}");
    // no cluster-wide grant to the operator: no ClusterRoleBinding, and the only ClusterRoles are the
    // users' aggregated ones (issue 17), which nothing in the chart binds
    assert.ok(!objs.some((o) => o.kind === "ClusterRoleBinding"));
    for (const o of objs.filter((x) => x.kind === "ClusterRole")) {
      const labels = (o.metadata as { labels?: Record<string, string> }).labels ?? {};
      assert.equal(labels["rbac.authorization.k8s.io/aggregate-to-admin"], "true", o.metadata.name);
      assert.ok(
        !objs.some((b) => (b.roleRef as { name?: string } | undefined)?.name === o.metadata.name),
        `${o.metadata.name} is bound`,
      );
    }
    const roles = objs.filter((o) => o.kind === "Role" && o.metadata.name === "sealpost-operator");
    assert.deepEqual(roles.map((o) => o.metadata.namespace).sort(), ["mail", "mail2"]);
    for (const r of roles) assert.deepEqual(r.rules, plain(operatorClusterRules));
    const bound = objs
      .filter((o) => o.kind === "RoleBinding" && (o.roleRef as { name: string }).name === "sealpost-operator")
      .map((o) => o.metadata.namespace)
      .sort();
    assert.deepEqual(bound, ["mail", "mail2"]);
    assert.ok(operatorContainer(objs).args.includes("--namespaces=mail,mail2"));
  });

  it("pins images by digest and lets the relay image differ", async () => {
    const digest = "sha256:" + "b".repeat(64);
    const objs = await template(
      `image.digest=${digest}`,
      "relayImage.repository=registry.example/relay",
      "relayImage.tag=v9",
    );
    assert.equal(operatorContainer(objs).image, `ghcr.io/sealpost/sealpost:0.1.0@${digest}`);
    assert.equal(relayImageContainer(objs).image, "registry.example/relay:v9");
    const same = await template(`image.digest=${digest}`);
    assert.equal(relayImageContainer(same).image, operatorContainer(same).image);
  });

  it("renders the ServiceMonitor only when asked", async () => {
    assert.ok(!(await template()).some((o) => o.kind === "ServiceMonitor"));
    find(await template("metrics.serviceMonitor.enabled=true"), "ServiceMonitor");
  });

  it("renders the PrometheusRule only when asked, with the relay's own certificate alert", async () => {
    assert.ok(!(await template()).some((o) => o.kind === "PrometheusRule"));
    const rule = find(
      await template("prometheusRule.enabled=true", "prometheusRule.relayCertificate.days=21"),
      "PrometheusRule",
    ) as unknown as { spec: { groups: { rules: { alert: string; expr: string; for: string }[] }[] } };
    const alert = rule.spec.groups[0]!.rules.find((r) => r.alert === "SealpostRelayCertificateExpiring");
    assert.ok(alert, "SealpostRelayCertificateExpiring");
    assert.equal(
      alert.expr,
      "(min by (namespace, pod) (sealpost_relay_certificate_expiry_timestamp_seconds) - time()) < 21 * 86400",
    );
    assert.equal(alert.for, "1h");
  });

  it("rejects bad values: unknown keys (schema), two replicas without leader election", async () => {
    await assert.rejects(template("replicas=3"), /additional properties|replicas/i);
    await assert.rejects(template("logLevel=loud"), /logLevel/);
    await assert.rejects(template("leaderElection.enabled=false"), /leaderElection/);
    // one replica may run without a Lease
    await template("leaderElection.enabled=false", "replicaCount=1");
  });

  it("is what deploy/kustomize holds (run deploy/kustomize/render.sh after changing the chart)", async () => {
    const out = await mkdtemp(join(tmpdir(), "sealpost-kustomize-"));
    try {
      await run("bash", [join(kustomizeDir, "render.sh"), out], { env: { ...process.env, HELM: helmBin } });
      const base = join("base", "sealpost.yaml");
      assert.equal(await readFile(join(kustomizeDir, base), "utf8"), await readFile(join(out, base), "utf8"));
      const mail = join("overlays", "examples", "mail");
      const copies = (await readdir(join(out, mail))).sort();
      assert.deepEqual(
        copies,
        (await readdir(join(repoRoot, "examples"))).filter((f) => f.endsWith(".yaml")).sort(),
      );
      for (const f of copies) {
        assert.equal(
          await readFile(join(kustomizeDir, mail, f), "utf8"),
          await readFile(join(out, mail, f), "utf8"),
          f,
        );
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

/** The operator objects exist, CRDs are Established, and its ServiceAccount can do what rbac.ts says. */
async function assertOperatorInstalled(cp: ControlPlane): Promise<void> {
  await cp.kubectl(["-n", NS, "get", "deployment/sealpost-operator", "serviceaccount/sealpost-operator"]);
  await cp.kubectl([
    "-n",
    NS,
    "get",
    "service/sealpost-operator-metrics",
    "poddisruptionbudget/sealpost-operator",
  ]);
  await cp.kubectl([
    "-n",
    NS,
    "get",
    "role/sealpost-operator-leader-election",
    "rolebinding/sealpost-operator-leader-election",
  ]);
  await cp.kubectl(["get", "clusterrole/sealpost-operator", "clusterrolebinding/sealpost-operator"]);
  await cp.kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/mailrelays.sealpost.dev",
    "crd/maildomainpolicies.sealpost.dev",
    "crd/relaycredentials.sealpost.dev",
  ]);
  const replicas = await cp.kubectl([
    "-n",
    NS,
    "get",
    "deployment/sealpost-operator",
    "-o",
    "jsonpath={.spec.replicas}",
  ]);
  assert.equal(replicas.stdout, "2");
  // the bindings really grant the operator's rules to its ServiceAccount, and no more
  const as = `--as=system:serviceaccount:${NS}:sealpost-operator`;
  // `can-i` answers on stdout and exits 1 for "no"
  const can = async (...args: string[]): Promise<string> => {
    const r = await run(join(cp.bin, "kubectl"), [
      "--kubeconfig",
      cp.kubeconfigPath,
      "auth",
      "can-i",
      as,
      ...args,
    ]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }));
    return r.stdout.trim();
  };
  assert.equal(await can("patch", "statefulsets.apps", "-n", "mail"), "yes");
  assert.equal(await can("patch", "mailrelays.sealpost.dev", "--subresource=status", "-n", "mail"), "yes");
  assert.equal(await can("update", "leases.coordination.k8s.io", "-n", NS), "yes");
  assert.equal(await can("get", "pods", "-n", NS), "yes", "its own pod, for the relay image");
  assert.equal(await can("delete", "secrets", "-n", "mail"), "no");
  assert.equal(await can("update", "mailrelays.sealpost.dev", "-n", "mail"), "no", "spec is the user's");
  assert.equal(await can("update", "leases.coordination.k8s.io", "-n", "mail"), "no");
}

describe("helm install onto a real apiserver", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
  });
  after(async () => {
    await cp?.stop();
  });

  it("installs the CRDs and the operator", async () => {
    await helm([
      "--kubeconfig",
      cp.kubeconfigPath,
      "install",
      "sealpost",
      chart,
      "-n",
      NS,
      "--create-namespace",
      "--wait=false",
    ]);
    await assertOperatorInstalled(cp);
    const status = await helm(["--kubeconfig", cp.kubeconfigPath, "status", "sealpost", "-n", NS]);
    assert.match(status, /STATUS: deployed/);
    assert.match(status, /MailRelay/, "NOTES.txt says what to apply next");
  });

  it("upgrades in place with the same values (nothing to reconcile away)", async () => {
    await helm(["--kubeconfig", cp.kubeconfigPath, "upgrade", "sealpost", chart, "-n", NS, "--wait=false"]);
    await assertOperatorInstalled(cp);
  });
});

describe("kubectl apply -k deploy/kustomize onto a real apiserver", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
  });
  after(async () => {
    await cp?.stop();
  });

  it("applies the base, which then matches the cluster (kubectl diff is empty)", async () => {
    await cp.kubectl(["apply", "-k", join(kustomizeDir, "base")]);
    await assertOperatorInstalled(cp);
    // `kubectl diff` exits 1 on any difference: what is stored is what Git holds (the GitOps signal;
    // a second client-side apply reports the PDB "configured" even for an empty change)
    await cp.kubectl(["diff", "-k", join(kustomizeDir, "base")]);
    await cp.kubectl(["apply", "-k", join(kustomizeDir, "base")]);
    await cp.kubectl(["diff", "-k", join(kustomizeDir, "base")]);
  });

  it("applies the examples overlay (the relay fleet and policies in namespace mail)", async () => {
    await cp.kubectl(["apply", "-k", join(kustomizeDir, "overlays/examples")]);
    await cp.kubectl([
      "-n",
      "mail",
      "get",
      "mailrelay/edge",
      "maildomainpolicy/everyone-else",
      "relaycredential/doug-inbound",
      // every examples/ file is in the overlay (mail/kustomization.yaml lists them by hand)
      "maildomainpolicy/partner-f",
      "relaycredential/example-com-dkim",
      "maildomainpolicy/partner-h",
      "maildomainpolicy/partner-i",
    ]);
    // the operator's own objects stay where the base put them
    await assertOperatorInstalled(cp);
  });
});
