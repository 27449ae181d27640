// RelayCredential reconciler: checks the referenced Secret (keys, type), asks cert-manager for a client
// certificate when the credential names an issuer, and reports Accepted/Ready.
import { RelayCredential as CredentialSchema } from "../../api.js";
import { passwordSecretFacts, passwordSecretRefusal } from "../../compile/password-secret.js";
import { credentialSecretName, issuedSecretFacts, issuedSecretRefusal } from "../../compile/references.js";
import { certificateState, renderClientCertificate } from "../../render/certificate.js";
import type { ReconcileResult } from "../../runtime/controller.js";
import { ApiError } from "../../runtime/kube.js";
import { splitKey } from "../../objects.js";
import type { ReconcilerDeps } from "../deps.js";
import { writeStatus } from "../status-write.js";
import { credentialConditions, passwordSecretProblems, tlsSecretProblems } from "./conditions.js";

export async function reconcileRelayCredential(
  deps: ReconcilerDeps,
  key: string,
): Promise<ReconcileResult | void> {
  const { namespace, name } = splitKey(key);
  const raw = deps.state.caches.credentials.get(namespace, name);
  if (!raw || raw.metadata.deletionTimestamp) return;
  const generation = raw.metadata.generation;
  const parsed = CredentialSchema.safeParse(raw);
  const problems: { reason: string; message: string }[] = [];
  let secretName: string | undefined;
  if (!parsed.success) {
    problems.push({
      reason: "InvalidSpec",
      message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    });
  } else {
    const credential = parsed.data;
    const secretKeys = (n: string) => deps.state.caches.secrets.get(namespace, n);
    if (credential.spec.type === "password") {
      const ref = credential.spec.passwordSecretRef!;
      const secret = secretKeys(ref.name);
      const refused =
        secret &&
        passwordSecretRefusal(
          namespace,
          ref.name,
          passwordSecretFacts(secret),
          deps.state.view(namespace).relaySecrets ?? new Map<string, string>(),
        );
      if (refused) problems.push({ reason: "InvalidReference", message: refused });
      else problems.push(...passwordSecretProblems(namespace, ref, secret));
    } else if (credential.spec.type === "dkim") {
      // the private key's Secret key must exist (its value is the relay's to check: DKIM_KEY_INVALID)
      const ref = credential.spec.dkim!.privateKeySecretRef;
      problems.push(...passwordSecretProblems(namespace, ref, secretKeys(ref.name)));
    } else {
      secretName = credentialSecretName(credential);
      const existing = secretKeys(secretName);
      const foreign =
        credential.spec.issuerRef &&
        issuedSecretRefusal(
          namespace,
          { name, created: raw.metadata.creationTimestamp },
          secretName,
          existing && issuedSecretFacts(existing),
        );
      if (foreign) problems.push({ reason: "InvalidReference", message: foreign });
      else if (credential.spec.issuerRef) {
        try {
          await deps.client.apply(
            renderClientCertificate(
              { apiVersion: raw.apiVersion, kind: raw.kind, name, namespace, uid: raw.metadata.uid ?? "" },
              secretName,
              credential.spec.dnsNames ?? [],
              credential.spec.issuerRef,
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
        problems.push(
          ...tlsSecretProblems(namespace, secretName, credential.spec.usage, secretKeys(secretName)),
        );
      }
    }
  }
  const [ready, accepted] = credentialConditions(problems, generation);
  await writeStatus(deps, raw, { observedGeneration: generation, ...(secretName ? { secretName } : {}) }, [
    ready,
    accepted,
  ]);
}
