// Playing cert-manager for a test control plane without its controller: the operator creates a
// relay's `<relay>-tls` empty (controllers/mailrelay/reconcile.ts ensureIssuedSecrets) and creates
// the relay's StatefulSet only once that Secret holds a certificate (conditions.ts statefulSetHold).
// issueRelayCertificate fills the operator's own Secret in place, as cert-manager issues into it
// (same object, same uid: only data changes), with a certificate generated at test time for the
// relay's hostname. Tests that run cert-manager's real controller (support/cert-manager.ts) do not
// need it.
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import { makeCa, makeLeaf, type Ca } from "./certs.js";
import { waitFor } from "./process.js";

let ca: Promise<Ca> | undefined;
const testCa = (): Promise<Ca> =>
  (ca ??= mkdtemp(join(tmpdir(), "sealpost-issued-")).then((dir) => makeCa(dir, "Sealpost Test Issuer")));

type SecretObj = KubeObject & { type?: string; data?: Record<string, string> };

/**
 * Waits for the operator's `<relay>-tls` Secret and issues a certificate for the relay's hostname
 * into it, unless something (cert-manager) already did. Resolves with the Secret as filled.
 */
export async function issueRelayCertificate(
  admin: KubeClient,
  namespace: string,
  relay: string,
  timeoutMs = 30_000,
): Promise<SecretObj> {
  const name = `${relay}-tls`;
  const secret = await waitFor(
    `the operator's Secret ${namespace}/${name}`,
    () => admin.find<SecretObj>(R.Secret, namespace, name),
    timeoutMs,
  );
  if (secret.data?.["tls.crt"] && secret.data["tls.key"]) return secret;
  const mr = await admin.find<KubeObject & { spec: { hostname: string } }>(R.MailRelay, namespace, relay);
  const hostname = mr?.spec.hostname ?? `${relay}.example.com`;
  const issuer = await testCa();
  const leaf = await makeLeaf(issuer, { cn: hostname, dnsNames: [hostname], name: `${namespace}-${relay}` });
  const b64 = async (file: string) => (await readFile(file)).toString("base64");
  return admin.mergePatch<SecretObj>(R.Secret, namespace, name, {
    data: {
      "tls.crt": await b64(leaf.certFile),
      "tls.key": await b64(leaf.keyFile),
      "ca.crt": await b64(leaf.caFile),
    },
  });
}
