// The Secrets the operator creates (never rewrites). The fleet Secret `<relay>-fleet`: the relays' own
// key for the queue handover (AUTH credential and MAC, relay/queue/handover.ts), separate from the
// admin token; created once (the key comes from the reconciler: rendering stays pure); deleting it
// rotates the key. A RelayCredential's issued Secret `<credential>-client-tls`, and a MailRelay's
// `<relay>-tls` and `<relay>-mta-sts` (issuerRef): created empty before the Certificate that
// cert-manager issues into it, so that the Secret used is one the operator made (its uid recorded in
// the owner's status; compile/references.ts issuedSecretRefusal).
import type { KubeObject } from "../runtime/kube.js";
import {
  CREDENTIAL_LABEL,
  FLEET_SECRET_KEY,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  names,
  objectMeta,
  ownerReference,
  relayLabels,
  type Owner,
} from "./meta.js";

export function renderFleetSecret(owner: Owner, key: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: objectMeta(owner, names.fleetSecret(owner.name), relayLabels(owner.name)),
    type: "Opaque",
    data: { [FLEET_SECRET_KEY]: Buffer.from(key).toString("base64") },
  };
}

/**
 * The empty kubernetes.io/tls Secret a cert-manager Certificate is issued into (cert-manager issues
 * when tls.key or tls.crt is empty, and applies its data, labels and annotations over what is there,
 * keeping the uid). Owned by the credential or relay, so it goes with it; the owner reference is not
 * the controller one: cert-manager run with --enable-certificate-owner-ref adds the Certificate as
 * the Secret's controller, and an object has at most one.
 */
function renderIssuedSecret(owner: Owner, name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace: owner.namespace,
      labels,
      ownerReferences: [{ ...ownerReference(owner), controller: false }],
    },
    type: "kubernetes.io/tls",
    data: { "tls.crt": "", "tls.key": "" },
  };
}

/** A RelayCredential's issued Secret `<credential>-client-tls`. */
export function renderClientCertificateSecret(owner: Owner): KubeObject {
  return renderIssuedSecret(owner, names.clientCertificateSecret(owner.name), {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [CREDENTIAL_LABEL]: owner.name,
  });
}

/**
 * A MailRelay's issued Secret: `<relay>-tls` (server certificate) or `<relay>-mta-sts` (the MTA-STS
 * endpoint's), labelled as the Certificate's secretTemplate labels it (render/certificate.ts).
 */
export function renderRelayIssuedSecret(owner: Owner, name: string): KubeObject {
  return renderIssuedSecret(owner, name, relayLabels(owner.name));
}
