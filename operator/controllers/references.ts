// Which MailDomainPolicies, MailRelays and RelayCredentials name a Secret, ConfigMap or
// RelayCredential: what a change of that object requeues. Read from the raw cached specs (a spec the
// API schema rejects still names what it names). Pure.
import { policyReferences, relayIssuedSecrets } from "../compile/references.js";
import { names } from "../render/meta.js";
import type { CredentialObject, MailRelayObject, PolicyObject } from "../objects.js";
import type { ClusterState } from "../state.js";

export type ReferencedKind = "secrets" | "configMaps" | "credentials";

/** The policies whose spec (or a credential it uses) names `kind` `name`. */
export function policiesReferencing(
  policies: readonly PolicyObject[],
  credentials: readonly CredentialObject[],
  kind: ReferencedKind,
  name: string,
): PolicyObject[] {
  const creds = new Map(credentials.map((c) => [c.metadata.name, c]));
  return policies.filter((p) => {
    try {
      return policyReferences(p, creds)[kind].has(name);
    } catch {
      return false; // a spec too broken to read names nothing
    }
  });
}

/** The cached policies in `namespace` that name `kind` `name`. */
export function policiesNaming(
  state: ClusterState,
  namespace: string,
  kind: ReferencedKind,
  name: string,
): PolicyObject[] {
  const c = state.caches;
  return policiesReferencing(c.policies.list(namespace), c.credentials.list(namespace), kind, name);
}

/**
 * Whether a relay's own spec names `kind` `name`: its inbound credentials (and their password
 * Secrets), the recipients list of its local domains, its server certificate Secret, its fleet Secret.
 */
export function relayReferences(
  r: MailRelayObject,
  credentials: readonly CredentialObject[],
  kind: ReferencedKind,
  name: string,
): boolean {
  const spec = r.spec as {
    inbound?: {
      credentialRefs?: { name: string }[];
      localRecipients?: { configMapRef?: { name: string } };
    };
    certificate?: { secretRef?: { name: string }; issuerRef?: unknown };
    mtaSts?: unknown;
    dkim?: { credentialRef?: { name: string } }[];
  };
  // inbound accounts and DKIM keys (spec.dkim) are credentials of the relay
  const refs = [
    ...(spec.inbound?.credentialRefs ?? []),
    ...(spec.dkim ?? []).flatMap((d) => (d.credentialRef ? [d.credentialRef] : [])),
  ];
  if (kind === "credentials") return refs.some((c) => c.name === name);
  // the recipients list of the local domains (issue 15 finding 7)
  if (kind === "configMaps") return spec.inbound?.localRecipients?.configMapRef?.name === name;
  if (spec.certificate?.secretRef?.name === name) return true;
  if (names.fleetSecret(r.metadata.name) === name) return true;
  // the Secrets the operator creates for cert-manager to issue into (created, squatted or deleted:
  // compile/references.ts relayIssuedSecrets)
  if (
    spec.certificate &&
    relayIssuedSecrets({ ...r, spec: { ...spec, certificate: spec.certificate } }).some(
      (s) => s.name === name,
    )
  )
    return true;
  const creds = new Map(credentials.map((c) => [c.metadata.name, c]));
  return refs.some((ref) => {
    const c = creds.get(ref.name);
    return c !== undefined && credentialUsesSecret(c, name);
  });
}

/** Whether a credential uses Secret `name`: its password, its certificate (referenced or issued). */
export function credentialUsesSecret(c: CredentialObject, name: string): boolean {
  const s = c.spec as {
    passwordSecretRef?: { name: string };
    secretRef?: { name: string };
    dkim?: { privateKeySecretRef?: { name: string } };
  };
  return (
    s.passwordSecretRef?.name === name ||
    s.dkim?.privateKeySecretRef?.name === name ||
    s.secretRef?.name === name ||
    names.clientCertificateSecret(c.metadata.name) === name
  );
}
