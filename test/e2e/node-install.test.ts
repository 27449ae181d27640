// Sealpost on a real node (issue 21): the image built from the Dockerfile, `helm install` of the chart,
// examples/ applied, relay pods started by a real kubelet (containerd, runc, CNI bridge, kube-proxy in
// iptables mode), and mail through the relay's Service to Postfix partners on the host side of the
// node's network. Nothing plays kubelet here. Needs root and scripts/node-setup.sh; run it with
// `node scripts/run-tests.mjs e2e` (the plain `npm test` leaves test/e2e out).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { randomBytes } from "node:crypto";
import { fillPlaceholders, readExamples, toYaml, type Manifest } from "../../demo/examples.js";
import { startCertManager, type CertManager } from "../support/cert-manager.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { HOST_IP, IMAGE, startNode, type KubeNode } from "../support/node.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { swaks } from "../support/swaks.js";
import { repoRoot, toolchainBin } from "../support/toolchain.js";

const run = promisify(execFile);
const NS = "mail";
const OPERATOR_NS = "sealpost-system";
const RELAY = "edge";

const corpCa = `
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: { name: selfsigned }
spec: { selfSigned: {} }
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: { name: corp-ca, namespace: kube-system }
spec:
  isCA: true
  commonName: corp-ca
  secretName: corp-ca
  privateKey: { algorithm: ECDSA, size: 256 }
  issuerRef: { name: selfsigned, kind: ClusterIssuer, group: cert-manager.io }
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: { name: corp-ca }
spec: { ca: { secretName: corp-ca } }
`;

const password = () => randomBytes(18).toString("base64url");

describe("Sealpost on a real node: image, helm install, kubelet-run pods, mail", () => {
  let node: KubeNode;
  let cm: CertManager | undefined;
  let dns: DnsServer | undefined;
  let doug: PostfixPeer | undefined;
  let partnerA: PostfixPeer | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  const kubectl = (args: string[], input?: string) => node.cp.kubectl(args, input);
  const getJson = async (args: string[]): Promise<any> =>
    JSON.parse((await kubectl([...args, "-o", "json"])).stdout);
  const pw = { scanner: password(), dougOut: password(), dougIn: password(), partnerC: password() };
  let dougUser = "";
  let dougMx: { certFile: string; keyFile: string } | undefined;
  const startDoug = () =>
    startPostfix({
      domains: ["doug.example"],
      tls: "require",
      cert: dougMx,
      auth: { username: dougUser, password: pw.dougOut },
      listen: { host: HOST_IP, port: 587 },
    });

  before(async () => {
    // SEALPOST_E2E_KEEP=1 keeps the node's folder (kubelet.log, containerd.log, pod-logs/) after the run
    node = await startNode({ keep: process.env.SEALPOST_E2E_KEEP === "1" });
    cleanups.push(() => node.stop());
    cm = await startCertManager(node.cp);
    cleanups.push(() => cm!.stop());
    await kubectl(["apply", "-f", "-"], corpCa);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch((e: Error) => console.error(`cleanup: ${e.message}`));
  });

  /** What kubelet and the node saw, for a failed wait. */
  const diagnose = async () => {
    const pods = await kubectl(["get", "pods", "-A", "-o", "wide"]).catch((e: Error) => ({
      stdout: e.message,
    }));
    const events = await kubectl(["get", "events", "-A", "--sort-by=.lastTimestamp"]).catch((e: Error) => ({
      stdout: e.message,
    }));
    return `${pods.stdout}\n${events.stdout.split("\n").slice(-30).join("\n")}\n--- kubelet ---\n${await node.logTail("kubelet", 30)}`;
  };

  /** The container logs kubelet wrote for pods whose folder starts with prefix (<ns>_<pod>_<uid>). */
  const podLogs = async (prefix: string): Promise<string> => {
    const dir = join(node.dir, "pod-logs");
    let out = "";
    for (const pod of readdirSync(dir).filter((d) => d.startsWith(prefix))) {
      for (const c of readdirSync(join(dir, pod)))
        for (const f of readdirSync(join(dir, pod, c)))
          out += await readFile(join(dir, pod, c, f), "utf8").catch(() => "");
    }
    return out;
  };

  it("helm install: the operator Deployment's 2 replicas run the built image and are Ready; one holds the Lease", async () => {
    const helm = join(toolchainBin(["etcd", "kube-apiserver", "kubectl", "helm"]), "helm");
    const [repository, tag] = IMAGE.split(":") as [string, string];
    await run(helm, [
      "--kubeconfig",
      node.cp.kubeconfigPath,
      "install",
      "sealpost",
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
    const deploy = await waitFor(
      "the operator Deployment available with 2 ready replicas",
      async () => {
        const d = await getJson([
          "get",
          "deployment",
          "-n",
          OPERATOR_NS,
          "-l",
          "app.kubernetes.io/instance=sealpost",
        ]);
        const dep = d.items?.[0];
        return dep?.status?.readyReplicas === 2 && dep.status.availableReplicas === 2 ? dep : undefined;
      },
      300_000,
      1000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });
    const pods = await getJson([
      "get",
      "pods",
      "-n",
      OPERATOR_NS,
      "-l",
      "app.kubernetes.io/instance=sealpost",
    ]);
    assert.equal(pods.items.length, 2);
    for (const p of pods.items) {
      assert.equal(p.spec.containers[0].image, IMAGE);
      assert.ok(p.status.conditions.some((c: any) => c.type === "Ready" && c.status === "True"));
    }
    assert.equal(deploy.spec.replicas, 2);
    const names = pods.items.map((p: any) => p.metadata.name as string);
    await waitFor(
      "one operator pod holding the Lease",
      async () => {
        const leases = await getJson(["get", "leases", "-n", OPERATOR_NS]);
        // the operator's identity is <hostname>_<pid>, and a pod's hostname is its name
        const holders = leases.items.map((l: any) => String(l.spec?.holderIdentity ?? "").split("_")[0]);
        return holders.some((h: string) => names.includes(h)) ? true : undefined;
      },
      120_000,
      1000,
    );
  });

  it("examples/: the relay pods are Ready on their queue PVCs, non-root, read-only root, no service account token", async () => {
    await kubectl(["create", "namespace", NS]);
    // the chart's admission policy lets relays and certificates carry only the host names the admin
    // granted the namespace (issue 15.9; examples/README.md)
    await kubectl(["annotate", "namespace", NS, "sealpost.dev/allowed-hostnames=relay.example.com"]);
    const dougCa = await makeCa(join(node.dir, "doug-pki"), "DOUG E2E CA");
    dougMx = await makeLeaf(dougCa, { cn: "mx.doug.example", dnsNames: ["mx.doug.example"] });
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
    const docs = readExamples(join(repoRoot, "examples")).flatMap((e) => e.docs);
    dougUser = (
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
    });

    // the partners and the cluster DNS the pods use, on the host side of the node's network
    dns = await startDnsServer(
      {
        "mx.doug.example": { A: [HOST_IP] },
        "partner-a.example": { MX: [{ preference: 10, exchange: "mx.partner-a.example" }] },
        "mx.partner-a.example": { A: [HOST_IP] },
      },
      { listen: { host: HOST_IP, port: 53 } },
    );
    cleanups.push(() => dns!.stop());
    doug = await startDoug();
    cleanups.push(() => doug!.stop());
    partnerA = await startPostfix({
      domains: ["partner-a.example"],
      tls: "none",
      listen: { host: HOST_IP, port: 25 },
    });
    cleanups.push(() => partnerA!.stop());

    await kubectl(["apply", "-n", NS, "-f", "-"], toYaml(filled));

    const pods = await waitFor(
      "the relay StatefulSet's 2 pods Ready",
      async () => {
        const list = await getJson(["get", "pods", "-n", NS, "-l", `sealpost.dev/relay=${RELAY}`]);
        const ready = list.items.filter((p: any) =>
          p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"),
        );
        return ready.length === 2 ? ready : undefined;
      },
      420_000,
      2000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });

    const pvcs = await getJson(["get", "pvc", "-n", NS]);
    assert.equal(pvcs.items.filter((c: any) => c.status.phase === "Bound").length, 2, "2 queue PVCs Bound");

    // checked from the running pods: the relay process's uid, its root mount, its token
    const tasks = await node.ctr(["tasks", "ls"]);
    for (const p of pods) {
      const cid = (p.status.containerStatuses as any[]).find((c) => c.name === "relay")
        ?.containerID as string;
      assert.ok(cid, `relay container of ${p.metadata.name}`);
      const id = cid.replace(/^containerd:\/\//, "");
      const line = tasks.split("\n").find((l) => l.startsWith(id));
      const pid = Number(line?.split(/\s+/)[1]);
      assert.ok(pid > 0, `the relay task of ${p.metadata.name} runs (ctr tasks ls: ${line})`);
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m, "the relay runs as uid 65532");
      const rootMount = readFileSync(`/proc/${pid}/mounts`, "utf8")
        .split("\n")
        .find((l) => l.split(" ")[1] === "/");
      assert.match(rootMount ?? "", /\bro\b/, `root filesystem read-only: ${rootMount}`);
      assert.ok(
        !readFileSync(`/proc/${pid}/mounts`, "utf8").includes(
          "/var/run/secrets/kubernetes.io/serviceaccount",
        ),
        "no service account token mounted",
      );
    }
  });

  it("mail through the relay's ClusterIP reaches DOUG under verify with AUTH, from the pod's address", async () => {
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const clusterIp = svc.spec.clusterIP as string;
    const r = await swaks({
      server: clusterIp,
      port: 25,
      from: "scanner@example.com",
      to: "alice@doug.example",
      subject: "e2e: through the ClusterIP to DOUG",
      timeoutSeconds: 60,
    });
    assert.equal(r.code, 0, `swaks through ${clusterIp}:25:\n${r.transcript}`);
    const msgs = await doug!.waitForMessages(1, 180_000);
    assert.match(msgs[0]!.raw, /e2e: through the ClusterIP to DOUG/);
    const log = doug!.log();
    assert.match(log, /Trusted TLS connection established|TLS connection established from/);
    assert.match(log, /sasl_username=sealpost-edge/);
    // the relay's outbound source address is its pod's (no masquerading on the way to the host side)
    assert.match(log, /connect from [^\s[]*\[10\.244\.0\.\d+\]/);
  });

  it("mail for partner-a (TLS required, no STARTTLS offered) is deferred, nothing sent in clear", async () => {
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const r = await swaks({
      server: svc.spec.clusterIP,
      port: 25,
      from: "scanner@example.com",
      to: "bob@partner-a.example",
      subject: "e2e: partner-a must not get this in clear",
      timeoutSeconds: 60,
    });
    assert.equal(r.code, 0, r.transcript);
    await waitFor(
      "the relay's delivery deferred for partner-a",
      async () =>
        (await podLogs(`${NS}_${RELAY}-`)).match(
          /"result":"deferred"[^\n]*partner-a|partner-a[^\n]*"result":"deferred"/,
        )
          ? true
          : undefined,
      180_000,
      1000,
    );
    assert.equal((await partnerA!.messages()).length, 0);
    assert.doesNotMatch(partnerA!.log(), /from=<scanner@example.com>/);
  });

  it("a policy edit reaches the running pods through kubelet's ConfigMap update (no restart), and Enforced follows", async () => {
    const condition = (o: any, type: string) =>
      (o.status?.conditions ?? []).find((c: any) => c.type === type);
    const relayPods = async () =>
      ((await getJson(["get", "pods", "-n", NS, "-l", `sealpost.dev/relay=${RELAY}`])).items as any[]).map(
        (p) => ({
          name: p.metadata.name as string,
          uid: p.metadata.uid as string,
          restarts: (p.status.containerStatuses as any[]).reduce((n, c) => n + (c.restartCount as number), 0),
        }),
      );
    await waitFor(
      "the MailRelay Enforced before the edit",
      async () =>
        condition(await getJson(["get", "mailrelay", "-n", NS, RELAY]), "Enforced")?.status === "True"
          ? true
          : undefined,
      180_000,
      1000,
    ).catch(async (e: Error) => {
      throw new Error(
        `${e.message}\n${JSON.stringify((await getJson(["get", "mailrelay", "-n", NS, RELAY])).status, null, 2)}`,
      );
    });
    const before = await relayPods();
    const hashBefore = (await getJson(["get", "configmap", "-n", NS, `${RELAY}-config`])).metadata
      .annotations?.["sealpost.dev/config-hash"] as string;

    // stricter, never weaker: partner-a now needs TLS 1.3
    await kubectl([
      "patch",
      "maildomainpolicy",
      "-n",
      NS,
      "partner-a",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { outbound: { tls: { minVersion: "TLSv1.3" } } } }),
    ]);
    const policy = await waitFor(
      "partner-a's edit Enforced by every ready pod",
      async () => {
        const p = await getJson(["get", "maildomainpolicy", "-n", NS, "partner-a"]);
        const c = condition(p, "Enforced");
        return c?.status === "True" && c.observedGeneration === p.metadata.generation ? p : undefined;
      },
      300_000,
      1000,
    ).catch(async (e: Error) => {
      throw new Error(
        `${e.message}\n${JSON.stringify((await getJson(["get", "maildomainpolicy", "-n", NS, "partner-a"])).status, null, 2)}`,
      );
    });
    assert.ok(policy.metadata.generation > 1);
    const hashAfter = (await getJson(["get", "configmap", "-n", NS, `${RELAY}-config`])).metadata
      .annotations?.["sealpost.dev/config-hash"] as string;
    assert.notEqual(hashAfter, hashBefore, "a new configuration revision");
    // the MailRelay's own Enforced follows in its next reconcile (it reads the pods' shared /status)
    await waitFor(
      "the MailRelay Enforced on the new configuration",
      async () => {
        const c = condition(await getJson(["get", "mailrelay", "-n", NS, RELAY]), "Enforced");
        return c?.status === "True" && String(c.message).includes(hashAfter.slice(0, 12)) ? true : undefined;
      },
      120_000,
      1000,
    );
    assert.deepEqual(await relayPods(), before, "the same pods, no container restarted");
  });

  it("a relay pod deleted while mail waits for a down partner comes back on its PVC and delivers it once", async () => {
    await doug!.stop(); // DOUG is down: connections to 10.250.0.1:587 are refused
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const subject = `e2e: queued across a pod restart ${randomBytes(4).toString("hex")}`;
    const r = await swaks({
      server: svc.spec.clusterIP,
      port: 25,
      from: "scanner@example.com",
      to: "carol@doug.example",
      subject,
      timeoutSeconds: 60,
    });
    assert.equal(r.code, 0, r.transcript);
    // the pod that took the message and could not deliver it
    const pods = (await getJson(["get", "pods", "-n", NS, "-l", `sealpost.dev/relay=${RELAY}`]))
      .items as any[];
    const holder = await waitFor(
      "a relay pod deferring the message for DOUG",
      async () => {
        for (const p of pods) {
          const log = await podLogs(`${NS}_${p.metadata.name}_${p.metadata.uid}`);
          if (
            /"result":"deferred"[^\n]*"domain":"doug\.example"|"domain":"doug\.example"[^\n]*"result":"deferred"/.test(
              log,
            )
          )
            return p;
        }
        return undefined;
      },
      180_000,
      1000,
    ).catch(async (e: Error) => {
      const logs = (await podLogs(`${NS}_${RELAY}-`)).split("\n").slice(-15).join("\n");
      throw new Error(`${e.message}\n${logs}`);
    });
    const name = holder.metadata.name as string;
    const claim = (holder.spec.volumes as any[]).find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim
      ?.claimName as string;
    assert.ok(claim, `${name} has a queue PVC`);
    const pvcBefore = await getJson(["get", "pvc", "-n", NS, claim]);

    await kubectl(["delete", "pod", "-n", NS, name, "--wait=true", "--timeout=300s"]);
    const again = await waitFor(
      `${name} recreated and Ready`,
      async () => {
        const p = await getJson(["get", "pod", "-n", NS, name]).catch(() => undefined);
        const ready = p?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");
        return p && p.metadata.uid !== holder.metadata.uid && ready ? p : undefined;
      },
      300_000,
      1000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });
    const pvcAfter = await getJson(["get", "pvc", "-n", NS, claim]);
    assert.equal(pvcAfter.metadata.uid, pvcBefore.metadata.uid, "the same PVC");
    assert.equal(pvcAfter.spec.volumeName, pvcBefore.spec.volumeName, "on the same volume");

    doug = await startDoug(); // DOUG is back
    const arrived = await waitFor(
      "the queued message delivered to DOUG",
      async () => {
        const msgs = await doug!.messages();
        return msgs.some((m) => m.raw.includes(subject)) ? msgs : undefined;
      },
      300_000,
      1000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await podLogs(`${NS}_${name}_${again.metadata.uid}`)}`);
    });
    // done in the relay's queue (removed from the spool) before counting, so a duplicate would be seen
    await waitFor(
      "the relay's queue done with the message",
      async () =>
        (await podLogs(`${NS}_${name}_${again.metadata.uid}`)).includes('"event":"queue-done"')
          ? true
          : undefined,
      60_000,
      500,
    );
    const copies = (await doug.messages()).filter((m) => m.raw.includes(subject));
    assert.equal(copies.length, 1, `delivered exactly once (had ${arrived.length} messages)`);
  });

  it("scaling the MailRelay from 2 to 1 runs the preStop drain under kubelet: every queued message arrives once", async () => {
    // The handover target is the relay's Service by its cluster name (edge.mail.svc): what a cluster's
    // DNS answers (CoreDNS: <service>.<namespace>.svc.cluster.local, reached through the pods' search
    // list), the pods' DNS here answers too.
    const service = await getJson(["get", "service", "-n", NS, RELAY]);
    dns!.set(`${RELAY}.${NS}.svc.cluster.local`, { A: [service.spec.clusterIP] });
    // the drain needs the admin token (no token, no hook); setting it rolls the StatefulSet
    await kubectl([
      "create",
      "secret",
      "generic",
      "-n",
      NS,
      "edge-admin",
      `--from-literal=token=${password()}`,
    ]);
    await kubectl([
      "patch",
      "mailrelay",
      "-n",
      NS,
      RELAY,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { admin: { tokenSecretRef: { name: "edge-admin" } } } }),
    ]);
    await waitFor(
      "the StatefulSet rolled to pods with the preStop hook, both Ready",
      async () => {
        const sts = await getJson(["get", "statefulset", "-n", NS, RELAY]);
        const hook = sts.spec.template.spec.containers.find((c: any) => c.name === "relay")?.lifecycle
          ?.preStop;
        const st = sts.status ?? {};
        return hook &&
          st.observedGeneration === sts.metadata.generation &&
          st.currentRevision === st.updateRevision &&
          st.readyReplicas === 2 &&
          st.updatedReplicas === 2
          ? true
          : undefined;
      },
      420_000,
      2000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });

    await doug!.stop(); // queue mail in both pods
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const tag = randomBytes(4).toString("hex");
    const n = 12;
    for (let i = 0; i < n; i++) {
      const r = await swaks({
        server: svc.spec.clusterIP,
        port: 25,
        from: "scanner@example.com",
        to: `dave${i}@doug.example`,
        subject: `e2e: drain ${tag} #${String(i).padStart(2, "0")}`,
        timeoutSeconds: 60,
      });
      assert.equal(r.code, 0, r.transcript);
    }
    // where the mail waits: each message is deferred (first attempt) by the pod that took it; the
    // attempt log names the recipient domain before the result
    const deferredIn = async (pod: string) => {
      const p = await getJson(["get", "pod", "-n", NS, pod]);
      const log = await podLogs(`${NS}_${pod}_${p.metadata.uid}`);
      return new Set(
        [...log.matchAll(/"queueId":"([^"]+)"[^\n]*"domain":"doug\.example"[^\n]*"result":"deferred"/g)].map(
          (m) => m[1],
        ),
      ).size;
    };
    const held = await waitFor(
      `all ${n} messages deferred in the pods`,
      async () => {
        const h = [await deferredIn(`${RELAY}-0`), await deferredIn(`${RELAY}-1`)];
        return h[0]! + h[1]! >= n ? h : undefined;
      },
      180_000,
      1000,
    ).catch(async (e: Error) => {
      const tail = (await podLogs(`${NS}_${RELAY}-`)).split("\n").slice(-10).join("\n");
      throw new Error(`${e.message}\n${await diagnose()}\n${tail}`);
    });
    assert.ok(held[1]! > 0, `edge-1 holds some of the mail (edge-0 ${held[0]}, edge-1 ${held[1]})`);

    await kubectl([
      "patch",
      "mailrelay",
      "-n",
      NS,
      RELAY,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { replicas: 1 } }),
    ]);
    await waitFor(
      "edge-1 gone after its preStop drain",
      async () =>
        (await getJson(["get", "pods", "-n", NS, "-l", `sealpost.dev/relay=${RELAY}`])).items.length === 1
          ? true
          : undefined,
      300_000,
      1000,
    );

    doug = await startDoug();
    // same-length numbers: no subject is a prefix of another
    const subjects = Array.from({ length: n }, (_, i) => `e2e: drain ${tag} #${String(i).padStart(2, "0")}`);
    await waitFor(
      `all ${n} messages at DOUG`,
      async () => {
        const msgs = await doug!.messages();
        return subjects.every((sub) => msgs.some((m) => m.raw.includes(sub))) ? true : undefined;
      },
      300_000,
      1000,
    ).catch(async (e: Error) => {
      const got = (await doug!.messages()).filter((m) => m.raw.includes(tag)).length;
      const relay = await getJson(["get", "mailrelay", "-n", NS, RELAY]);
      throw new Error(`${e.message} (${got} of ${n} arrived)\n${JSON.stringify(relay.status, null, 2)}`);
    });
    const counts = subjects.map((sub) => ({
      sub,
      copies: 0,
    }));
    for (const m of await doug.messages()) for (const c of counts) if (m.raw.includes(c.sub)) c.copies++;
    assert.deepEqual(
      counts.filter((c) => c.copies !== 1),
      [],
      "each message exactly once",
    );
  });
});
