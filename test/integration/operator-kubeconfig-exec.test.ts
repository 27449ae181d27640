// Issue 17, runtime: a kubeconfig the operator does not read itself (an exec credential plugin, as EKS,
// GKE and OIDC logins use) goes to client-node's KubeConfig (operator/runtime/kubeconfig.ts), and the
// operator's own client (keep-alive pool, list/watch) works with what client-node puts on the request
// options. Against a real kube-apiserver: the plugin hands out the admin client certificate, the
// operator's KubeClient lists, creates and watches with it, over one reused connection.
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { KubeClient, R } from "../../operator/runtime/kube.js";
import { loadKubeAuth, SimpleKubeConfig } from "../../operator/runtime/kubeconfig.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";

interface AdminKubeconfig {
  clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
}

describe("kubeconfig with an exec credential plugin (client-node fallback)", () => {
  let cp: ControlPlane;
  let work: string;
  let kubeconfig: string;
  before(async () => {
    cp = await startControlPlane();
    work = await mkdtemp(join(tmpdir(), "kubeconfig-exec-"));
    const admin = parse(await readFile(cp.kubeconfigPath, "utf8")) as AdminKubeconfig;
    const pem = (b64: string) => Buffer.from(b64, "base64").toString();
    const credential = {
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      status: {
        clientCertificateData: pem(admin.users[0]!.user["client-certificate-data"]),
        clientKeyData: pem(admin.users[0]!.user["client-key-data"]),
      },
    };
    await writeFile(join(work, "credential.json"), JSON.stringify(credential), { mode: 0o600 });
    const plugin = join(work, "plugin.sh");
    await writeFile(plugin, `#!/bin/sh\nexec cat '${join(work, "credential.json")}'\n`);
    await chmod(plugin, 0o700);
    kubeconfig = join(work, "exec.kubeconfig");
    await writeFile(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ${admin.clusters[0]!.cluster.server}
    certificate-authority-data: ${admin.clusters[0]!.cluster["certificate-authority-data"]}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${plugin}
      interactiveMode: Never
contexts:
- name: c
  context: { cluster: c, user: u }
current-context: c
`,
    );
  });
  after(async () => {
    await cp?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("loads client-node's KubeConfig, and KubeClient lists, creates and watches with it", async () => {
    const auth = await loadKubeAuth(kubeconfig);
    assert.ok(!(auth instanceof SimpleKubeConfig), "an exec plugin is client-node's job");
    const client = new KubeClient(auth);
    let connections = 0;
    client.onConnection = () => connections++;
    try {
      const before = await client.list(R.ConfigMap, "default");
      const ac = new AbortController();
      const seen: string[] = [];
      const watching = client
        .watch(
          "/api/v1/namespaces/default/configmaps",
          {},
          (e) => {
            seen.push(`${e.type} ${(e.object as { metadata: { name: string } }).metadata.name}`);
            if (seen.includes("ADDED exec-auth")) ac.abort();
          },
          { signal: ac.signal },
        )
        .catch(() => undefined);
      await client.apply({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "exec-auth", namespace: "default" },
        data: { a: "b" },
      });
      await watching;
      assert.ok(seen.includes("ADDED exec-auth"), seen.join(", "));
      const after = await client.list(R.ConfigMap, "default");
      assert.equal(after.items.length, before.items.length + 1);
      // requests share the keep-alive pool: one connection for list, apply and list
      assert.equal(connections, 1);
    } finally {
      client.close();
    }
  });
});
