// `sealpost queue list --fleet` (issue 17) against a real kube-apiserver: the MailRelay's pods are
// found by the operator's labels through the Kubernetes API (the CLI's own kubeconfig), each running
// pod is asked at its pod IP on the admin port, a pod that is not running is named and skipped, and a
// pod of another relay is not asked. There is no kubelet: the pods are created by hand and their
// status (Running, pod IP 127.0.0.1 / 127.0.0.2) is written through the status subresource; the
// "pods" behind those IPs are two real relays on loopback, both on the same admin port.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { relayLabels } from "../../operator/render/meta.js";
import { sealpost } from "../support/cli.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";

const NS = "mail";
const TOKEN = "fleet-token";

let cp: ControlPlane;
const relays: RelayFixture[] = [];
let adminPort: number;
let tokenFile: string;

async function pod(name: string, relay: string, status?: { ip: string }): Promise<void> {
  const obj = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, labels: relayLabels(relay) },
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
});

after(async () => {
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
    await pod("edge-0", "edge", { ip: "127.0.0.1" });
    await pod("edge-1", "edge", { ip: "127.0.0.2" });
    await pod("edge-2", "edge"); // no kubelet ran it: Pending, no IP
    await pod("other-0", "other", { ip: "127.0.0.3" }); // another relay's pod: never asked
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
    assert.equal(r.stderr, "sealpost queue: pod edge-2 (Pending) skipped: not running\n");

    const none = await sealpost(["queue", "list", "--fleet", "nosuch", "-n", NS, "--token-file", tokenFile], {
      KUBECONFIG: cp.kubeconfigPath,
    });
    assert.equal(none.code, 1);
    assert.equal(none.stderr, `sealpost queue: no running pod of MailRelay ${NS}/nosuch\n`);
  });
});
