// Which Secrets a password RelayCredential may never name, whoever wrote it (attack review, session
// 9). The relay sends a password credential's Secret key verbatim, as its SMTP AUTH password, to the
// next hops the credential's restrictTo allows, and the credential's author writes restrictTo: naming
// a Secret is sending its value. The chart's admission policy (<release>-references) holds each
// user to Secrets they may read; this is the floor without it, and against users who may read more
// than they should hand out: the relay's own secrets (its certificate's key, the fleet's handover key,
// its admin token), the DKIM keys and Secrets of kinds that hold keys or tokens, never a password, are refused
// whoever names them. Pure.
import type { MailRelay, RelayCredential } from "../api.js";
import { names } from "../render/meta.js";

/** Secret types a password may come from: Opaque (kubectl create secret generic) and basic-auth. */
export const PASSWORD_SECRET_TYPES: ReadonlySet<string> = new Set(["Opaque", "kubernetes.io/basic-auth"]);

/** What is known of a Secret for this decision. */
export interface PasswordSecretFacts {
  /** Secret type; absent means Opaque (the API server's default). */
  type?: string;
  /** Its controller owner is a sealpost.dev object (the fleet Secret). */
  sealpostOwned?: boolean;
}

/** The facts of a Secret as the informer holds it. */
export function passwordSecretFacts(secret: {
  type?: string;
  metadata: { ownerReferences?: readonly { apiVersion: string; controller?: boolean }[] };
}): PasswordSecretFacts {
  return {
    ...(secret.type ? { type: secret.type } : {}),
    sealpostOwned: (secret.metadata.ownerReferences ?? []).some(
      (o) => o.controller && o.apiVersion.startsWith("sealpost.dev/"),
    ),
  };
}

/**
 * The Secrets the namespace's MailRelays hold or name for themselves, and the DKIM keys its
 * credentials name (the organisation's signing keys): Secret name → what it is to whom. A password
 * file of more than one line (any PEM or armored key) is refused by the relay itself as well
 * (relay/config/load.ts).
 */
export function relayOwnSecrets(
  relays: readonly (MailRelay & { metadata: { name?: string } })[],
  credentials: Iterable<RelayCredential & { metadata: { name?: string } }> = [],
): Map<string, string> {
  const own = new Map<string, string>();
  for (const c of credentials) {
    const key = c.spec.type === "dkim" ? c.spec.dkim?.privateKeySecretRef.name : undefined;
    if (key) own.set(key, `RelayCredential ${c.metadata.name ?? ""}'s DKIM key`);
  }
  for (const r of relays) {
    const relay = r.metadata.name ?? "";
    own.set(
      r.spec.certificate.secretRef?.name ?? names.serverCertificateSecret(relay),
      `MailRelay ${relay}'s certificate`,
    );
    own.set(names.mtaStsCertificate(relay), `MailRelay ${relay}'s MTA-STS certificate`);
    own.set(names.fleetSecret(relay), `MailRelay ${relay}'s fleet key`);
    const token = r.spec.admin?.tokenSecretRef?.name;
    if (token) own.set(token, `MailRelay ${relay}'s admin token`);
  }
  return own;
}

/** Why a password credential may not take its password from this Secret, or undefined. */
export function passwordSecretRefusal(
  namespace: string,
  secretName: string,
  facts: PasswordSecretFacts,
  relaySecrets: ReadonlyMap<string, string>,
): string | undefined {
  const whose = relaySecrets.get(secretName);
  const what = whose
    ? `is ${whose}`
    : facts.sealpostOwned
      ? "belongs to the Sealpost operator"
      : !PASSWORD_SECRET_TYPES.has(facts.type ?? "Opaque")
        ? `is type ${facts.type}, which holds keys or tokens, not a password`
        : undefined;
  return what
    ? `passwordSecretRef: Secret ${namespace}/${secretName} ${what}; the relay would send its value as an AUTH password to the credential's restrictTo hosts, so a password credential never names it: put the password in a Secret of its own (type Opaque or kubernetes.io/basic-auth)`
    : undefined;
}
