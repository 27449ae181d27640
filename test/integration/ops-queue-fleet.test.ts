// `sealpost queue list --fleet` (issue 17) against a real kube-apiserver: the MailRelay's pods are
// found through the Kubernetes API (the CLI's own kubeconfig): the MailRelay, its StatefulSet, and
// the pods with its labels that the StatefulSet controls. Each running pod is asked at its pod IP on
// the admin port, a pod that is not running is named and skipped, and a pod of another relay is not
// asked. A look-alike (the relay's labels, not its StatefulSet's: anyone with edit rights in the
// namespace can make one) listening on the admin port is named and never receives the admin token
// (attack review 4). There is no kubelet nor StatefulSet controller: the MailRelay, StatefulSet and
// pods are created by hand and the pods' status (Running, pod IP 127.0.0.1 / .2 / .3) is written
// through the status subresource; the "pods" behind the first two IPs are two real relays on
// loopback, the third is the impostor's HTTP listener, all on the same admin port.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { relayLabels } from "../../operator/render/meta.js";
import { sealpost } from "../support/cli.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { sealpostCrdFiles } from "../support/operator.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";

const NS = "mail";
const TOKEN = "fleet-token";

let cp: ControlPlane;
const relays: RelayFixture[] = [];
let adminPort: number;
let tokenFile: string;

let impostor: Server;
/** The Authorization headers the impostor's listener received. */
const stolen: string[] = [];

/** The uid of a namespaced object, read with kubectl. */
async function uidOf(kind: string, name: string): Promise<string> {
  return (await cp.kubectl(["-n", NS, "get", kind, name, "-o", "jsonpath={.metadata.uid}"])).stdout.trim();
}

/** MailRelay `name` and its StatefulSet, as the operator would make them. */
async function mailRelay(name: string): Promise<void> {
  const relay = {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name, namespace: NS },
    spec: { hostname: `${name}.example.com`, certificate: { secretRef: { name: "tls" } } },
  };
  await cp.kubectl(["apply", "-f", "-"], JSON.stringify(relay));
  const sts = {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: {
      name,
      namespace: NS,
      labels: relayLabels(name),
      ownerReferences: [
        {
          apiVersion: "sealpost.dev/v1alpha1",
          kind: "MailRelay",
          name,
          uid: await uidOf("mailrelay", name),
          controller: true,
        },
      ],
    },
    spec: {
      // edge-0..2 are members; a pod beyond spec.replicas is not (relay/contract/relay-pods.ts)
      replicas: 3,
      serviceName: name,
      selector: { matchLabels: relayLabels(name) },
      template: {
        metadata: { labels: relayLabels(name) },
        spec: { containers: [{ name: "relay", image: "sealpost:test" }] },
      },
    },
  };
  await cp.kubectl(["apply", "-f", "-"], JSON.stringify(sts));
}

/** A pod with `relay`'s labels, controlled by its StatefulSet unless `owned` is false. */
async function pod(name: string, relay: string, status?: { ip: string }, owned = true): Promise<void> {
  const owner = owned
    ? [
        {
          apiVersion: "apps/v1",
          kind: "StatefulSet",
          name: relay,
          uid: await uidOf("statefulset", relay),
          controller: true,
        },
      ]
    : undefined;
  const obj = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NS,
      labels: relayLabels(relay),
      ...(owner ? { ownerReferences: owner } : {}),
    },
    spec: { containers: [{ name: "relay", image: "sealpost:test" }] },
  };
  await cp.kubectl(["apply", "-f", "-"], JSON.stringify(obj));
  if (status)
    await cp.kubectl([
      "-n",
      NS,
      "patch",
      "pod",
      name,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { phase: "Running", podIP: status.ip, podIPs: [{ ip: status.ip }] } }),
    ]);
}

async function send(f: RelayFixture, to: string): Promise<string> {
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO app.internal");
  await s.cmd("MAIL FROM:<app@client.test>");
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250 /);
  await s.cmd("DATA");
  const reply = await s.data("Subject: fleet\r\n\r\nbody");
  s.close();
  return /queued as ([0-9A-F]+)/.exec(reply)![1]!;
}

before(async () => {
  cp = await startControlPlane();
  await cp.applyCrds(sealpostCrdFiles());
  await cp.kubectl(["create", "namespace", NS]);
  // no service-account controller here: the pods' ServiceAccount is made by hand
  await cp.kubectl(["-n", NS, "create", "serviceaccount", "default"]);
  adminPort = await freePort();
  const dead = await freePort();
  for (const ip of ["127.0.0.1", "127.0.0.2"]) {
    const f = await relayFixture(`ops-fleet-${ip}`);
    await f.configure(
      {
        admin: { port: adminPort, host: ip, tokenFile: "secrets/admin/token" },
        queue: { dir: join(f.work, "queue"), maxAge: 7200, retry: { initial: 3600, max: 3600 }, workers: 2 },
        policies: [
          {
            name: "mail/down",
            domains: ["down.test"],
            outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: dead } },
          },
        ],
      },
      { files: { "secrets/admin/token": `${TOKEN}\n` } },
    );
    await f.start();
    relays.push(f);
  }
  tokenFile = join(relays[0]!.work, "token");
  await writeFile(tokenFile, TOKEN);
  // the impostor: answers like a relay's admin port, and keeps whatever credentials it is sent
  impostor = createServer((req, res) => {
    if (req.headers.authorization) stolen.push(req.headers.authorization);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ messages: [] }));
  });
  await new Promise<void>((resolve) => impostor.listen(adminPort, "127.0.0.3", resolve));
});

after(async () => {
  impostor?.close();
  for (const f of relays) await f.stop();
  await cp?.stop();
});

describe("sealpost queue list --fleet", () => {
  it("lists every running pod of the MailRelay through the Kubernetes API, skips the others", async () => {
    const a = await send(relays[0]!, "x@down.test");
    const b = await send(relays[1]!, "y@down.test");
    await waitFor("both queued", () =>
      relays.every((f) => f.relay!.status().queue.depth === 1) ? true : undefined,
    );
    await mailRelay("edge");
    await mailRelay("other");
    await pod("edge-0", "edge", { ip: "127.0.0.1" });
    await pod("edge-1", "edge", { ip: "127.0.0.2" });
    await pod("edge-2", "edge"); // no kubelet ran it: Pending, no IP
    await pod("other-0", "other", { ip: "127.0.0.3" }); // another relay's pod: never asked
    // a look-alike with edge's labels, running, at the impostor's address: never asked
    await pod("edge-3", "edge", { ip: "127.0.0.3" }, false);
    const r = await sealpost(
      [
        "queue",
        "list",
        "--fleet",
        "edge",
        "-n",
        NS,
        "--admin-port",
        String(adminPort),
        "--token-file",
        tokenFile,
      ],
      { KUBECONFIG: cp.kubeconfigPath, SEALPOST_ADMIN_TOKEN: "" },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^POD +ID +AGE +ATTEMPTS +FROM +PENDING +REASON\n/);
    assert.match(r.stdout, new RegExp(`^edge-0 +${a} `, "m"));
    assert.match(r.stdout, new RegExp(`^edge-1 +${b} `, "m"));
    assert.doesNotMatch(r.stdout, /other-0/);
    assert.equal(
      r.stderr,
      "sealpost queue: pod edge-3 skipped: not a pod of the relay's StatefulSet (the labels alone do not make one; it is not sent the admin token)\n" +
        "sealpost queue: pod edge-2 (Pending) skipped: not running\n",
    );
    assert.doesNotMatch(r.stdout, /edge-3/);
    assert.deepEqual(stolen, [], "the impostor never received the admin token");

    const none = await sealpost(["queue", "list", "--fleet", "nosuch", "-n", NS, "--token-file", tokenFile], {
      KUBECONFIG: cp.kubeconfigPath,
    });
    assert.equal(none.code, 1);
    assert.equal(none.stderr, `sealpost queue: no running pod of MailRelay ${NS}/nosuch\n`);
  });
});
