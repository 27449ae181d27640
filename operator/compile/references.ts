// A policy's (or a relay's) references to Secrets, ConfigMaps and RelayCredentials, resolved against
// what the namespace holds (ClusterView): every reference becomes a file path in the relay's config
// directory, or a problem (MissingReference, InvalidReference) that leaves the policy out; and, the
// other way round, which objects a policy names (policyReferences: what requeues it). Pure.
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { Credential } from "../../relay/contract/config.js";
import { canonicalPattern } from "../../relay/contract/domains.js";
import type { MailDomainPolicy, RelayCredential } from "../api.js";
import { MANAGED_BY, MANAGED_BY_LABEL, names } from "../render/meta.js";
import { CATCH_ALL } from "./domain-claims.js";
import { passwordSecretRefusal } from "./password-secret.js";
import type { PolicyProblem } from "./problems.js";

/** What the cluster holds that policies may reference, by name, in the relay's namespace. */
export interface ClusterView {
  credentials: ReadonlyMap<string, RelayCredential>;
  /** Secret name → its type and data keys. */
  secrets: ReadonlyMap<string, SecretInfo>;
  /** ConfigMap name → its data keys. */
  configMaps: ReadonlyMap<string, ReadonlySet<string>>;
  /** The relays' Services: name → the addresses that reach it (compile/self-addresses.ts). */
  services: ReadonlyMap<string, ServiceInfo>;
  /** The Secrets the relays hold or name for themselves (password-secret.ts relayOwnSecrets). */
  relaySecrets?: ReadonlyMap<string, string>;
}

export interface SecretInfo {
  type?: string;
  keys: ReadonlySet<string>;
  /** uid of the object its controller ownerReference names (data its creator writes: see operatorLabelled). */
  controllerUid?: string;
  /**
   * It carries the operator's label app.kubernetes.io/managed-by=sealpost-operator, which the chart's
   * admission policy (<release>-managed-objects) lets nobody else create or add: with the controller
   * uid, what tells the fleet Secret the operator created from one a tenant planted (ownFleetSecret).
   */
  operatorLabelled?: boolean;
  /** Its controller owner is a sealpost.dev object (password-secret.ts). */
  sealpostOwned?: boolean;
  /** Its uid (issuedSecretRefusal: only the Secret the operator created for its owner is used). */
  uid?: string;
  /** A kubernetes.io/tls Secret whose tls.crt is not empty: cert-manager has issued into it. */
  certificate?: boolean;
}

/**
 * Whether a relay's fleet Secret `<relay>-fleet` is the one the operator created for it: its
 * controller ownerReference names the relay's uid, and it carries the operator's managed-by label. An
 * ownerReference alone is data its creator writes: a tenant who may create Secrets and read the
 * MailRelay (its uid) planted one, unlabelled, before the relay had an admin token (only then does the
 * operator create its own), and its key became the fleet's login on port 25
 * (test/integration/attack-planted-fleet-secret.test.ts). The label is the chart's admission policy's
 * to guard (<release>-managed-objects: only the operator creates or adds it), as it guards the Secret's
 * data against being rewritten. Pure.
 */
export function ownFleetSecret(
  info: Pick<SecretInfo, "controllerUid" | "operatorLabelled"> | undefined,
  relayUid: string | undefined,
): boolean {
  return !!relayUid && info?.controllerUid === relayUid && info.operatorLabelled === true;
}

/** Whether an object carries the operator's label app.kubernetes.io/managed-by=sealpost-operator. Pure. */
export function operatorLabelled(o: { metadata: { labels?: Record<string, string> } }): boolean {
  return o.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
}

/**
 * What issuedSecretRefusal and the compile read of a Secret: its uid, and whether it holds a
 * certificate (the cache keeps a kubernetes.io/tls Secret's tls.crt, state.ts dropSecretValues).
 */
export function issuedSecretFacts(secret: {
  metadata: { uid?: string };
  type?: string;
  data?: Record<string, string>;
}): { uid?: string; certificate: boolean } {
  const uid = secret.metadata.uid;
  const certificate = secret.type === "kubernetes.io/tls" && !!secret.data?.["tls.crt"];
  return { ...(uid ? { uid } : {}), certificate };
}

/**
 * Why the Secret an issuerRef credential, or a MailRelay whose certificate cert-manager issues, would
 * use is not its own, or undefined: the one rule for every Secret the operator creates empty for
 * cert-manager to issue into (a credential's `<credential>-client-tls`, a relay's `<relay>-tls` and
 * `<relay>-mta-sts`). The name is derived, not written in the spec, so the chart's admission rule (get
 * on every Secret a spec names) never saw it: a tenant naming a credential `billing` made the relay
 * present, or sign with, another application's `billing-client-tls` key (attack review, session 12),
 * and its Certificate would have overwritten that Secret. Nor does anything a Secret's creator
 * writes tell whose it is: a label naming the credential and a creation time after it are also what
 * a tenant who may create Secrets writes between the credential's creation and cert-manager's
 * issuance (attack review, session 13), and a Secret left by a deleted owner of the same name
 * carries them too. cert-manager does not tell either: it issues into an existing Secret only when
 * one of its trigger policies fails, and a certificate for the Certificate's own names with a key
 * of the spec's algorithm and size (and the issuer annotations, which anyone may write) fails none,
 * so it keeps the tenant's key and reports the Certificate Ready
 * (test/integration/attack-squatted-relay-secret.test.ts). So the operator creates the Secret itself,
 * empty, before it applies the Certificate, and records its uid in the owner's status
 * (`statusField`: a credential's status.issuedSecretUID, controllers/relaycredential/reconcile.ts; a
 * relay's status.issuedSecretUIDs, controllers/mailrelay/reconcile.ts): only the Secret of that uid is
 * the owner's. `found`: the Secret, when it exists (none: the operator creates it). Pure.
 */
export function issuedSecretRefusal(
  ns: string,
  owner: {
    /** Default RelayCredential. */
    kind?: "RelayCredential" | "MailRelay";
    name: string;
    issuedSecretUID?: string;
    /** Where the owner's status records the uid (default status.issuedSecretUID). */
    statusField?: string;
  },
  secret: string,
  found: { uid?: string } | undefined,
): string | undefined {
  if (!found) return undefined;
  const { name, issuedSecretUID: recorded } = owner;
  if (recorded !== undefined && found.uid === recorded) return undefined;
  const kind = owner.kind ?? "RelayCredential";
  const field = owner.statusField ?? "status.issuedSecretUID";
  const fix =
    kind === "RelayCredential"
      ? `delete it so the operator creates its own (cert-manager then issues into it), or rename the RelayCredential`
      : `delete it so the operator creates its own (cert-manager then issues into it)`;
  const whose = kind === "RelayCredential" ? "credential" : "relay";
  return recorded === undefined
    ? `Secret ${ns}/${secret} exists and was not created by the operator for ${kind} ${ns}/${name} (another application's, one created by someone else, or one left by a deleted ${whose} of that name): it is never used or overwritten; ${fix}`
    : `Secret ${ns}/${secret} was not created by the operator for ${kind} ${ns}/${name}: it has uid ${found.uid ?? "(none)"}, ${field} records ${recorded} (the operator's Secret was deleted and this one created by someone else): it is never used or overwritten; ${fix}`;
}

/** cert-manager's annotation on a CertificateRequest naming the Certificate it was created for. */
export const CERTIFICATE_NAME_ANNOTATION = "cert-manager.io/certificate-name";

/** An issuerRef as cert-manager compares it (kind and group defaulted). */
export interface IssuerRefFacts {
  name: string;
  kind?: string;
  group?: string;
}

/** What issuedSecretAdoption reads of a cert-manager CertificateRequest (certificateRequestFacts). */
export interface CertificateRequestFacts {
  name: string;
  /** Its cert-manager.io/certificate-name annotation. */
  certificateName?: string;
  /** The uids its controller ownerReferences of kind Certificate name. */
  certificateOwnerUids: string[];
  issuerRef?: IssuerRefFacts;
  approved: boolean;
  denied: boolean;
  ready: boolean;
  /** status.certificate: base64 of the PEM cert-manager wrote into the Secret's tls.crt. */
  certificate?: string;
}

/** The facts of a CertificateRequest as the apiserver returns it. Pure. */
export function certificateRequestFacts(cr: {
  metadata: {
    name?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { kind?: string; uid?: string; controller?: boolean }[];
  };
  spec?: unknown;
  status?: unknown;
}): CertificateRequestFacts {
  const spec = (cr.spec ?? {}) as { issuerRef?: IssuerRefFacts };
  const status = (cr.status ?? {}) as {
    certificate?: string;
    conditions?: { type?: string; status?: string }[];
  };
  const is = (type: string) =>
    status.conditions?.some((c) => c.type === type && c.status === "True") ?? false;
  const certificateName = cr.metadata.annotations?.[CERTIFICATE_NAME_ANNOTATION];
  return {
    name: cr.metadata.name ?? "",
    ...(certificateName !== undefined ? { certificateName } : {}),
    certificateOwnerUids: (cr.metadata.ownerReferences ?? [])
      .filter((o) => o.controller && o.kind === "Certificate" && o.uid)
      .map((o) => o.uid!),
    ...(spec.issuerRef ? { issuerRef: spec.issuerRef } : {}),
    approved: is("Approved"),
    denied: is("Denied"),
    ready: is("Ready"),
    ...(status.certificate ? { certificate: status.certificate } : {}),
  };
}

/** What issuedSecretAdoption decides on: the facts the reconciler gathered, once, on that rare path. */
export interface AdoptionFacts {
  /** The Certificate (and the Secret) name. */
  certificateName: string;
  /** The credential's or relay's uid. */
  ownerUid: string;
  /** The operator's Certificate of that name as the cache holds it: its uid and controller owner's. */
  certificate: { uid?: string; controllerUid?: string } | undefined;
  /** The issuer the Certificate the operator applies names (render/certificate.ts, defaults filled). */
  issuerRef: IssuerRefFacts;
  /** The Secret at the name, read from the apiserver (base64 values, as in its data). */
  secret: { tlsCrt?: string; tlsKey?: string };
  /** The CertificateRequests of the namespace annotated with that certificate name. */
  requests: CertificateRequestFacts[];
}

const sameIssuer = (a: IssuerRefFacts | undefined, b: IssuerRefFacts): boolean =>
  !!a &&
  a.name === b.name &&
  (a.kind || "Issuer") === (b.kind || "Issuer") &&
  (a.group || "cert-manager.io") === (b.group || "cert-manager.io");

/** The first certificate of a base64-encoded PEM bundle (the leaf cert-manager puts first), or undefined. */
function leafOf(b64: string | undefined): X509Certificate | undefined {
  if (!b64) return undefined;
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
    Buffer.from(b64, "base64").toString("latin1"),
  )?.[0];
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/**
 * Whether the operator may adopt a Secret it did not create (no uid recorded: one cert-manager issued
 * under a release before the operator created these Secrets itself), or why not: undefined to adopt.
 * Beside issuedSecretRefusal, the one exception to it. The evidence must be something a tenant who may
 * create Secrets cannot write: a CertificateRequest owned by the operator's own Certificate of that
 * name (itself controller-owned by the credential or relay, uid checked), approved and issued (Ready)
 * by the issuer the operator's Certificate names, whose status.certificate has the same leaf as the
 * Secret's tls.crt; and the Secret's tls.key is that certificate's key. cert-manager (v1.21.2,
 * certificates/requestmanager) creates each CertificateRequest with that controller ownerReference
 * and the annotations cert-manager.io/certificate-name and certificate-revision, and writes its
 * status.certificate into the Secret's tls.crt as it is (certificates/issuing); its revision manager
 * keeps the newest revisionHistoryLimit (default 1) of them once the Certificate is Ready, so the one
 * whose certificate the Secret holds is there. A squatted Secret has none: cert-manager keeps a
 * crafted Secret that matches the spec without issuing (attack-squatted-relay-secret).
 *
 * What remains: an ownerReference is data its creator writes, and the apiserver checks neither the
 * owner's existence nor who wrote it. A tenant who may also create CertificateRequests can write one
 * owned by the operator's Certificate; it is used here only when the named issuer approved and signed
 * it, so that tenant holds a certificate that issuer signed for a key of theirs, which they could
 * obtain without the operator. The requester's identity (spec.username, set by cert-manager's webhook
 * from the creator, not forgeable) would close even that, but which identity cert-manager's
 * controller runs as is the installation's and no webhook runs in some clusters: not checked. Pure.
 */
export function issuedSecretAdoption(facts: AdoptionFacts): string | undefined {
  const { certificate, certificateName } = facts;
  if (!certificate?.uid) return `no Certificate ${certificateName} to prove cert-manager issued it`;
  if (certificate.controllerUid !== facts.ownerUid)
    return `Certificate ${certificateName} is not the operator's (its controller is not this owner)`;
  const leaf = leafOf(facts.secret.tlsCrt);
  if (!leaf) return "its tls.crt holds no certificate";
  const issuedFor = facts.requests.filter(
    (r) => r.certificateName === certificateName && r.certificateOwnerUids.includes(certificate.uid!),
  );
  if (!issuedFor.length)
    return `no CertificateRequest of the operator's Certificate ${certificateName} (cert-manager never issued into it)`;
  const issued = issuedFor.filter((r) => leafOf(r.certificate)?.raw.equals(leaf.raw));
  if (!issued.length)
    return `no CertificateRequest of Certificate ${certificateName} holds its certificate (serial ${leaf.serialNumber})`;
  const signed = issued.find(
    (r) => r.approved && !r.denied && r.ready && sameIssuer(r.issuerRef, facts.issuerRef),
  );
  if (!signed)
    return `CertificateRequest ${issued[0]!.name} is not approved and issued by ${facts.issuerRef.kind ?? "Issuer"} ${facts.issuerRef.name}`;
  return keyMatches(leaf, facts.secret.tlsKey) ? undefined : "its tls.key is not the key of its certificate";
}

/** Whether a base64 PEM private key is the key of `leaf` (false when it does not parse). */
function keyMatches(leaf: X509Certificate, tlsKey: string | undefined): boolean {
  if (!tlsKey) return false;
  try {
    return leaf.checkPrivateKey(createPrivateKey(Buffer.from(tlsKey, "base64")));
  } catch {
    return false;
  }
}

/** The Secrets a MailRelay's cert-manager Certificates are issued into, which the operator creates. */
export type RelayIssuedSecret = "server" | "mtaSts";

/**
 * The Secrets the operator creates for a relay (issuerRef): `<relay>-tls` for the server
 * certificate, and `<relay>-mta-sts` with spec.mtaSts (which needs issuerRef). Their uids are in
 * status.issuedSecretUIDs under these keys.
 */
export function relayIssuedSecrets(relay: {
  metadata: { name?: string };
  spec: { certificate: { issuerRef?: unknown }; mtaSts?: unknown };
}): { role: RelayIssuedSecret; name: string }[] {
  if (!relay.spec.certificate.issuerRef) return [];
  const r = relay.metadata.name ?? "";
  return [
    { role: "server", name: names.serverCertificateSecret(r) },
    ...(relay.spec.mtaSts ? [{ role: "mtaSts" as const, name: names.mtaStsCertificate(r) }] : []),
  ];
}

/** issuedSecretRefusal for one of a relay's issued Secrets (`recorded`: status.issuedSecretUIDs). */
export function relayIssuedSecretRefusal(
  ns: string,
  relay: string,
  role: RelayIssuedSecret,
  secret: string,
  recorded: Partial<Record<RelayIssuedSecret, string>> | undefined,
  found: { uid?: string } | undefined,
): string | undefined {
  return issuedSecretRefusal(
    ns,
    {
      kind: "MailRelay",
      name: relay,
      issuedSecretUID: recorded?.[role],
      statusField: `status.issuedSecretUIDs.${role}`,
    },
    secret,
    found,
  );
}

export const secretPath = (secret: string, key: string): string => `secrets/${secret}/${key}`;
export const configMapPath = (cm: string, key: string): string => `configmaps/${cm}/${key}`;

/** Resolves references for one policy (or the relay), collecting the problems and what it mounts. */
export class Refs {
  readonly problems: PolicyProblem[] = [];
  /** Secret/ConfigMap name → key → path. */
  readonly secrets = new Map<string, Map<string, string>>();
  readonly configMaps = new Map<string, Map<string, string>>();
  readonly credentials = new Map<string, Credential>();

  constructor(
    private readonly ns: string,
    private readonly view: ClusterView,
  ) {}

  missing(message: string): void {
    this.problems.push({ reason: "MissingReference", message });
  }
  invalid(message: string): void {
    this.problems.push({ reason: "InvalidReference", message });
  }

  secretKey(name: string, key: string): string | undefined {
    const keys = this.view.secrets.get(name)?.keys;
    if (!keys) return (this.missing(`Secret ${this.ns}/${name} not found`), undefined);
    if (!keys.has(key)) return (this.missing(`Secret ${this.ns}/${name} key "${key}" not found`), undefined);
    const path = secretPath(name, key);
    const m = this.secrets.get(name) ?? new Map<string, string>();
    m.set(key, path);
    this.secrets.set(name, m);
    return path;
  }

  /** Every key ending in .crt or .pem of a Secret or ConfigMap (sorted): S/MIME recipient certificates. */
  pemKeys(kind: "Secret" | "ConfigMap", name: string): string[] | undefined {
    return this.keysEnding(kind, name, [".crt", ".pem"]);
  }

  /** Every key of a Secret or ConfigMap ending in one of `suffixes` (sorted), e.g. keyrings. */
  keysEnding(kind: "Secret" | "ConfigMap", name: string, suffixes: readonly string[]): string[] | undefined {
    const keys = kind === "Secret" ? this.view.secrets.get(name)?.keys : this.view.configMaps.get(name);
    if (!keys) return (this.missing(`${kind} ${this.ns}/${name} not found`), undefined);
    const found = [...keys].filter((k) => suffixes.some((s) => k.endsWith(s))).sort();
    if (!found.length)
      return (
        this.missing(`${kind} ${this.ns}/${name} has no key ending in ${suffixes.join(" or ")}`),
        undefined
      );
    return found.map((k) => (kind === "Secret" ? this.secretKey(name, k) : this.configMapKey(name, k))!);
  }

  configMapKey(name: string, key: string): string | undefined {
    const keys = this.view.configMaps.get(name);
    if (!keys) return (this.missing(`ConfigMap ${this.ns}/${name} not found`), undefined);
    if (!keys.has(key))
      return (this.missing(`ConfigMap ${this.ns}/${name} key "${key}" not found`), undefined);
    const path = configMapPath(name, key);
    const m = this.configMaps.get(name) ?? new Map<string, string>();
    m.set(key, path);
    this.configMaps.set(name, m);
    return path;
  }

  /**
   * A RelayCredential of one of the given types and the usage, compiled; its name, or undefined
   * (problem noted). `where`: the domains and next hop of the policy that sends it (restrictTo); for an
   * inbound login, given when a policy names it, so it is a partner's (partnerLoginProblem, which
   * needs no domains: the relay decides its senders).
   */
  credential(
    name: string,
    types: Credential["type"][],
    usage: Credential["usage"],
    role: string,
    where?: { domains: readonly string[]; nextHop?: string },
  ): string | undefined {
    const c = this.view.credentials.get(name);
    if (!c) return (this.missing(`RelayCredential ${this.ns}/${name} not found`), undefined);
    if (!(types as string[]).includes(c.spec.type) || c.spec.usage !== usage) {
      this.invalid(
        `RelayCredential ${this.ns}/${name} is type ${c.spec.type} usage ${c.spec.usage}; ${role} needs type ${types.join(" or ")} usage ${usage}`,
      );
      return undefined;
    }
    const outside = where
      ? usage === "inbound"
        ? partnerLoginProblem(c)
        : credentialScopeProblem(c, where.domains, where.nextHop)
      : undefined;
    if (outside) {
      this.invalid(`RelayCredential ${this.ns}/${name} (${role}): ${outside}`);
      return undefined;
    }
    const compiled = compileCredential(c, this);
    if (compiled) this.credentials.set(name, compiled);
    return compiled ? name : undefined;
  }

  /** Why a password credential may not name this Secret (password-secret.ts), or undefined. */
  passwordSecretRefusal(name: string): string | undefined {
    const info = this.view.secrets.get(name);
    return info
      ? passwordSecretRefusal(this.ns, name, info, this.view.relaySecrets ?? new Map<string, string>())
      : undefined;
  }

  secretType(name: string): string | undefined {
    return this.view.secrets.get(name)?.type;
  }

  secretInfo(name: string): SecretInfo | undefined {
    return this.view.secrets.get(name);
  }

  get namespace(): string {
    return this.ns;
  }
}

/** Whether a policy domain pattern lies within an allowed pattern (exact, or under its *.domain). Pure. */
function covered(pattern: string, allowed: string): boolean {
  const p = pattern.toLowerCase();
  const a = allowed.toLowerCase();
  if (p === a) return true;
  return a.startsWith("*.") && p !== CATCH_ALL && p.endsWith(a.slice(1));
}

/**
 * Why an inbound login may not be a partner's (named by a policy's inbound.credentialRef), or
 * undefined. Pure. A partner sends to the relay's local domains (docs/operations.md, "Who may send
 * what"); allowRelay is the relay-wide accounts' (the MailRelay's spec.inbound.credentialRefs, its
 * administrator's). Whoever may write a credential and a policy naming it would otherwise grant their
 * own login relaying to any domain (attack review, session 9). Its senderDomains need no check here:
 * the relay lets a partner's login send only as domains it routes by a policy naming the login, and
 * senderDomains only narrow those (relay/inbound/authority.ts); per policy they would refuse a login
 * that an exception subdomain's policy names beside its parent's (sixth review).
 */
export function partnerLoginProblem(c: RelayCredential): string | undefined {
  if (c.spec.allowRelay)
    return "allowRelay lets a login send to any domain, which a partner's login (one a MailDomainPolicy's inbound.credentialRef names) may not: name a login of the partner's own here, without allowRelay (a login that relays is a relay-wide account: the MailRelay's spec.inbound.credentialRefs, never a policy's)";
  return undefined;
}

/**
 * Why a credential may not be used by a policy with these domains and next hop (its
 * spec.restrictTo, finding 5 of issue 14), or undefined. Pure. A password without restrictTo is
 * never sent (attack review of issue 17, 3c): whoever may write a MailDomainPolicy in the namespace
 * could otherwise name any server of theirs as nextHop and receive it; for the same reason a policy
 * with its own nextHop may use a password only if restrictTo.nextHops lists that host or the host lies
 * within restrictTo.domains (security review: a covered domain's policy could name any server). A client certificate
 * proves possession of its key and gives none away, so it may go unrestricted.
 */
export function credentialScopeProblem(
  c: RelayCredential,
  domains: readonly string[],
  nextHop: string | undefined,
): string | undefined {
  const r = c.spec.restrictTo;
  if (!r?.domains && !r?.nextHops)
    return c.spec.type === "password"
      ? "a password credential without spec.restrictTo is sent nowhere, since any policy in the namespace could send it to a server of its own: add restrictTo.domains (the recipient domains it is for) and/or restrictTo.nextHops (the servers it may go to) to the RelayCredential"
      : undefined;
  if (!r) return undefined;
  if (r.domains) {
    const out = domains.filter((d) => !r.domains!.some((a) => covered(d, a)));
    if (out.length)
      return `restrictTo.domains (${r.domains.join(", ")}) does not cover ${out.join(", ")}: remove those domains from the policy or add them to the credential's restrictTo.domains`;
  }
  // a policy that names its own next hop decides where the password goes: restrictTo.domains alone
  // would let whoever may write a policy for a covered domain (an unclaimed subdomain under a
  // wildcard) point it at a server of theirs (security review), so the host must be listed in
  // restrictTo.nextHops or itself lie within restrictTo.domains (a host in the partner's own DNS)
  if (
    c.spec.type === "password" &&
    nextHop &&
    !r.nextHops &&
    !(r.domains ?? []).some((allowed) => covered(nextHop.replace(/\.$/, ""), allowed))
  )
    return `the policy sets outbound.nextHop ${nextHop}, which is outside restrictTo.domains (${(r.domains ?? []).join(", ")}), and a password credential goes to a next hop only within those domains or listed in restrictTo.nextHops: add ${nextHop} to the RelayCredential's restrictTo.nextHops, or remove outbound.nextHop from the policy to deliver to the domain's MX hosts`;
  if (r.nextHops) {
    if (!nextHop)
      return `restrictTo.nextHops (${r.nextHops.join(", ")}) allows only those servers, but the policy delivers to the domain's MX hosts: set outbound.nextHop to one of them`;
    if (!r.nextHops.some((h) => h.toLowerCase() === nextHop.toLowerCase()))
      return `restrictTo.nextHops (${r.nextHops.join(", ")}) does not include the policy's nextHop ${nextHop}`;
  }
  return undefined;
}

/** The kubernetes.io/tls Secret a clientCertificate credential uses: referenced, or issued by cert-manager. */
export function credentialSecretName(c: RelayCredential): string {
  return c.spec.secretRef?.name ?? names.clientCertificateSecret(c.metadata.name ?? "");
}

function compileCredential(credential: RelayCredential, refs: Refs): Credential | undefined {
  const name = `${refs.namespace}/${credential.metadata.name}`;
  if (credential.spec.type === "password") {
    if (!credential.spec.username || !credential.spec.passwordSecretRef) {
      refs.invalid(`RelayCredential ${name} of type password needs username and passwordSecretRef`);
      return undefined;
    }
    const refused = refs.passwordSecretRefusal(credential.spec.passwordSecretRef.name);
    if (refused) {
      refs.invalid(`RelayCredential ${name}: ${refused}`);
      return undefined;
    }
    const file = refs.secretKey(
      credential.spec.passwordSecretRef.name,
      credential.spec.passwordSecretRef.key,
    );
    return file
      ? {
          type: "password",
          usage: credential.spec.usage,
          username: credential.spec.username,
          passwordFile: file,
          // what a client logged in with it may do (relay/inbound/authority.ts)
          ...(credential.spec.usage === "inbound" && credential.spec.allowRelay ? { allowRelay: true } : {}),
          ...(credential.spec.usage === "inbound" && credential.spec.senderDomains
            ? { senderDomains: credential.spec.senderDomains.flatMap((p) => canonicalPattern(p) ?? []) }
            : {}),
        }
      : undefined;
  }
  if (credential.spec.type === "dkim") return undefined; // a key the relay signs with (dkim.ts), no login
  const secret = credentialSecretName(credential);
  if (!credential.spec.secretRef) {
    const found = refs.secretInfo(secret);
    // the operator's own Secret is empty until cert-manager issues: nothing to use yet, whoever's it is
    if (found && !found.certificate) {
      refs.missing(`Secret ${refs.namespace}/${secret} of RelayCredential ${name} not issued yet`);
      return undefined;
    }
    const foreign = issuedSecretRefusal(
      refs.namespace,
      {
        name: credential.metadata.name ?? "",
        issuedSecretUID: credential.status?.issuedSecretUID,
      },
      secret,
      found,
    );
    if (foreign) {
      refs.invalid(foreign);
      return undefined;
    }
  }
  if (credential.spec.secretRef) {
    const secretType = refs.secretType(secret);
    if (secretType !== undefined && secretType !== "kubernetes.io/tls") {
      refs.invalid(
        `Secret ${refs.namespace}/${secret} of RelayCredential ${name} is type ${secretType}, not kubernetes.io/tls`,
      );
      return undefined;
    }
  }
  const certFile = refs.secretKey(secret, "tls.crt");
  const keyFile = refs.secretKey(secret, "tls.key");
  return certFile && keyFile
    ? { type: "clientCertificate", usage: credential.spec.usage, certFile, keyFile }
    : undefined;
}

/** The references of one policy, for mapping Secret/ConfigMap/RelayCredential events back to it. Pure. */
export function policyReferences(
  p: MailDomainPolicy,
  credentials: ReadonlyMap<string, RelayCredential>,
): { secrets: Set<string>; configMaps: Set<string>; credentials: Set<string> } {
  const out = { secrets: new Set<string>(), configMaps: new Set<string>(), credentials: new Set<string>() };
  const s = p.spec;
  const fb = s.outbound.tls.fallback;
  for (const ca of [s.outbound.tls.caBundle, s.outbound.tls.audit?.caBundle, fb?.route?.tls.caBundle]) {
    if (ca?.configMapRef) out.configMaps.add(ca.configMapRef.name);
    if (ca?.secretRef) out.secrets.add(ca.secretRef.name);
  }
  for (const rc of [
    s.outbound.messageEncryption?.smime?.recipientCertificates,
    fb?.smime?.recipientCertificates,
  ]) {
    if (rc?.secretRef) out.secrets.add(rc.secretRef.name);
    if (rc?.configMapRef) out.configMaps.add(rc.configMapRef.name);
  }
  const pgp = s.outbound.messageEncryption?.openpgp;
  if (pgp?.recipientKeys.secretRef) out.secrets.add(pgp.recipientKeys.secretRef.name);
  if (pgp?.recipientKeys.configMapRef) out.configMaps.add(pgp.recipientKeys.configMapRef.name);
  if (pgp?.signingKeyRef) out.secrets.add(pgp.signingKeyRef.name);
  for (const ref of [
    s.outbound.tls.clientCertificateRef,
    s.outbound.auth?.credentialRef,
    s.outbound.messageEncryption?.smime?.signingCredentialRef,
    s.inbound?.credentialRef,
  ]) {
    if (!ref) continue;
    out.credentials.add(ref.name);
    const c = credentials.get(ref.name);
    if (c?.spec.passwordSecretRef) out.secrets.add(c.spec.passwordSecretRef.name);
    if (c?.spec.type === "clientCertificate") out.secrets.add(credentialSecretName(c));
  }
  return out;
}

export interface ServiceInfo {
  addresses: readonly string[];
  /** uid of the object its controller ownerReference names: only the relay's own Service counts. */
  controllerUid?: string;
}
