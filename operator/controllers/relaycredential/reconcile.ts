// RelayCredential reconciler: checks the referenced Secret (keys, type), asks cert-manager for a client
// certificate when the credential names an issuer (into a Secret it creates first and records in the
// status: issuedSecretUID), and reports Accepted/Ready.
import { RelayCredential as CredentialSchema, type RelayCredentialStatus } from "../../api.js";
import { passwordSecretFacts, passwordSecretRefusal } from "../../compile/password-secret.js";
import { credentialSecretName, issuedSecretFacts, issuedSecretRefusal } from "../../compile/references.js";
import { certificateState, renderClientCertificate } from "../../render/certificate.js";
import type { Owner } from "../../render/meta.js";
import { renderClientCertificateSecret } from "../../render/secret.js";
import type { ReconcileResult } from "../../runtime/controller.js";
import { ApiError } from "../../runtime/kube.js";
import { splitKey } from "../../objects.js";
import type { ReconcilerDeps } from "../deps.js";
import { applyIfNeeded } from "../apply-if-needed.js";
import { adoptIssuedSecret } from "../issued-secret-adoption.js";
import { currentStatus, writeStatus } from "../status-write.js";
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
  // the Secret this process created for an issuerRef credential, as its last status write recorded it
  let issuedSecretUID = (currentStatus(deps, raw) as RelayCredentialStatus | undefined)?.issuedSecretUID;
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
      if (credential.spec.issuerRef) {
        const owner = {
          apiVersion: raw.apiVersion,
          kind: raw.kind,
          name,
          namespace,
          uid: raw.metadata.uid ?? "",
        };
        let found = existing && issuedSecretFacts(existing);
        // a Secret the operator did not create, none recorded: one cert-manager issued for this
        // credential's Certificate under a release before the operator created them (an upgrade) is
        // adopted on proof of that (compile/references.ts issuedSecretAdoption), anything else refused
        let notAdopted: string | undefined;
        if (found?.uid && issuedSecretUID === undefined) {
          const adoption = await adoptIssuedSecret(
            deps,
            raw,
            secretName,
            credential.spec.issuerRef,
            found.uid,
          );
          if ("uid" in adoption) {
            issuedSecretUID = adoption.uid;
            // recorded at once, as a Secret the operator creates is
            await writeStatus(
              deps,
              raw,
              { observedGeneration: generation, secretName, issuedSecretUID },
              credentialConditions(
                [
                  {
                    reason: "CertificateNotReady",
                    message: `Secret ${namespace}/${secretName} adopted, its Certificate not applied yet`,
                  },
                ],
                generation,
              ),
            );
          } else notAdopted = adoption.refused;
        }
        if (!found) {
          // the Secret the Certificate is issued into is the operator's own, made before the Certificate
          const uid = await createIssuedSecret(deps, owner);
          if (uid) {
            found = { uid: (issuedSecretUID = uid), certificate: false };
            // recorded at once: a Certificate apply that fails (refused, the apiserver away) must not
            // leave the operator's own Secret unrecorded, which the next reconcile would refuse
            await writeStatus(
              deps,
              raw,
              { observedGeneration: generation, secretName, issuedSecretUID },
              credentialConditions(
                [
                  {
                    reason: "CertificateNotReady",
                    message: `Secret ${namespace}/${secretName} created, its Certificate not applied yet`,
                  },
                ],
                generation,
              ),
            );
          }
        }
        const foreign = found && issuedSecretRefusal(namespace, { name, issuedSecretUID }, secretName, found);
        if (foreign)
          problems.push({
            reason: "InvalidReference",
            message: notAdopted ? `${foreign}; not adopted: ${notAdopted}` : foreign,
          });
        else if (!found)
          // created by someone else since the cache was read: its add event queues this credential again
          problems.push({
            reason: "CertificateNotReady",
            message: `Secret ${namespace}/${secretName} exists but is not in the operator's cache yet`,
          });
        else {
          try {
            await applyIfNeeded(
              deps,
              renderClientCertificate(
                owner,
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
        }
      } else {
        problems.push(...tlsSecretProblems(namespace, secretName, credential.spec.usage, existing));
      }
    }
  }
  const [ready, accepted] = credentialConditions(problems, generation);
  await writeStatus(
    deps,
    raw,
    {
      observedGeneration: generation,
      ...(secretName ? { secretName } : {}),
      ...(issuedSecretUID ? { issuedSecretUID } : {}),
    },
    [ready, accepted],
  );
}

/**
 * Creates the empty Secret an issuerRef credential's Certificate is issued into (render/secret.ts);
 * returns its uid, or undefined when one of that name exists already (the cache was behind: whose it
 * is gets decided once the cache has it). Never rewrites a Secret.
 */
async function createIssuedSecret(deps: ReconcilerDeps, owner: Owner): Promise<string | undefined> {
  try {
    const created = await deps.client.create(renderClientCertificateSecret(owner));
    deps.log.info(
      { credential: `${owner.namespace}/${owner.name}`, secret: created.metadata.name },
      "issued Secret created",
    );
    return created.metadata.uid;
  } catch (e) {
    if (e instanceof ApiError && e.code === 409) return undefined;
    throw e;
  }
}
