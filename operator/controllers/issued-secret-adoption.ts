// The I/O of adopting a Secret cert-manager issued for the operator's own Certificate under a release
// before the operator created these Secrets itself (compile/references.ts issuedSecretAdoption decides).
// Only on that rare path: a Secret at the name, no uid recorded. The CertificateRequests are listed
// once, directly (no cache: nothing else reads them), and the Secret read from the apiserver for its
// tls.key, which is compared and dropped here, never kept (state.ts dropSecretValues).
import type { IssuerRef } from "../api.js";
import {
  CERTIFICATE_NAME_ANNOTATION,
  certificateRequestFacts,
  issuedSecretAdoption,
} from "../compile/references.js";
import { issuer } from "../render/certificate.js";
import { ApiError, R, type KubeObject } from "../runtime/kube.js";
import type { ReconcilerDeps } from "./deps.js";

/** The Secret's uid to record as the owner's own, or why it is not adopted. */
export type Adoption = { uid: string } | { refused: string };

/**
 * Gathers the facts issuedSecretAdoption decides on for the Secret `name` (the Certificate's name
 * too) of `regarding` (the credential or relay), whose Certificate names `ref`; adopted, says so in an
 * Event on it. `cachedUid`: the Secret's uid as the cache holds it; the Secret read now must be it.
 * Runs on every reconcile of an owner whose Secret is refused with no uid recorded (one list in the
 * namespace when the owner's Certificate exists, nothing read otherwise).
 */
export async function adoptIssuedSecret(
  deps: ReconcilerDeps,
  regarding: KubeObject,
  name: string,
  ref: IssuerRef,
  cachedUid: string,
): Promise<Adoption> {
  const namespace = regarding.metadata.namespace ?? "";
  const owner = {
    kind: regarding.kind ?? "",
    name: regarding.metadata.name,
    uid: regarding.metadata.uid ?? "",
  };
  const cert = deps.state.caches.certificates.get(namespace, name);
  const controllerUid = cert?.metadata.ownerReferences?.find((o) => o.controller)?.uid;
  const certificate = cert && {
    ...(cert.metadata.uid ? { uid: cert.metadata.uid } : {}),
    ...(controllerUid ? { controllerUid } : {}),
  };
  // nothing to read when no Certificate of the owner's can have issued it (a squat before any)
  if (!certificate?.uid || certificate.controllerUid !== owner.uid)
    return {
      refused:
        issuedSecretAdoption({
          certificateName: name,
          ownerUid: owner.uid,
          certificate,
          issuerRef: issuer(ref),
          secret: {},
          requests: [],
        }) ?? "no Certificate",
    };
  let requests: KubeObject[];
  let secret: (KubeObject & { data?: Record<string, string> }) | undefined;
  try {
    requests = (await deps.client.list(R.CertificateRequest, namespace)).items.filter(
      (r) => r.metadata.annotations?.[CERTIFICATE_NAME_ANNOTATION] === name,
    );
    secret = await deps.client.find(R.Secret, namespace, name);
  } catch (e) {
    // no CertificateRequest API, or not allowed to list them here (a Role per namespace without it)
    if (e instanceof ApiError && (e.code === 404 || e.code === 403))
      return { refused: `its CertificateRequests could not be read (${e.code})` };
    throw e;
  }
  if (!secret || secret.metadata.uid !== cachedUid)
    return { refused: "the Secret changed since the cache was read" };
  const refused = issuedSecretAdoption({
    certificateName: name,
    ownerUid: owner.uid,
    certificate,
    issuerRef: issuer(ref),
    secret: { tlsCrt: secret.data?.["tls.crt"], tlsKey: secret.data?.["tls.key"] },
    requests: requests.map(certificateRequestFacts),
  });
  if (refused) return { refused };
  const note = `Secret ${namespace}/${name} adopted: cert-manager issued it for the operator's Certificate ${name}`;
  deps.log.info({ [owner.kind]: `${namespace}/${owner.name}`, secret: name }, note);
  await deps.events.record(regarding, {
    type: "Normal",
    reason: "IssuedSecretAdopted",
    action: "Adopt",
    note,
  });
  return { uid: cachedUid };
}
