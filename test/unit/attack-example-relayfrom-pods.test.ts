// Attack (out-of-the-box review): any pod of the cluster relays anywhere through the example relay.
// examples/00-mailrelay.yaml, the MailRelay a platform engineer copies (and
// deploy/kustomize/overlays/examples applies as is), lists relayFrom ["10.0.0.0/8", ...] as "the
// Exchange servers and the app subnet". 10.0.0.0/8 holds the default pod and Service networks of
// most clusters (kubeadm/kind/minikube/flannel/AKS 10.244.0.0/16 and 10.96.0.0/12, k3s/RKE2
// 10.42.0.0/16, OpenShift 10.128.0.0/14, microk8s 10.1.0.0/16), and the relay's NetworkPolicy admits
// the mail ports from every peer. So a workload in any namespace (a tenant's pod, a compromised
// container) connects to edge:25 from its pod address, is in relayFrom, sends to any domain without
// logging in, and its mail with MAIL FROM and From: in example.com leaves DKIM-signed with
// example.com's key (docs/dkim.md: relayFrom mail is "one of yours").
// Promise broken: no open relay; examples/README.md says "relayFrom: 10.0.0.0/8 means your internal
// senders and nobody else", and docs/operations.md itself says to keep the pods' network out of
// relayFrom ("every pod would be a relay client"). Fails today: a pod at 10.244.1.7 may relay.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call -- walks parsed manifests */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { MailRelay } from "../../api/v1alpha1/index.js";
import { cidrsOverlap, parsedCidrs } from "../../relay/contract/cidr.js";
import { mayRelay } from "../../relay/inbound/authority.js";
import { checkRecipient, compileInbound, decideInbound } from "../../relay/inbound/rules.js";
import { clusterView, renderRelay } from "../support/operator-fixtures.js";
import { repoRoot } from "../support/toolchain.js";

/** Default pod and Service networks of common distributions (where in-cluster clients come from). */
const DEFAULT_CLUSTER_NETWORKS: Record<string, string> = {
  "kubeadm/kind/minikube/flannel/AKS pods": "10.244.0.0/16",
  "kubeadm/kind/minikube Services": "10.96.0.0/12",
  "k3s/RKE2 pods": "10.42.0.0/16",
  "k3s/RKE2 Services": "10.43.0.0/16",
  "OpenShift pods": "10.128.0.0/14",
  "OpenShift Services": "172.30.0.0/16",
  "microk8s pods": "10.1.0.0/16",
  "Calico default IP pool": "192.168.0.0/16",
  "EKS Services": "10.100.0.0/16",
  "kind IPv6 pods": "fd00:10:244::/56",
  "kind IPv6 Services": "fd00:10:96::/112",
};

const relaysIn = (dir: string): { file: string; relay: MailRelay }[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), "utf8"))
        .map((d) => d.toJS())
        .filter((o) => o?.kind === "MailRelay")
        .map((o) => ({
          file,
          relay: MailRelay.parse({
            ...o,
            metadata: { ...o.metadata, namespace: "mail", uid: "u1", generation: 1 },
          }),
        })),
    );

const shipped = [
  ...relaysIn(join(repoRoot, "examples")),
  ...relaysIn(join(repoRoot, "deploy/kustomize/overlays/examples/mail")),
];

describe("attack: a pod of the cluster relays through the example MailRelay", () => {
  it("the examples ship a MailRelay, and its NetworkPolicy admits port 25 from every peer", () => {
    assert.ok(shipped.length >= 2, "examples/ and the kustomize overlay");
    for (const { file, relay } of shipped) {
      const np: any = renderRelay(relay, clusterView()).objects.find((o) => o.kind === "NetworkPolicy");
      const smtp = np.spec.ingress.find((r: any) => r.ports.some((p: any) => p.port === 25));
      assert.equal(smtp.from, undefined, `${file}: the mail ports are open to every pod (by design)`);
    }
  });

  it("no example relayFrom holds a default pod or Service network", () => {
    for (const { file, relay } of shipped) {
      const relayFrom = parsedCidrs(relay.spec.inbound.relayFrom ?? []);
      for (const [what, cidr] of Object.entries(DEFAULT_CLUSTER_NETWORKS)) {
        const [[, net]] = parsedCidrs([cidr]) as [[string, any]];
        const hits = relayFrom.filter(([, r]) => cidrsOverlap(r, net)).map(([c]) => c);
        assert.deepEqual(hits, [], `${file}: relayFrom ${hits.join(", ")} holds the ${what} (${cidr})`);
      }
    }
  });

  it("a pod at 10.244.1.7 (kubeadm's pod network) may not send to a foreign domain on port 25", () => {
    for (const { file, relay } of shipped) {
      const { compiled } = renderRelay(relay, clusterView());
      const ci = compileInbound(compiled.config);
      assert.ok(ci.ok);
      const d = decideInbound(ci.value, "10.244.1.7", "smtp");
      assert.equal(d.relayFrom, false, `${file}: the pod is a relayFrom client`);
      assert.equal(d.need.auth, false, "no login asked of it (inbound.require: none)");
      assert.deepEqual(
        checkRecipient(ci.value, { mayRelay: mayRelay(d, undefined) }, "victim.example.net"),
        { code: 550, text: "5.7.1 Relaying denied" },
        `${file}: mail from a pod to any domain is accepted`,
      );
    }
  });
});
