// RelayCredential reconciler: checks the referenced Secret (keys, type), asks cert-manager for a client
// certificate when the credential names an issuer, and reports Accepted/Ready.
import { RelayCredential as CredentialSchema } from "../../api.js";
import { credentialSecretName } from "../../compile/references.js";
import { certificateState, renderClientCertificate } from "../../render/certificate.js";
import type { ReconcileResult } from "../../runtime/controller.js";
import { problemsCondition, type ConditionInput } from "../../runtime/conditions.js";
import { ApiError } from "../../runtime/kube.js";
import { splitKey } from "../../objects.js";
import type { ReconcilerDeps } from "../deps.js";
import { writeStatus } from "../status-write.js";

export async function reconcileRelayCredential(
  deps: ReconcilerDeps,
  key: string,
): Promise<ReconcileResult | void> {
  const { namespace, name } = splitKey(key);
  const raw = deps.state.caches.credentials.get(namespace, name);
  if (!raw || raw.metadata.deletionTimestamp) return;
  const g = raw.metadata.generation;
  const parsed = CredentialSchema.safeParse(raw);
  const problems: { reason: string; message: string }[] = [];
  let secretName: string | undefined;
  if (!parsed.success) {
    problems.push({
      reason: "InvalidSpec",
      message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    });
  } else {
    const c = parsed.data;
    const secretKeys = (n: string) => deps.state.caches.secrets.get(namespace, n);
    if (c.spec.type === "password") {
      const ref = c.spec.passwordSecretRef!;
      const s = secretKeys(ref.name);
      if (!s)
        problems.push({ reason: "MissingReference", message: `Secret ${namespace}/${ref.name} not found` });
      else if (!(ref.key in (s.data ?? {})))
        problems.push({
          reason: "MissingReference",
          message: `Secret ${namespace}/${ref.name} key "${ref.key}" not found`,
        });
    } else {
      secretName = credentialSecretName(c);
      if (c.spec.issuerRef) {
        try {
          await deps.client.apply(
            renderClientCertificate(
              { apiVersion: raw.apiVersion, kind: raw.kind, name, namespace, uid: raw.metadata.uid ?? "" },
              secretName,
              c.spec.dnsNames ?? [],
              c.spec.issuerRef,
            ),
          );
        } catch (e) {
          if (!(e instanceof ApiError) || e.code !== 404) throw e;
          problems.push({
            reason: "CertificateNotReady",
            message: "cert-manager's Certificate API is not installed",
          });
        }
        const st = certificateState(deps.state.caches.certificates.get(namespace, secretName));
        if (!problems.length && !st?.ready)
          problems.push({
            reason: "CertificateNotReady",
            message: st?.message ?? `Certificate ${namespace}/${secretName} not issued yet`,
          });
      } else {
        const s = secretKeys(secretName);
        const needed = c.spec.usage === "outbound" ? ["tls.crt", "tls.key"] : ["tls.crt"];
        if (!s)
          problems.push({
            reason: "MissingReference",
            message: `Secret ${namespace}/${secretName} not found`,
          });
        else if (s.type !== "kubernetes.io/tls")
          problems.push({
            reason: "InvalidReference",
            message: `Secret ${namespace}/${secretName} is type ${s.type ?? "Opaque"}, not kubernetes.io/tls`,
          });
        else
          for (const k of needed)
            if (!(k in (s.data ?? {})))
              problems.push({
                reason: "MissingReference",
                message: `Secret ${namespace}/${secretName} key "${k}" not found`,
              });
      }
    }
  }
  const accepted = problemsCondition(
    "Accepted",
    problems,
    { reason: "Valid", message: "the referenced Secret holds what this credential needs" },
    g,
  );
  const ready: ConditionInput = {
    ...accepted,
    type: "Ready",
    reason: problems.length ? accepted.reason : "Ready",
  };
  await writeStatus(deps, raw, { observedGeneration: g, ...(secretName ? { secretName } : {}) }, [
    ready,
    accepted,
  ]);
}
