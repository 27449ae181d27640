// `npm run demo -- --node`: the demo on a real Kubernetes node on this machine, nothing playing
// kubelet: the end-to-end suite's node (test/support/node.ts: control plane, containerd, runc, kubelet,
// kube-proxy in a network namespace), the image built from the Dockerfile, `helm install` of the
// chart, examples/ applied, and the same two outcomes as the default demo, read from the relay pods'
// own logs (what kubelet wrote): a message to DOUG delivered under verified TLS with AUTH, and one to
// partner-a (TLS required, no STARTTLS offered) deferred. Needs root and scripts/node-setup.sh (the
// README's "End-to-end on a real node"). Everything it started is removed on exit, Ctrl-C included.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call -- the apiserver's JSON */
import { randomBytes } from "node:crypto";
import { nodeUnavailable, startNode, type KubeNode } from "../test/support/node.js";
import {
  applyExamples,
  helmInstall,
  OPERATOR_NS,
  podLogs,
  relayLogLines,
  startCertManagerWithCorpCa,
  type ExamplePartners,
} from "../test/support/node-install.js";
import { waitFor } from "../test/support/process.js";
import { swaks } from "../test/support/swaks.js";
import {
  certificateOf,
  describeDelivery,
  Reporter,
  summaryLines,
  tlsOf,
  type DeliveryLine,
  type Outcome,
} from "./report.js";

const NS = "mail";
const RELAY = "edge";
const STEPS = 6;

export async function runNodeDemo(opts: { keep?: boolean } = {}): Promise<number> {
  const rep = new Reporter(STEPS);
  const why = nodeUnavailable();
  if (why) {
    rep.plain(`the node demo cannot run here: ${why}`);
    return 1;
  }
  const stops: (() => Promise<unknown>)[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      rep.stopSpin();
      for (const s of stops.reverse())
        await s().catch((e: Error) => process.stderr.write(`cleanup: ${e.message}\n`));
    })());
  // test/support/process.ts kills its children on SIGINT and exits; the node needs its teardown
  // (containers, mounts, iptables, netns) instead
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.removeAllListeners(sig);
    process.on(sig, () => {
      rep.plain(`\n${sig}: removing the node and everything on it`);
      void stopAll().finally(() => process.exit(130));
    });
  }

  try {
    rep.plain(
      "Sealpost demo on a real node: kubelet runs the image built from the Dockerfile, installed with helm.",
    );
    rep.step(
      1,
      "the node: control plane, containerd, runc, kubelet, kube-proxy (scripts/node-setup.sh builds them)",
    );
    const node: KubeNode = await rep.wait("starting the node", startNode({ keep: opts.keep }));
    stops.push(() => node.stop());
    rep.ok(`node Ready; its folder ${node.dir}${opts.keep ? " (kept)" : ""}`);
    const kubectl = (args: string[]) => node.cp.kubectl(args);
    const getJson = async (args: string[]): Promise<any> =>
      JSON.parse((await kubectl([...args, "-o", "json"])).stdout);

    rep.step(2, "cert-manager and the corp-ca ClusterIssuer examples/README.md asks for");
    const cm = await rep.wait("starting cert-manager", startCertManagerWithCorpCa(node));
    stops.push(() => cm.stop());
    rep.ok("cert-manager's controller running");

    rep.step(3, "helm install sealpost charts/sealpost (the built image)");
    await rep.wait("helm install", helmInstall(node));
    await rep.wait("the operator's 2 replicas Ready", () =>
      waitFor(
        "operator ready",
        async () => {
          const d = await getJson(["get", "deployment", "-n", OPERATOR_NS]);
          return d.items?.[0]?.status?.readyReplicas === 2 ? true : undefined;
        },
        300_000,
        1000,
      ),
    );
    rep.ok("operator Deployment: 2/2 Ready");

    rep.step(4, "kubectl apply -n mail -f examples/ (partners and DNS on the host side of the node)");
    const ex: ExamplePartners = await rep.wait("applying examples/", applyExamples(node, NS));
    stops.push(
      () => ex.dns.stop(),
      () => ex.doug.stop(),
      () => ex.partnerA.stop(),
    );
    const pods = await rep.wait("the relay pods Ready (kubelet pulls nothing: the image is imported)", () =>
      waitFor(
        "relay pods ready",
        async () => {
          const l = await getJson(["get", "pods", "-n", NS, "-l", `sealpost.dev/relay=${RELAY}`]);
          const ready = (l.items as any[]).filter((p) =>
            p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"),
          );
          return ready.length === 2 ? ready : undefined;
        },
        420_000,
        2000,
      ),
    );
    for (const p of pods) rep.info(`pod ${p.metadata.name} ${p.status.podIP} Ready`);
    const svc = await getJson(["get", "service", "-n", NS, RELAY]);
    const clusterIp = svc.spec.clusterIP as string;
    rep.ok(`Service ${RELAY}: ClusterIP ${clusterIp}, type ${svc.spec.type}`);

    const deliveries = async (policy: string) =>
      relayLogLines(await podLogs(node, `${NS}_${RELAY}-`)).filter(
        (l) => l.event === "delivery" && l.policy === policy,
      ) as DeliveryLine[];
    const send = (to: string, subject: string) =>
      swaks({
        server: clusterIp,
        port: 25,
        from: "scanner@example.com",
        to,
        subject: `${subject} ${randomBytes(3).toString("hex")}`,
        timeoutSeconds: 60,
      });

    rep.step(
      5,
      "a message to bob@doug.example (policy doug: verify against doug-ca + AUTH) through the ClusterIP",
    );
    const delivered: Outcome = { ok: false, text: "" };
    const s1 = await rep.wait("swaks", send("bob@doug.example", "Sealpost node demo: verified TLS to DOUG"));
    rep.info(
      `swaks -> ${clusterIp}:25: ${s1.queued ? `${s1.queued.code} ${s1.queued.lines.join(" ")}` : `exit ${s1.code}`}`,
    );
    if (s1.code === 0) {
      const line = await rep.wait("waiting for a relay pod's delivery attempt", () =>
        waitFor("delivery to DOUG", async () => (await deliveries(`${NS}/doug`))[0], 120_000, 1000),
      );
      rep.info("relay pod's protocol log (event=delivery), from kubelet's log file:");
      rep.lines(describeDelivery(line, "configmaps/doug-ca/ca.crt (ConfigMap doug-ca)"), "        ");
      const msgs = line.result === "delivered" ? await ex.doug.waitForMessages(1, 30_000) : [];
      delivered.ok = line.result === "delivered" && line.session?.peerVerified === true && msgs.length === 1;
      delivered.text = delivered.ok
        ? `to mx.doug.example over ${tlsOf(line)}, certificate ${certificateOf(line, "doug-ca")}, AUTH as ${ex.dougUser}; Postfix stored it for ${msgs[0]?.recipient ?? "bob@doug.example"}`
        : `not as expected: ${line.result} ${line.code ?? ""} ${line.reason ?? ""}`;
    } else delivered.text = `the relay did not accept the message (swaks exit ${s1.code})`;
    (delivered.ok ? rep.ok.bind(rep) : rep.fail.bind(rep))(`delivered: ${delivered.text}`);

    rep.step(
      6,
      "fail closed: a message to alice@partner-a.example (TLS required), whose server offers no STARTTLS",
    );
    const deferred: Outcome = { ok: false, text: "" };
    const s2 = await rep.wait(
      "swaks",
      send("alice@partner-a.example", "Sealpost node demo: must not travel in clear"),
    );
    rep.info(
      `swaks -> ${clusterIp}:25: ${s2.queued ? `${s2.queued.code} ${s2.queued.lines.join(" ")}` : `exit ${s2.code}`}`,
    );
    if (s2.code === 0) {
      const line = await rep.wait("waiting for a relay pod's delivery attempt", () =>
        waitFor("attempt to partner-a", async () => (await deliveries(`${NS}/partner-a`))[0], 120_000, 1000),
      );
      rep.info("relay pod's protocol log (event=delivery), from kubelet's log file:");
      rep.lines(describeDelivery(line), "        ");
      const msgs = await ex.partnerA.messages();
      const clear = /from=<scanner@example\.com>/.test(ex.partnerA.log());
      // deferred for the missing STARTTLS itself, not for anything before it (e.g. MX_ADDRESS_FORBIDDEN)
      deferred.ok =
        line.result === "deferred" && line.code === "TLS_NOT_OFFERED" && msgs.length === 0 && !clear;
      deferred.text = deferred.ok
        ? `${line.code}: ${line.reason} (${line.nextHop ?? "?"} ${line.address}:${line.port}) — not sent in clear, still queued in the pod, Postfix received nothing`
        : `not as expected: ${line.result} ${line.code ?? ""}, Postfix messages ${msgs.length}, clear-text MAIL ${clear}`;
    } else deferred.text = `the relay did not accept the message (swaks exit ${s2.code})`;
    (deferred.ok ? rep.ok.bind(rep) : rep.fail.bind(rep))(`deferred: ${deferred.text}`);

    rep.plain("\nSummary (real pods, started by kubelet)");
    rep.lines(summaryLines(delivered, deferred), "  ");
    return delivered.ok && deferred.ok ? 0 : 1;
  } catch (e) {
    rep.stopSpin();
    rep.plain(`\ndemo failed: ${(e as Error).stack ?? String(e)}`);
    return 1;
  } finally {
    rep.plain("\ncleaning up: Postfix, DNS, cert-manager, the node (containers, mounts, iptables, netns)");
    await stopAll();
  }
}
