// Sealpost installed on the end-to-end node the way a user installs it, shared by the e2e suite
// (test/e2e/) and `npm run demo -- --node` (demo/node.ts): cert-manager with the `corp-ca`
// ClusterIssuer examples/README.md asks for, `helm install` of charts/sealpost with the built image,
// and examples/ applied (placeholders filled with values made now) with its partners on the host
// side of the node's network: DOUG's Postfix (TLS required, its own CA, AUTH), partner-a's Postfix
// without STARTTLS, and the DNS server the pods use.
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { fillPlaceholders, readExamples, toYaml, type Manifest } from "../../demo/examples.js";
import { CORP_CA, startCertManager } from "./cert-manager.js";
import { makeCa, makeLeaf } from "./certs.js";
import { makeDkimKey } from "./dkim.js";
import { startDnsServer, type DnsServer } from "./dns-server.js";
import { BRIDGE_IP, HOST_IP, IMAGE, type KubeNode } from "./node.js";
import { startPostfix, type PostfixPeer } from "./postfix.js";
import { swaksSafePassword } from "./swaks.js";
import { repoRoot, toolchainBin } from "./toolchain.js";

const run = promisify(execFile);

export const OPERATOR_NS = "sealpost-system";
/** The chart's release name. */
export const RELEASE = "sealpost";

/** Starts cert-manager's controller on the node's control plane and creates the `corp-ca` ClusterIssuer. */
export async function startCertManagerWithCorpCa(node: KubeNode): Promise<{ stop(): Promise<void> }> {
  const cm = await startCertManager(node.cp);
  await node.cp.kubectl(["apply", "-f", "-"], CORP_CA);
  return cm;
}

/** helm, from the control plane's toolchain, against the node's control plane. */
export function helm(node: KubeNode, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const bin = join(toolchainBin(["etcd", "kube-apiserver", "kubectl", "helm"]), "helm");
  return run(bin, ["--kubeconfig", node.cp.kubeconfigPath, ...args]);
}

/** `helm install` of charts/sealpost with the image built from the Dockerfile. */
export async function helmInstall(node: KubeNode): Promise<void> {
  const [repository, tag] = IMAGE.split(":") as [string, string];
  await helm(node, [
    "install",
    RELEASE,
    join(repoRoot, "charts/sealpost"),
    "-n",
    OPERATOR_NS,
    "--create-namespace",
    "--set",
    `image.repository=${repository}`,
    "--set",
    `image.tag=${tag}`,
    // the chart's admission policy lets the operator use only the ClusterIssuers listed (issue
    // 15.9); examples/ issue from corp-ca, as examples/README.md says
    "--set",
    "admissionPolicy.allowedClusterIssuers={corp-ca}",
  ]);
}

export interface ExamplePartners {
  dns: DnsServer;
  doug: PostfixPeer;
  partnerA: PostfixPeer;
  /** The user name the relay logs in to DOUG with (RelayCredential doug-outbound). */
  dougUser: string;
  /** Starts DOUG's Postfix again (after a stop), same certificate and account. */
  startDoug: () => Promise<PostfixPeer>;
}

/**
 * Starts the partners and DNS on the host side, then applies examples/ into namespace `ns` (which it
 * creates). Returns once applied; the relay pods come up after.
 */
export async function applyExamples(node: KubeNode, ns: string): Promise<ExamplePartners> {
  await node.cp.kubectl(["create", "namespace", ns]);
  // the chart's admission policy lets relays and certificates carry only the host names the admin
  // granted the namespace (issue 15.9; examples/README.md)
  await node.cp.kubectl(["annotate", "namespace", ns, "sealpost.dev/allowed-hostnames=relay.example.com"]);
  const pw = {
    scanner: swaksSafePassword(),
    dougOut: swaksSafePassword(),
    dougIn: swaksSafePassword(),
    partnerC: swaksSafePassword(),
  };
  const dougCa = await makeCa(join(node.dir, "doug-pki"), "DOUG E2E CA");
  const dougMx = await makeLeaf(dougCa, { cn: "mx.doug.example", dnsNames: ["mx.doug.example"] });
  const smimeCa = await makeCa(join(node.dir, "partner-d-pki"), "partner-d E2E CA");
  const smime: Record<string, string> = {};
  for (const who of ["alice", "bob"]) {
    const leaf = await makeLeaf(smimeCa, {
      cn: `${who}@partner-d.example`,
      emails: [`${who}@partner-d.example`],
      rsa: true,
      name: who,
    });
    smime[who] = readFileSync(leaf.certFile, "utf8");
  }
  // 09's S/MIME fallback certificate and 07's DKIM key (mail from example.com is signed)
  const carol = await makeLeaf(smimeCa, {
    cn: "carol@partner-i.example",
    emails: ["carol@partner-i.example"],
    rsa: true,
    name: "carol",
  });
  const dkim = await makeDkimKey(node.dir, "example-com");
  const docs = readExamples(join(repoRoot, "examples")).flatMap((e) => e.docs);
  const dougUser = (
    docs.find((d) => d.kind === "RelayCredential" && d.metadata?.name === "doug-outbound") as Manifest & {
      spec: { username: string };
    }
  ).spec.username;
  const filled = fillPlaceholders(docs, {
    "Secret/scanner-submission/password": pw.scanner,
    "Secret/doug-outbound/password": pw.dougOut,
    "Secret/doug-inbound/password": pw.dougIn,
    "Secret/partner-c-inbound/password": pw.partnerC,
    "ConfigMap/doug-ca/ca.crt": readFileSync(dougCa.certFile, "utf8"),
    "ConfigMap/partner-d-smime/alice.crt": smime.alice!,
    "ConfigMap/partner-d-smime/bob.crt": smime.bob!,
    "ConfigMap/partner-i-smime/carol.crt": readFileSync(carol.certFile, "utf8"),
    "Secret/example-com-dkim/private.key": readFileSync(dkim.keyFile, "utf8"),
  });

  // The partners' MX hosts live on the host side of the node's network, a private address, which the
  // relay refuses for destinations chosen by DNS (MX_ADDRESS_FORBIDDEN) unless allowed: what a user
  // whose partners sit behind a private link sets too. Without it, partner-a's mail would be deferred
  // for its MX address and never reach the STARTTLS check this setup is there to show.
  const relay = filled.find((d) => d.kind === "MailRelay") as Manifest & {
    spec: { delivery?: Record<string, unknown>; inbound?: { relayFrom?: string[] } };
  };
  relay.spec.delivery = { ...relay.spec.delivery, allowedInternalCidrs: [`${HOST_IP}/32`] };
  // The tests' internal senders (swaks on the host side) reach the relay's Service through the node's
  // bridge, so the relay sees them at its address: listed in relayFrom, as a user lists their mail
  // servers in place of the example's subnet (never the pod network: examples/README.md)
  relay.spec.inbound = {
    ...relay.spec.inbound,
    relayFrom: [...(relay.spec.inbound?.relayFrom ?? []), `${BRIDGE_IP}/32`],
  };

  const started: { stop(): Promise<unknown> }[] = [];
  try {
    // the partners and the cluster DNS the pods use, on the host side of the node's network
    const dns = await startDnsServer(
      {
        "mx.doug.example": { A: [HOST_IP] },
        "partner-a.example": { MX: [{ preference: 10, exchange: "mx.partner-a.example" }] },
        "mx.partner-a.example": { A: [HOST_IP] },
      },
      { listen: { host: HOST_IP, port: 53 } },
    );
    started.push(dns);
    const startDoug = () =>
      startPostfix({
        domains: ["doug.example"],
        tls: "require",
        cert: dougMx,
        auth: { username: dougUser, password: pw.dougOut },
        listen: { host: HOST_IP, port: 587 },
      });
    const doug = await startDoug();
    started.push(doug);
    const partnerA = await startPostfix({
      domains: ["partner-a.example"],
      tls: "none",
      listen: { host: HOST_IP, port: 25 },
    });
    started.push(partnerA);
    await node.cp.kubectl(["apply", "-n", ns, "-f", "-"], toYaml(filled));
    return { dns, doug, partnerA, dougUser, startDoug };
  } catch (e) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw e;
  }
}

/** The container logs kubelet wrote for pods whose folder starts with prefix (<ns>_<pod>_<uid>). */
export async function podLogs(node: KubeNode, prefix: string): Promise<string> {
  const dir = join(node.dir, "pod-logs");
  let out = "";
  for (const pod of readdirSync(dir).filter((d) => d.startsWith(prefix))) {
    for (const c of readdirSync(join(dir, pod)))
      for (const f of readdirSync(join(dir, pod, c)))
        out += await readFile(join(dir, pod, c, f), "utf8").catch(() => "");
  }
  return out;
}

/** The relay's JSON log lines from kubelet's CRI log files (`<time> stdout F <json>`). */
export function relayLogLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of text.split("\n")) {
    const json = l.split(" ").slice(3).join(" ");
    if (!json.startsWith("{")) continue;
    try {
      out.push(JSON.parse(json) as Record<string, unknown>);
    } catch {
      // a line split by the CRI's 16 KiB limit (P): not a delivery line
    }
  }
  return out;
}
