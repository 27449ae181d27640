// Faults (GitHub issue 8, item 3), operator side, against a real kube-apiserver: the operator reaches
// it through a TCP proxy the test can cut, so that
//   - every watch connection is dropped (several times), then a policy changes: the ConfigMap follows;
//   - kube-apiserver is restarted (same port and etcd) right after a change, in the middle of the
//     reconcile it triggers: the operator converges to the change;
//   - a conflicting writer (another field manager) rewrites the ConfigMap's data, repeatedly: the
//     operator takes it back every time;
// and after each, no error loop: the reconcile error count stops growing once converged (checked by
// a further change converging without a single new error).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeObject, type KubeClient } from "../../operator/runtime/kube.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { CONFIG_GZ_FILE, configMapJson, encodeConfig } from "../../relay/contract/config-encoding.js";
import type { ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import { operatorIdentity, controlPlaneFor, startOperator } from "../support/operator.js";

const NS = "mail";
type Obj = KubeObject & {
  spec?: any;
  status?: any;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
};

/** A TCP proxy to the apiserver; `drop()` cuts every connection through it (watches included). */
async function startProxy(
  target: number,
): Promise<{ port: number; drops: number; drop(): number; close(): Promise<void> }> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const u = net.connect({ host: "127.0.0.1", port: target });
    for (const s of [c, u]) {
      conns.add(s);
      s.on("close", () => conns.delete(s));
      s.on("error", () => s.destroy());
    }
    c.on("close", () => u.destroy());
    u.on("close", () => c.destroy());
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const p = {
    port: (server.address() as net.AddressInfo).port,
    drops: 0,
    drop(): number {
      const n = conns.size;
      for (const s of conns) s.destroy();
      p.drops += n;
      return n;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of conns) s.destroy();
        server.close(() => r());
      }),
  };
  return p;
}

describe("operator under API faults", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  let proxy: Awaited<ReturnType<typeof startProxy>>;

  const get = (r: (typeof R)[keyof typeof R], name: string) => admin.find<Obj>(r, NS, name);
  const domains = async (): Promise<string[]> => {
    const cm = await get(R.ConfigMap, "edge-config").catch(() => undefined);
    const raw = cm ? configMapJson(cm) : undefined;
    if (!raw) return [];
    try {
      return RelayConfig.parse(JSON.parse(raw)).policies.flatMap((p) => p.domains);
    } catch {
      return [];
    }
  };
  const errors = async (): Promise<number> =>
    (await op.metrics.errors.get()).values.reduce((s, v) => s + v.value, 0);
  const setPolicyDomain = (d: string) =>
    admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailDomainPolicy",
        metadata: { name: "partner", namespace: NS, labels: { relay: "edge" } },
        spec: { domains: [d], outbound: { tls: { mode: "required" } } },
      },
      { fieldManager: "test-user" },
    );
  const converged = (d: string, what: string) =>
    waitFor(
      `${what}: ConfigMap has ${d}`,
      async () => ((await domains()).includes(d) ? true : undefined),
      120_000,
      200,
    );
  /** A further change converges without a new reconcile error: no error loop left behind. */
  const noErrorLoop = async (what: string, tag: string): Promise<void> => {
    await waitFor(`${what}: work queue idle`, async () => {
      const d = (await op.metrics.queueDepth.get()).values.reduce((s, v) => s + v.value, 0);
      return d === 0 ? true : undefined;
    });
    const before = await errors();
    await setPolicyDomain(`${tag}.example`);
    await converged(`${tag}.example`, `${what} (check)`);
    assert.equal(await errors(), before, `${what}: no reconcile error once converged`);
  };

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS));
    const id = await operatorIdentity(cp);
    const apiPort = Number(new URL(cp.server).port);
    proxy = await startProxy(apiPort);
    const yaml = (await readFile(id.kubeconfigPath, "utf8")).replace(
      `server: ${cp.server}`,
      `server: https://127.0.0.1:${proxy.port}`,
    );
    assert.ok(yaml.includes(`127.0.0.1:${proxy.port}`));
    const kc = new k8s.KubeConfig();
    kc.loadFromString(yaml);
    op = await startOperator(kc, { probe: () => Promise.resolve(undefined) });
    await admin.apply(
      {
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailRelay",
        metadata: { name: "edge", namespace: NS },
        spec: {
          hostname: "relay.example.com",
          replicas: 1,
          certificate: { issuerRef: { kind: "ClusterIssuer", name: "corp-ca" } },
          inbound: {
            require: "none",
            relayFrom: ["10.0.0.0/8"],
            localDomains: ["example.com"],
            internalNextHop: { host: "exchange.mail.svc", port: 25 },
          },
          queue: { size: "1Gi" },
          policySelector: { matchLabels: { relay: "edge" } },
        },
      },
      { fieldManager: "test-user" },
    );
    await setPolicyDomain("start.example");
    await converged("start.example", "initial");
  });
  after(async () => {
    await op?.stop();
    await proxy?.close();
    await cp?.stop();
  });

  it("watch connections dropped: converges to the next change", async (t) => {
    const before = await errors();
    let dropped = 0;
    for (let i = 0; i < 3; i++) {
      dropped += proxy.drop();
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(dropped > 0, "there were connections (watches) to drop");
    await setPolicyDomain("after-drop.example");
    await converged("after-drop.example", "after watch drops");
    t.diagnostic(
      `connections dropped ${dropped}; reconcile errors during the fault ${(await errors()) - before}`,
    );
    await noErrorLoop("watch drops", "calm-1");
  });

  it("apiserver restarted mid-reconcile: converges", async (t) => {
    const before = await errors();
    await setPolicyDomain("during-restart.example");
    await cp.restartApiserver(); // the reconcile this change triggers runs into the restart
    await converged("during-restart.example", "after apiserver restart");
    t.diagnostic(`reconcile errors during the restart ${(await errors()) - before}`);
    assert.ok((await errors()) - before <= 50, "errors bounded");
    await noErrorLoop("apiserver restart", "calm-2");
  });

  it("conflicting writer on the ConfigMap's data: taken back each time", async (t) => {
    const before = await errors();
    const good = (await get(R.ConfigMap, "edge-config"))!.binaryData![CONFIG_GZ_FILE]!;
    for (let i = 0; i < 5; i++) {
      await admin.apply(
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "edge-config", namespace: NS },
          binaryData: { [CONFIG_GZ_FILE]: encodeConfig(`{"intruder":${i}}`).toString("base64") },
        },
        { fieldManager: "intruder", force: true },
      );
      await waitFor(
        `conflicting write ${i} taken back`,
        async () =>
          (await get(R.ConfigMap, "edge-config"))?.binaryData?.[CONFIG_GZ_FILE] === good ? true : undefined,
        60_000,
        100,
      );
    }
    const cm = (await get(R.ConfigMap, "edge-config"))!;
    const managers = (cm.metadata.managedFields ?? []).map((m: any) => m.manager as string);
    t.diagnostic(`field managers now: ${managers.join(", ")}; errors during ${(await errors()) - before}`);
    await noErrorLoop("conflicting writer", "calm-3");
  });
});
