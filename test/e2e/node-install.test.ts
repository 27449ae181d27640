// Sealpost on a real node (issue 21): the image built from the Dockerfile, `helm install` of the chart,
// examples/ applied, relay pods started by a real kubelet (containerd, runc, CNI bridge, kube-proxy in
// iptables mode), and mail through the relay's Service to Postfix partners on the host side of the
// node's network. Nothing plays kubelet here. Needs root and scripts/node-setup.sh; run it with
// `node scripts/run-tests.mjs e2e` (the plain `npm test` leaves test/e2e out).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { randomBytes, X509Certificate } from "node:crypto";
import { toYaml } from "../../demo/examples.js";
import type { DnsServer } from "../support/dns-server.js";
import { ADMIN_PORT } from "../../operator/render/meta.js";
import { HOST_IP, IMAGE, NODE_IP, startNode, type KubeNode } from "../support/node.js";
import {
  applyExamples,
  helm,
  helmInstall,
  OPERATOR_NS,
  podLogs as podLogsOf,
  relayLogLines,
  RELEASE,
  startCertManagerWithCorpCa,
} from "../support/node-install.js";
import type { PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { sentIds, SteadySender } from "../support/steady-sender.js";
import { swaks } from "../support/swaks.js";
import { repoRoot } from "../support/toolchain.js";

const run = promisify(execFile);
const NS = "mail";
const RELAY = "edge";

const password = () => randomBytes(18).toString("base64url");

describe("Sealpost on a real node: image, helm install, kubelet-run pods, mail", () => {
  let node: KubeNode;
  let dns: DnsServer | undefined;
  let doug: PostfixPeer | undefined;
  let partnerA: PostfixPeer | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  const kubectl = (args: string[], input?: string) => node.cp.kubectl(args, input);
  const getJson = async (args: string[]): Promise<any> =>
    JSON.parse((await kubectl([...args, "-o", "json"])).stdout);
  let startDoug: () => Promise<PostfixPeer>;

  before(async () => {
    // SEALPOST_E2E_KEEP=1 keeps the node's folder (kubelet.log, containerd.log, pod-logs/) after the run
    node = await startNode({ keep: process.env.SEALPOST_E2E_KEEP === "1" });
    cleanups.push(() => node.stop());
    const cm = await startCertManagerWithCorpCa(node);
    cleanups.push(() => cm.stop());
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch((e: Error) => console.error(`cleanup: ${e.message}`));
  });

  /** A merge patch of the MailRelay's spec. */
  const patchRelay = (spec: Record<string, unknown>) =>
    kubectl(["patch", "mailrelay", "-n", NS, RELAY, "--type=merge", "-p", JSON.stringify({ spec })]);

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

  /** The relay's pods: name, uid, address and container restarts, by name. */
  const relayPods = async () =>
    ((await getJson(["get", "pods", "-n", NS, "-l", `sealpost.dev/relay=${RELAY}`])).items as any[])
      .map((p) => ({
        name: p.metadata.name as string,
        uid: p.metadata.uid as string,
        ip: p.status.podIP as string,
        restarts: ((p.status.containerStatuses ?? []) as any[]).reduce(
          (n, c) => n + (c.restartCount as number),
          0,
        ),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));

  const podLogs = (prefix: string) => podLogsOf(node, prefix);

  /** The network namespace (under /run/netns) of the pod with this address. */
  const podNetns = async (ip: string): Promise<string> => {
    const { stdout } = await run("ip", ["netns", "list"]);
    for (const ns of stdout
      .split("\n")
      .map((l) => l.split(" ")[0]!)
      .filter((n) => n.startsWith("cni-"))) {
      const addrs = await run("ip", ["-n", ns, "-o", "-4", "addr", "show"]).catch(() => ({ stdout: "" }));
      if (addrs.stdout.includes(` ${ip}/`)) return `/run/netns/${ns}`;
    }
    throw new Error(`no pod network namespace has ${ip}`);
  };

  /**
   * A TCP connection attempt from inside a network namespace: "open <first line>" when it connects,
   * else the error code or "timeout" (a dropped SYN).
   */
  const connect = async (netns: string, host: string, port: number): Promise<string> => {
    const script = `const s = require("node:net").connect({ host: process.argv[1], port: Number(process.argv[2]) });
      const done = (w) => { console.log(w); process.exit(0); };
      const t = setTimeout(() => done("timeout"), 5000);
      s.once("connect", () => { clearTimeout(t); s.once("data", (d) => done("open " + String(d).split("\\r\\n")[0])); setTimeout(() => done("open"), 2000); });
      s.once("error", (e) => done(e.code));`;
    const { stdout } = await run("nsenter", [
      `--net=${netns}`,
      process.execPath,
      "-e",
      script,
      host,
      String(port),
    ]);
    return stdout.trim();
  };

  it("helm install: the operator Deployment's 2 replicas run the built image and are Ready; one holds the Lease", async () => {
    await helmInstall(node);
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
    const ex = await applyExamples(node, NS);
    ({ dns, doug, partnerA, startDoug } = ex);
    cleanups.push(
      () => dns!.stop(),
      () => doug!.stop(),
      () => partnerA!.stop(),
    );

    // Ready pods of the StatefulSet's current revision, once its rollout is complete: the operator
    // may still change the pod template right after the install (a first render before the
    // certificate and credentials are in place), and a pod read before that rollout is replaced
    // under the test (seen in CI: "the relay task of edge-0 runs (ctr tasks ls: undefined)")
    const pods = await waitFor(
      "the relay StatefulSet's 2 pods Ready, its rollout complete",
      async () => {
        const sts = await getJson(["get", "statefulset", "-n", NS, RELAY]);
        const revision = sts.status?.updateRevision as string | undefined;
        if (
          !revision ||
          sts.status?.currentRevision !== revision ||
          sts.status?.updatedReplicas !== 2 ||
          sts.status?.readyReplicas !== 2
        )
          return undefined;
        const list = await getJson(["get", "pods", "-n", NS, "-l", `sealpost.dev/relay=${RELAY}`]);
        const ready = list.items.filter(
          (p: any) =>
            p.metadata?.labels?.["controller-revision-hash"] === revision &&
            !p.metadata?.deletionTimestamp &&
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
      assert.ok(
        pid > 0,
        `the relay task of ${p.metadata.name} runs (ctr tasks ls: ${line}; container ${id}, restarts ${
          (p.status.containerStatuses as any[]).find((c) => c.name === "relay")?.restartCount
        })`,
      );
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
    // deferred for what partner-a's server does (no STARTTLS), not for anything on the way to it
    const attempt = await waitFor(
      "the relay's delivery deferred for partner-a",
      async () =>
        relayLogLines(await podLogs(`${NS}_${RELAY}-`)).find(
          (l) => l.event === "delivery" && l.policy === `${NS}/partner-a`,
        ),
      180_000,
      1000,
    );
    assert.equal(attempt.result, "deferred");
    assert.equal(attempt.code, "TLS_NOT_OFFERED", JSON.stringify(attempt));
    assert.equal((await partnerA!.messages()).length, 0);
    assert.match(partnerA!.log(), /connect from [^\s[]*\[10\.244\.0\.\d+\]/, "the relay reached partner-a");
    assert.doesNotMatch(partnerA!.log(), /from=<scanner@example.com>/);
  });

  // kube-router enforces the rendered NetworkPolicy on this node (test/support/node.ts). What the relay
  // needs under it is shown by the other scenarios: DNS to the pods' resolver and SMTP to the partners
  // on the host side (above), the operator's status reads of the admin port (Enforced, below), the
  // drain's handover between relay pods (scale 2 to 1). Here the attacker's side: connection attempts
  // from the network namespaces of other pods and of a relay pod.
  it("the relay's NetworkPolicy is enforced: another namespace's pod gets the mail port, not the admin port; the relay reaches nothing outside its egress rules", async () => {
    const np = await getJson(["get", "networkpolicy", "-n", NS, RELAY]);
    assert.deepEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
    const { stdout: rules } = await node.inNode("iptables-save", ["-t", "filter"]);
    assert.match(rules, new RegExp(`policy name ${RELAY} namespace ${NS}`), "kube-router's rules for it");

    // an intruder in another namespace, labelled like the operator's pods (labels are anyone's to set)
    const operatorPod = (await getJson(["get", "pods", "-n", OPERATOR_NS])).items.find(
      (p: any) => p.status?.podIP && p.metadata.labels?.["app.kubernetes.io/name"],
    );
    assert.ok(operatorPod, "an operator pod");
    await kubectl(["create", "namespace", "intruder"]);
    await kubectl(
      ["apply", "-n", "intruder", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "intruder", labels: operatorPod.metadata.labels },
        spec: {
          automountServiceAccountToken: false,
          containers: [
            {
              name: "idle",
              image: IMAGE,
              imagePullPolicy: "IfNotPresent",
              command: ["node", "-e", "setInterval(() => {}, 1 << 30)"],
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 65532,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
              },
            },
          ],
        },
      }),
    );
    const intruderIp = await waitFor(
      "the intruder pod running",
      async () => {
        const p = await getJson(["get", "pod", "-n", "intruder", "intruder"]).catch(() => undefined);
        return p?.status?.phase === "Running" && p.status.podIP ? (p.status.podIP as string) : undefined;
      },
      120_000,
      500,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });
    const [relay] = await relayPods();
    assert.ok(relay?.ip, "a relay pod with an address");
    const fromIntruder = await podNetns(intruderIp);
    const operatorIp = operatorPod.status.podIP as string;
    const fromOperator = await podNetns(operatorIp);
    const fromRelay = await podNetns(relay.ip);

    // positive controls first: the network itself carries these, so a refusal below is the policy's
    assert.match(await connect(fromIntruder, relay.ip, 25), /^open 220 /, "mail port: from anywhere");
    assert.match(await connect(fromOperator, relay.ip, ADMIN_PORT), /^open/, "admin port: from the operator");
    assert.match(await connect(fromRelay, HOST_IP, 25), /^open 220 /, "the relay reaches partner-a's MX");
    // the attacker's side
    assert.doesNotMatch(
      await connect(fromIntruder, relay.ip, ADMIN_PORT),
      /^open/,
      "admin port from another namespace, even with the operator's labels",
    );
    const apiPort = Number(new URL(node.cp.server).port);
    assert.doesNotMatch(await connect(fromRelay, HOST_IP, apiPort), /^open/, "relay -> kube-apiserver");
    assert.doesNotMatch(
      await connect(fromRelay, intruderIp, 25),
      /^open/,
      "relay -> a pod of another namespace (not the fleet), even on the SMTP port",
    );
    assert.doesNotMatch(
      await connect(fromRelay, operatorIp, 8081),
      /^open/,
      "relay -> the operator's health port",
    );
    await kubectl(["delete", "namespace", "intruder", "--wait=false"]);
  });

  // An ordinary workload of another namespace turned hostile: root in its container with the
  // container runtime's default capabilities (CAP_NET_RAW among them), no Pod Security profile.
  const ATTACKER_NS = "attacker";
  let attacker: { netns: string; ip: string } | undefined;
  /** An HTTP(S) GET from the attacker pod's network namespace: "<status> <body>", or the error code. */
  const attackerGet = async (host: string, port: number, path: string, tls = false): Promise<string> => {
    const script = `const r = require(process.argv[5] === "tls" ? "node:https" : "node:http").get({ host: process.argv[1], port: Number(process.argv[2]), path: process.argv[3], headers: { host: process.argv[4] }, rejectUnauthorized: false, timeout: 5000 }, (res) => { let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => { console.log(res.statusCode + " " + b.slice(0, 2000)); process.exit(0); }); });
      r.on("timeout", () => { console.log("timeout"); process.exit(0); }); r.on("error", (e) => { console.log(e.code); process.exit(0); });`;
    const args = [host, String(port), path, host, tls ? "tls" : "plain"];
    const { stdout } = await run("nsenter", [
      `--net=${attacker!.netns}`,
      process.execPath,
      "-e",
      script,
      ...args,
    ]);
    return stdout.trim();
  };
  /** An SMTP dialogue from the attacker pod: each reply's last line (or the error code). */
  const attackerSmtp = async (host: string, port: number, commands: string[]): Promise<string[]> => {
    const script = `const s = require("node:net").connect({ host: process.argv[1], port: Number(process.argv[2]) });
      const cmds = JSON.parse(process.argv[3]); const out = []; let buf = "";
      const done = () => { console.log(JSON.stringify(out)); process.exit(0); };
      setTimeout(() => { out.push("timeout"); done(); }, 15000);
      s.on("error", (e) => { out.push(e.code); done(); });
      s.on("data", (d) => { buf += d; let i; while ((i = buf.indexOf("\\r\\n")) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 2); if (l[3] === "-") continue; out.push(l); const c = cmds.shift(); if (c === undefined) return done(); s.write(c + "\\r\\n"); } });`;
    const { stdout } = await run("nsenter", [
      `--net=${attacker!.netns}`,
      process.execPath,
      "-e",
      script,
      host,
      String(port),
      JSON.stringify(commands),
    ]);
    return JSON.parse(stdout.trim()) as string[];
  };
  /** Mail for a partner from an address of ours: accepted (250) only from relayFrom or a login. */
  const RELAY_ATTEMPT = [
    "EHLO exchange.example.com",
    "MAIL FROM:<ceo@example.com>",
    "RCPT TO:<victim@partner-a.example>",
    "QUIT",
  ];

  /** A pod's network namespace name and MAC (eth0). */
  const podLink = async (ip: string) => {
    const ns = (await podNetns(ip)).split("/").pop()!;
    const mac = JSON.parse((await run("ip", ["-n", ns, "-j", "link", "show", "eth0"])).stdout)[0]
      .address as string;
    return { ns, mac };
  };
  /** test/support/forged-source.py in the attacker's netns, with CAP_NET_RAW only (a pod's root). */
  const forgedTo = async (
    target: string,
    port: number,
    forgedIp: string,
    arpIp: string,
    mode: string,
    arg: string,
  ) => {
    const link = await podLink(target);
    try {
      const { stdout } = await run("nsenter", [
        `--net=${attacker!.netns}`,
        "setpriv",
        "--bounding-set=-all,+net_raw",
        "--inh-caps=-all",
        "python3",
        join(repoRoot, "test/support/forged-source.py"),
        "eth0",
        target,
        link.mac,
        String(port),
        forgedIp,
        arpIp,
        mode,
        arg,
      ]);
      return JSON.parse(stdout) as { connected: boolean; replies: string[]; text: string };
    } finally {
      // what the forgery taught the target pod's ARP cache goes (the pod would relearn it itself)
      await run("ip", ["-n", link.ns, "neigh", "flush", "all"]).catch(() => undefined);
    }
  };

  it("attacker pod of another namespace: no relaying from its own address through the pod IP, the ClusterIP or the node port; no kubelet API", async () => {
    await kubectl(["create", "namespace", ATTACKER_NS]);
    await kubectl(
      ["apply", "-n", ATTACKER_NS, "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "attacker" },
        spec: {
          containers: [
            {
              name: "idle",
              image: IMAGE,
              imagePullPolicy: "IfNotPresent",
              command: ["node", "-e", "setInterval(() => {}, 1 << 30)"],
              securityContext: { runAsUser: 0 },
            },
          ],
        },
      }),
    );
    const ip = await waitFor(
      "the attacker pod running",
      async () => {
        const p = await getJson(["get", "pod", "-n", ATTACKER_NS, "attacker"]).catch(() => undefined);
        return p?.status?.phase === "Running" && p.status.podIP ? (p.status.podIP as string) : undefined;
      },
      120_000,
      500,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });
    attacker = { ip, netns: await podNetns(ip) };
    const [relay] = await relayPods();
    assert.ok(relay?.ip, "a relay pod with an address");
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const nodePort = (svc.spec.ports as any[]).find((p) => p.port === 25).nodePort as number;
    for (const [how, host, port] of [
      ["the relay pod's address", relay.ip, 25],
      ["the ClusterIP", svc.spec.clusterIP as string, 25],
      ["the node port (Local)", NODE_IP, nodePort],
    ] as const) {
      const replies = await attackerSmtp(host, port, RELAY_ATTEMPT);
      assert.match(replies[0] ?? "", /^220 /, `${how}: the mail port answers (${replies.join(" / ")})`);
      assert.match(replies[3] ?? "", /^550 5\.7\.1 /, `${how}: relaying denied (${replies.join(" / ")})`);
    }
    assert.doesNotMatch(await attackerGet(relay.ip, ADMIN_PORT, "/metrics"), /^\d/, "no admin port");
    assert.match(
      await attackerGet(NODE_IP, 10250, "/pods", true),
      /^401 /,
      "kubelet's API: no anonymous access",
    );
  });

  it("a policy edit reaches the running pods through kubelet's ConfigMap update (no restart), and Enforced follows", async () => {
    const condition = (o: any, type: string) =>
      (o.status?.conditions ?? []).find((c: any) => c.type === type);
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
    await patchRelay({ admin: { tokenSecretRef: { name: "edge-admin" } } });
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

    await patchRelay({ replicas: 1 });
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

  /** The relay StatefulSet rolled out: every replica updated and ready on one revision. */
  const rolledOut = async (replicas: number) => {
    const sts = await getJson(["get", "statefulset", "-n", NS, RELAY]);
    const st = sts.status ?? {};
    return st.observedGeneration === sts.metadata.generation &&
      st.currentRevision === st.updateRevision &&
      st.readyReplicas === replicas &&
      st.updatedReplicas === replicas &&
      st.replicas === replicas
      ? true
      : undefined;
  };
  /**
   * Messages in the relay pods' queues: /status on the admin port, read from the node itself (where
   * kubelet's probes come from); the relay's NetworkPolicy keeps the host side out of that port.
   */
  const queued = async () => {
    let n = 0;
    for (const p of await relayPods()) {
      const { stdout } = await node.inNode(process.execPath, [
        "-e",
        "fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t))",
        `http://${p.ip}:${ADMIN_PORT}/status`,
      ]);
      n += JSON.parse(stdout).queue.depth as number;
    }
    return n;
  };

  it("attacker pod posing as the relay pod on the bridge (CAP_NET_RAW) never reads the admin token from the operator's requests", async (t) => {
    assert.ok(attacker, "the attacker pod of the earlier cases");
    const [relay] = await relayPods();
    const operators = await Promise.all(
      ((await getJson(["get", "pods", "-n", OPERATOR_NS])).items as any[])
        .filter((p) => p.status?.podIP)
        .map(async (p) => ({ ip: p.status.podIP as string, ...(await podLink(p.status.podIP as string)) })),
    );
    const secret = await getJson(["get", "secret", "-n", NS, "edge-admin"]);
    const realToken = Buffer.from(secret.data.token as string, "base64").toString("utf8");
    try {
      // the operator asks the relay pods for /status (with the token, for the figures) every few seconds
      const { stdout } = await run("nsenter", [
        `--net=${attacker.netns}`,
        "setpriv",
        "--bounding-set=-all,+net_raw",
        "--inh-caps=-all",
        "python3",
        join(repoRoot, "test/support/impersonated-server.py"),
        "eth0",
        relay!.ip,
        String(ADMIN_PORT),
        "90",
        ...operators.map((o) => `${o.ip}=${o.mac}`),
      ]);
      for (const o of operators)
        await run("ip", ["-n", o.ns, "neigh", "flush", "all"]).catch(() => undefined);
      const request = (JSON.parse(stdout) as { request: string | null }).request ?? "";
      const token = /^authorization: Bearer (\S+)/im.exec(request)?.[1];
      t.diagnostic(
        `the operator's request, as the attacker read it: ${JSON.stringify(request.replace(token ?? "\u0000", "<token>"))}`,
      );
      if (token) {
        t.diagnostic(`the admin token of Secret edge-admin: ${token === realToken ? "yes" : "no"}`);
        const queue = await forgedTo(
          relay!.ip,
          ADMIN_PORT,
          operators[0]!.ip,
          operators[0]!.ip,
          "raw",
          `GET /queue HTTP/1.0\r\nHost: ${relay!.ip}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
        );
        t.diagnostic(`then GET /queue as the operator with it: ${JSON.stringify(queue.text.slice(0, 400))}`);
      }
      assert.equal(token, undefined, "the attacker read the admin token from the operator's request");
      // not vacuous: the attacker did read a request of the operator's, without the token in it, and
      // what it read opens nothing else (replayed to /queue as the operator)
      assert.match(request, /^GET \/status /, "the attacker read the operator's request");
      assert.ok(!request.includes(realToken), "the admin token in clear in the operator's request");
      const auth = /^authorization: (.+)$/im.exec(request)?.[1];
      const host = /^host: (.+)$/im.exec(request)?.[1] ?? relay!.ip;
      const replay = await forgedTo(
        relay!.ip,
        ADMIN_PORT,
        operators[0]!.ip,
        operators[0]!.ip,
        "raw",
        `GET /queue HTTP/1.0\r\nHost: ${host}\r\nAuthorization: ${auth}\r\n\r\n`,
      );
      t.diagnostic(`its authorization replayed to GET /queue: ${replay.text.split("\r\n")[0]}`);
      assert.ok(replay.connected, "the replay reached the admin port (the forgery works on this node)");
      assert.match(replay.text, /^HTTP\/1\.1 401 /, "the operator's signed request opens /queue");
    } finally {
      for (const o of operators)
        await run("ip", ["-n", o.ns, "neigh", "flush", "all"]).catch(() => undefined);
      await kubectl(["delete", "namespace", ATTACKER_NS, "--wait=false"]);
    }
  });

  it("kubectl rollout restart of the relay under steady load: no 5xx, every accepted message delivered exactly once", async (t) => {
    await patchRelay({ replicas: 2 });
    await waitFor("the relay back at 2 ready pods", () => rolledOut(2), 300_000, 1000).catch(
      async (e: Error) => {
        throw new Error(`${e.message}\n${await diagnose()}`);
      },
    );
    const before = await relayPods();
    // mail already waiting (partner-a's, deferred for good): it must still be there afterwards
    const waiting = await queued();
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const runTag = randomBytes(4).toString("hex");
    const sender = SteadySender.to(svc.spec.clusterIP as string, 25, {
      total: 2000,
      sessions: 2,
      perSession: 5,
      ehlo: "scanner.example.com",
      mailFrom: "scanner@example.com",
      rcpt: (i) => `roll${i}@doug.example`,
      headers: () => `X-Run: ${runTag}`,
    });
    sender.quota = 2000;
    sender.start();
    try {
      await waitFor(
        "20 messages accepted before the restart",
        () => (sender.accepted.size >= 20 || sender.fivexx.length ? true : undefined),
        60_000,
        100,
      );
      const atRestart = sender.accepted.size;
      await kubectl(["rollout", "restart", "statefulset", "-n", NS, RELAY]);
      await waitFor(
        "both relay pods replaced and the StatefulSet rolled out",
        async () => {
          const now = await relayPods();
          const replaced = now.length === 2 && now.every((p) => !before.some((b) => b.uid === p.uid));
          return replaced && (await rolledOut(2)) ? true : undefined;
        },
        600_000,
        1000,
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await diagnose()}`);
      });
      const atRolled = sender.accepted.size;
      // and the sender keeps going through the new pods
      await waitFor(
        "20 more messages accepted after the rollout",
        () => (sender.accepted.size >= atRolled + 20 || sender.fivexx.length ? true : undefined),
        120_000,
        100,
      );
      t.diagnostic(
        `accepted: ${atRestart} before the restart, ${atRolled - atRestart} during it, ${sender.accepted.size - atRolled} after`,
      );
      assert.ok(atRolled > atRestart, "mail accepted while the pods rolled");
    } finally {
      await sender.stop();
    }
    assert.deepEqual(sender.fivexx, [], "no 5xx ever");
    // every pod that went ran its preStop drain to the end (kubelet reports a hook that failed)
    const hookFailures = await getJson([
      "get",
      "events",
      "-n",
      NS,
      "--field-selector",
      "reason=FailedPreStopHook",
    ]);
    assert.deepEqual(
      hookFailures.items.map((e: any) => `${e.involvedObject.name}: ${e.message}`),
      [],
      "no failed preStop hook",
    );

    const ours = async () => (await doug!.messages()).filter((m) => m.raw.includes(`X-Run: ${runTag}`));
    await waitFor(
      `all ${sender.accepted.size} accepted messages at DOUG`,
      async () => {
        const got = new Set((await ours()).map((m) => sentIds(m.raw).id));
        return [...sender.accepted].every((id) => got.has(id)) ? true : undefined;
      },
      300_000,
      1000,
    );
    // the queues back to what waited before (nothing of this run left behind), then count copies
    await waitFor(
      "the relay queues hold only what waited before",
      async () => ((await queued()) === waiting ? true : undefined),
      120_000,
      1000,
    );
    const copies = new Map<string, number>();
    for (const m of await ours()) {
      const a = sentIds(m.raw).attempt!;
      copies.set(a, (copies.get(a) ?? 0) + 1);
    }
    const figures = {
      accepted: sender.accepted.size,
      retries4xx: sender.retries4xx,
      replies4xx: Object.fromEntries(sender.replies4xx),
      connectionRetries: sender.connectionRetries,
      unansweredData: sender.unansweredData.size,
      delivered: [...copies.values()].reduce((a, n) => a + n, 0),
    };
    t.diagnostic(`rollout figures: ${JSON.stringify(figures)}`);
    for (const a of sender.acceptedAttempts)
      assert.equal(copies.get(a), 1, `accepted attempt ${a} delivered exactly once`);
    // an attempt without a 250 arrives only if its reply was lost after the final dot, and then once
    for (const [a, n] of copies)
      if (!sender.acceptedAttempts.has(a)) {
        assert.ok(sender.unansweredData.has(a), `${a} delivered without a 250 for it`);
        assert.equal(n, 1, `${a} delivered once`);
      }
  });

  it("cert-manager renews the relay's certificate: new sessions get the new one, no pod restarted", async () => {
    const served = async (ip: string) => {
      const { stdout } = await run("sh", [
        "-c",
        `openssl s_client -starttls smtp -connect ${ip}:25 -servername relay.example.com </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`,
      ]);
      return stdout.trim().split("=")[1];
    };
    const secretFp = async () => {
      const s = await getJson(["get", "secret", "-n", NS, `${RELAY}-tls`]);
      return new X509Certificate(Buffer.from(s.data["tls.crt"] as string, "base64")).fingerprint256;
    };
    const before = await relayPods();
    const old = await secretFp();
    for (const p of before)
      assert.equal(await served(p.ip), old, `${p.name} serves the Secret's certificate`);

    // what `cmctl renew` does: the Issuing condition on the Certificate's status
    const cert = await getJson(["get", "certificate", "-n", NS, `${RELAY}-tls`]);
    const conditions = [
      ...((cert.status?.conditions ?? []) as any[]).filter((c) => c.type !== "Issuing"),
      {
        type: "Issuing",
        status: "True",
        reason: "ManuallyTriggered",
        message: "Certificate re-issuance manually triggered (e2e)",
        lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      },
    ];
    await kubectl([
      "patch",
      "certificate",
      "-n",
      NS,
      `${RELAY}-tls`,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { conditions } }),
    ]);
    const renewed = await waitFor(
      "cert-manager re-issued the relay's Secret",
      async () => {
        const fp = await secretFp();
        return fp !== old ? fp : undefined;
      },
      120_000,
      1000,
    );
    await waitFor(
      "every relay pod serving the renewed certificate to new sessions",
      async () => {
        for (const p of before) if ((await served(p.ip).catch(() => undefined)) !== renewed) return undefined;
        return true;
      },
      240_000,
      2000,
    ).catch(async (e: Error) => {
      const now = await Promise.all(before.map(async (p) => `${p.name} ${await served(p.ip)}`));
      throw new Error(`${e.message}: Secret ${renewed}, served ${now.join(", ")}`);
    });
    assert.deepEqual(await relayPods(), before, "the same pods, no container restarted");
    for (const p of before)
      assert.match(await podLogs(`${NS}_${p.name}_${p.uid}`), /"event":"certificate-reloaded"/);
  });

  it("the relay sees the client's own address through the NodePort under Local; under Cluster a node address, which the operator refuses", async () => {
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    assert.equal(svc.spec.type, "LoadBalancer");
    assert.equal(svc.spec.externalTrafficPolicy, "Local");
    /** The peer address a relay pod logged for the session that said EHLO `name`. */
    const peerOf = (name: string) =>
      waitFor(
        `the relay's session log for EHLO ${name}`,
        async () => {
          const log = await podLogs(`${NS}_${RELAY}-`);
          const line = log
            .split("\n")
            .find((l) => l.includes('"event":"session"') && l.includes(`"helo":"${name}"`));
          return line ? (/"peer":"([^"]+)"/.exec(line)?.[1] ?? "?") : undefined;
        },
        60_000,
        500,
      );
    const probe = async (port: number, name: string) => {
      const r = await swaks({
        server: NODE_IP,
        port,
        ehlo: name,
        to: "postmaster@example.com",
        quitAfter: "EHLO",
      });
      assert.equal(r.code, 0, r.transcript);
      return peerOf(name);
    };
    // from the host side of the node's network (outside the node), to the node's address and node port
    const nodePort = (svc.spec.ports as any[]).find((p) => p.port === 25).nodePort as number;
    const local = `local-${randomBytes(4).toString("hex")}.example`;
    assert.equal(await probe(nodePort, local), HOST_IP, "Local: the relay sees the client's address");

    // what Cluster would do on this node: the same pods behind a Service of that policy
    await kubectl(
      ["apply", "-n", NS, "-f", "-"],
      toYaml([
        {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "edge-cluster-policy" },
          spec: {
            type: "NodePort",
            externalTrafficPolicy: "Cluster",
            selector: svc.spec.selector,
            ports: [{ name: "smtp", port: 25, targetPort: 25 }],
          },
        },
      ]),
    );
    try {
      const probeSvc = await getJson(["get", "service", "-n", NS, "edge-cluster-policy"]);
      const cluster = `cluster-${randomBytes(4).toString("hex")}.example`;
      const seen = await waitFor(
        "a session through the Cluster-policy node port",
        async () => {
          const r = await swaks({
            server: NODE_IP,
            port: probeSvc.spec.ports[0].nodePort as number,
            ehlo: cluster,
            to: "postmaster@example.com",
            quitAfter: "EHLO",
          });
          return r.code === 0 ? true : undefined;
        },
        60_000,
        1000,
      ).then(() => peerOf(cluster));
      assert.notEqual(seen, HOST_IP, "Cluster: kube-proxy rewrote the client's address");
      assert.match(
        seen,
        /^10\./,
        `Cluster: a node address, the one relayFrom lists for the tests' senders (${seen})`,
      );
    } finally {
      await kubectl(["delete", "service", "-n", NS, "edge-cluster-policy", "--wait=true"]);
    }

    // so the operator refuses Cluster for this relay, and applies nothing of it
    const condition = (o: any, type: string) =>
      (o.status?.conditions ?? []).find((c: any) => c.type === type);
    const patch = (policy: string | null) => patchRelay({ service: { externalTrafficPolicy: policy } });
    await patch("Cluster");
    const refused = await waitFor(
      "the MailRelay refused with SnatInRelayFrom",
      async () => {
        const r = await getJson(["get", "mailrelay", "-n", NS, RELAY]);
        const c = condition(r, "Accepted");
        return c?.reason === "SnatInRelayFrom" && c.observedGeneration === r.metadata.generation
          ? c
          : undefined;
      },
      120_000,
      1000,
    );
    assert.equal(refused.status, "False");
    assert.match(refused.message as string, /spec\.inbound\.relayFrom .*externalTrafficPolicy to Local/);
    assert.equal(
      (await getJson(["get", "service", "-n", NS, RELAY])).spec.externalTrafficPolicy,
      "Local",
      "the Service keeps Local",
    );
    await patch(null);
    await waitFor(
      "the MailRelay accepted again with the default (Local)",
      async () => {
        const r = await getJson(["get", "mailrelay", "-n", NS, RELAY]);
        const c = condition(r, "Accepted");
        return c?.status === "True" && c.observedGeneration === r.metadata.generation ? true : undefined;
      },
      120_000,
      1000,
    );
  });

  it("helm upgrade to another log level rolls only the operator; helm uninstall leaves CRs, relays, PVCs and queued mail", async () => {
    const helmRun = (args: string[]) => helm(node, args);
    const operatorPods = async () =>
      (await getJson(["get", "pods", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/instance=sealpost"]))
        .items as any[];
    const relaysBefore = await relayPods();
    const pvcsBefore = ((await getJson(["get", "pvc", "-n", NS])).items as any[])
      .map((c) => c.metadata.uid)
      .sort();
    const opBefore = (await operatorPods()).map((p) => p.metadata.uid as string);

    await helmRun([
      "upgrade",
      RELEASE,
      join(repoRoot, "charts/sealpost"),
      "-n",
      OPERATOR_NS,
      "--reuse-values",
      "--set",
      "logLevel=debug",
    ]);
    await waitFor(
      "the operator rolled to 2 ready pods with --log-level=debug",
      async () => {
        const pods = (await operatorPods()).filter((p) => !p.metadata.deletionTimestamp);
        const fresh = pods.filter(
          (p) =>
            !opBefore.includes(p.metadata.uid as string) &&
            (p.spec.containers[0].args as string[]).includes("--log-level=debug") &&
            p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"),
        );
        return fresh.length === 2 && pods.length === 2 ? true : undefined;
      },
      300_000,
      1000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await diagnose()}`);
    });
    // the new leader reconciles the same MailRelay to the same pods: no relay restart
    await waitFor(
      "the MailRelay Enforced under the upgraded operator",
      async () => {
        const r = await getJson(["get", "mailrelay", "-n", NS, RELAY]);
        const c = (r.status?.conditions ?? []).find((x: any) => x.type === "Enforced");
        return c?.status === "True" && c.observedGeneration === r.metadata.generation ? true : undefined;
      },
      180_000,
      1000,
    );
    assert.deepEqual(await relayPods(), relaysBefore, "the relay pods untouched by the upgrade");

    // mail waiting in a queue when the chart goes (partner-a's stays deferred)
    const waiting = await queued();
    assert.ok(waiting > 0, "mail is queued before the uninstall");
    await helmRun(["uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout=300s"]);
    await waitFor(
      "the operator's pods gone",
      async () => ((await operatorPods()).length === 0 ? true : undefined),
      300_000,
      1000,
    );
    // helm never deletes what it installed from the chart's crds/: the CRDs and every CR stay
    const crds = (await getJson(["get", "crd"])).items.map((c: any) => c.metadata.name as string);
    for (const c of [
      "mailrelays.sealpost.dev",
      "maildomainpolicies.sealpost.dev",
      "relaycredentials.sealpost.dev",
    ])
      assert.ok(crds.includes(c), `CRD ${c} kept`);
    assert.equal((await getJson(["get", "mailrelay", "-n", NS])).items.length, 1, "the MailRelay kept");
    assert.ok((await getJson(["get", "maildomainpolicy", "-n", NS])).items.length > 0, "the policies kept");
    // the relays the operator made run on, on their volumes, with their queues
    assert.deepEqual(await relayPods(), relaysBefore, "the relay pods keep running");
    const pvcs = (await getJson(["get", "pvc", "-n", NS])).items as any[];
    assert.deepEqual(pvcs.map((c) => c.metadata.uid).sort(), pvcsBefore, "the queue PVCs kept");
    assert.ok(pvcs.every((c) => c.status.phase === "Bound"));
    assert.equal(await queued(), waiting, "the queued mail still queued");
    // and they still relay: the last config they loaded stays in force
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const subject = `e2e: after helm uninstall ${randomBytes(4).toString("hex")}`;
    const r = await swaks({
      server: svc.spec.clusterIP,
      port: 25,
      from: "scanner@example.com",
      to: "erin@doug.example",
      subject,
      timeoutSeconds: 60,
    });
    assert.equal(r.code, 0, r.transcript);
    await waitFor(
      "mail delivered with no operator installed",
      async () => ((await doug!.messages()).some((m) => m.raw.includes(subject)) ? true : undefined),
      120_000,
      1000,
    );
  });
});
