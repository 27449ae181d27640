// One MailDomainPolicy compiled on its own: its spec parsed with the API's defaults, its references
// resolved against the namespace (references.ts), and checked by the relay's own Policy schema. What
// depends on the other policies (who keeps a contested domain) is domain-claims.ts. Pure.
import { deflateRawSync } from "node:zlib";
import {
  Policy as PolicySchema,
  type AuditTls,
  type Credential,
  type Policy,
  type Requirement,
} from "../../relay/contract/config.js";
import { canonicalPattern } from "../../relay/contract/domains.js";
import { MailDomainPolicy as MailDomainPolicySchema, type MailDomainPolicy } from "../api.js";
import { keyOf, type PolicyObject } from "../objects.js";
import { claimAges, withSize, type ClaimAges } from "./claim-age.js";
import { CATCH_ALL, claimedDomains } from "./domain-claims.js";
import { compileFallback } from "./fallback.js";
import { compileExceptions } from "./exceptions.js";
import type { PolicyProblem } from "./problems.js";
import { compileOpenpgp } from "./openpgp.js";
import { Refs, type ClusterView } from "./references.js";

/** Shadow mode's audited policy (api/v1alpha1/tls-confidence.ts); its CA bundle is a reference as tls.caBundle. */
function compileAudit(
  a: NonNullable<MailDomainPolicy["spec"]["outbound"]["tls"]["audit"]>,
  refs: Refs,
): AuditTls {
  const out: AuditTls = { mode: a.mode, minVersion: a.minVersion ?? "TLSv1.2" };
  const ca = a.caBundle;
  const f = ca?.configMapRef
    ? refs.configMapKey(ca.configMapRef.name, ca.configMapRef.key)
    : ca?.secretRef
      ? refs.secretKey(ca.secretRef.name, ca.secretRef.key)
      : undefined;
  if (f) out.caFile = f;
  if (a.matchNames?.length) out.matchNames = [...a.matchNames];
  if (a.pins?.length) out.pins = [...a.pins];
  return out;
}

function compilePolicy(policyObject: MailDomainPolicy, refs: Refs, now?: number): Policy | undefined {
  const spec = policyObject.spec;
  const tls = spec.outbound.tls;
  const outbound: Policy["outbound"] = { tls: { mode: tls.mode, minVersion: tls.minVersion ?? "TLSv1.2" } };
  const ca = tls.caBundle;
  if (ca?.configMapRef) {
    const caFile = refs.configMapKey(ca.configMapRef.name, ca.configMapRef.key);
    if (caFile) outbound.tls.caFile = caFile;
  } else if (ca?.secretRef) {
    const caFile = refs.secretKey(ca.secretRef.name, ca.secretRef.key);
    if (caFile) outbound.tls.caFile = caFile;
  }
  if (tls.matchNames?.length) outbound.tls.matchNames = [...tls.matchNames];
  if (tls.pins?.length) outbound.tls.pins = [...tls.pins];
  if (tls.audit) outbound.tls.audit = compileAudit(tls.audit, refs);
  // the exceptions active at `now` (none without a clock): exceptions.ts
  const exceptions = now === undefined ? [] : compileExceptions(spec.exceptions, now);
  if (exceptions.length) outbound.tls.exceptions = exceptions;
  const where = {
    domains: spec.domains,
    ...(spec.outbound.nextHop ? { nextHop: spec.outbound.nextHop.host } : {}),
  };
  if (tls.clientCertificateRef) {
    const credential = refs.credential(
      tls.clientCertificateRef.name,
      ["clientCertificate"],
      "outbound",
      "outbound.tls.clientCertificateRef",
      where,
    );
    if (credential) outbound.tls.clientCredential = credential;
  }
  if (spec.outbound.auth?.credentialRef) {
    const credential = refs.credential(
      spec.outbound.auth.credentialRef.name,
      ["password"],
      "outbound",
      "outbound.auth.credentialRef",
      where,
    );
    if (credential) outbound.authCredential = credential;
    if (spec.outbound.auth.allowUnauthenticatedPeer) outbound.authUnauthenticatedPeer = true;
  }
  if (spec.outbound.nextHop)
    outbound.nextHop = { host: spec.outbound.nextHop.host, port: spec.outbound.nextHop.port };
  const fallback = compileFallback(spec.outbound, refs);
  if (fallback) outbound.tlsFallback = fallback;
  const smime = spec.outbound.messageEncryption?.smime;
  if (smime) {
    const rc = smime.recipientCertificates;
    const files = rc.secretRef
      ? refs.pemKeys("Secret", rc.secretRef.name)
      : rc.configMapRef
        ? refs.pemKeys("ConfigMap", rc.configMapRef.name)
        : undefined;
    // the certificate that signs (issue 20 item 5); its restrictTo applies as for any outbound use
    const signing = smime.signingCredentialRef
      ? refs.credential(
          smime.signingCredentialRef.name,
          ["clientCertificate"],
          "outbound",
          "outbound.messageEncryption.smime.signingCredentialRef",
          where,
        )
      : undefined;
    if (files?.length) {
      outbound.smime = {
        certificateFiles: files,
        missingCertificate: smime.missingCertificate,
        sign: smime.sign,
        ...(signing ? { signingCredential: signing } : {}),
        contentEncryption: smime.contentEncryption,
      };
    }
  }
  const openpgp = spec.outbound.messageEncryption?.openpgp;
  const pgp = openpgp ? compileOpenpgp(openpgp, refs) : undefined;
  if (pgp) outbound.openpgp = pgp;
  const domains: string[] = [];
  spec.domains.forEach((pattern, i) => {
    const canonical = canonicalPattern(pattern);
    if (canonical === undefined)
      refs.problems.push({
        reason: "InvalidSpec",
        message: `spec.domains[${i}]: "${pattern}" is not a valid domain name (IDNA2008/UTS #46): write its A-label form, e.g. xn--bcher-kva.example for bücher.example`,
      });
    else if (!domains.includes(canonical)) domains.push(canonical);
  });
  const policy: Policy = { name: keyOf(policyObject), domains, outbound };
  if (spec.inbound) {
    policy.inbound = { hosts: [...spec.inbound.hosts], require: spec.inbound.require };
    if (spec.inbound.credentialRef) {
      // the relay's config knows inbound password accounts only (an inbound client certificate has no
      // representation in RelayConfig yet)
      const credential = refs.credential(
        spec.inbound.credentialRef.name,
        ["password"],
        "inbound",
        "inbound.credentialRef",
        { domains },
      );
      if (credential) policy.inbound.credentials = [credential];
    }
  }
  if (domains.includes(CATCH_ALL) && spec.inbound) {
    refs.problems.push({
      reason: "InvalidSpec",
      message: 'the catch-all "*" policy cannot carry inbound rules (no domain to attach them to)',
    });
  }
  if (refs.problems.length) return undefined;
  // the catch-all is validated as a policy for one placeholder domain; compileRelayConfig moves it
  const parsed = PolicySchema.safeParse(
    domains.includes(CATCH_ALL) ? { ...policy, domains: ["catch-all.invalid"] } : policy,
  );
  if (!parsed.success) {
    refs.problems.push({
      reason: "InvalidSpec",
      message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    });
    return undefined;
  }
  return { ...parsed.data, domains };
}

/**
 * One policy compiled on its own: everything about it that does not depend on the other policies
 * (its spec parsed with the API's defaults, its references resolved against the namespace). Conflicts
 * are the only verdict that needs the others (policyVerdict). Pure; callers may memoise it per
 * policy spec and namespace view, and must not mutate it.
 */
export interface PolicyEntry {
  /** namespace/name */
  key: string;
  /** When its claims began, per pattern and relay (claim-age.ts): the older claim keeps a contested domain. */
  ages: ClaimAges;
  /**
   * The canonical domain patterns it claims, once each; from the raw spec when it does not parse
   * (InvalidSpec), so that a broken policy still holds its domains.
   */
  domains: string[];
  /**
   * The inbound credential its spec names (even when the spec or the reference does not compile):
   * while the policy is left out, the relay lets no host log in with it (config.heldCredentials).
   */
  inboundCredential?: string;
  /** Spec and reference problems (no conflicts): the policy is left out when there is one. */
  problems: PolicyProblem[];
  /** The relay config's policy, when there are no problems. */
  policy?: Policy;
  /**
   * Its host rule (hosts and requirement) whenever the spec parses, its references resolved or not:
   * while the policy is left out (a problem, the config's size) its partner's hosts are still held to
   * it (relay-config.ts), never to the relay's weaker default.
   */
  hostRule?: { hosts: string[]; require: Requirement };
  /**
   * The TLS its spec asks for, whenever the spec parses, its references resolved or not: what a
   * catch-all's floor is read from (domain-claims.ts catchAllFloor), which a broken reference of the
   * catch-all must not lift for every other policy.
   */
  tlsAsked?: { mode: string; minVersion: string };
  /**
   * With `policy`: what the relay gets of this policy, as a string (the policy and the credentials it
   * brings). Two configs with the same token for a policy enforce it the same way.
   */
  token?: string;
  /** About how many bytes of the gzipped config it takes (its token, or its domains, deflated): status.footprint. */
  bytes: number;
  /** What the policy brings into the config: credentials, and the Secret/ConfigMap keys it mounts. */
  credentials: ReadonlyMap<string, Credential>;
  secrets: ReadonlyMap<string, ReadonlyMap<string, string>>;
  configMaps: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** The RelayCredential a raw policy's spec.inbound.credentialRef names, whether the spec parses or not. */
function inboundCredentialNamed(raw: unknown): string | undefined {
  const n = (raw as { spec?: { inbound?: { credentialRef?: { name?: unknown } } } } | undefined)?.spec
    ?.inbound?.credentialRef?.name;
  return typeof n === "string" && n ? n : undefined;
}

export function compilePolicyEntry(
  raw: unknown,
  namespace: string,
  view: ClusterView,
  /** The time (epoch ms) exceptions are judged at; absent: none is compiled in. */
  now?: number,
): PolicyEntry {
  return withClaimAges(compilePolicyCore(raw, namespace, view, now), raw);
}

/**
 * A policy's entry without its claims' ages: all that its spec, metadata and namespace view give,
 * nothing of its status. The operator's own status write (claims, footprint) changes the ages only,
 * so a memo keeps this across it (memo.ts) instead of compiling the policy again. Pure.
 */
export type PolicyCore = Omit<PolicyEntry, "ages">;

/** The entry of `core` with the ages `raw`'s status records (claim-age.ts), sized by its bytes. Pure. */
export function withClaimAges(core: PolicyCore, raw: unknown): PolicyEntry {
  return { ...core, ages: withSize(claimAges(raw as PolicyObject, core.domains), core.bytes) };
}

/** compilePolicyEntry without the ages (PolicyCore). */
export function compilePolicyCore(
  raw: unknown,
  namespace: string,
  view: ClusterView,
  now?: number,
): PolicyCore {
  const key = keyOf(raw as MailDomainPolicy);
  const domains = claimedDomains(raw);
  const named = inboundCredentialNamed(raw);
  // the spec and metadata only: the core must not read the status (the memo keeps it across status
  // writes), and a status the operator wrote is not the author's spec to refuse
  const parsed = MailDomainPolicySchema.safeParse(withoutStatus(raw));
  if (!parsed.success) {
    const bytes = compressedBytes(JSON.stringify(domains));
    return {
      key,
      domains,
      ...(named ? { inboundCredential: named } : {}),
      bytes,
      problems: [
        {
          reason: "InvalidSpec",
          message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
        },
      ],
      credentials: NONE,
      secrets: NONE,
      configMaps: NONE,
    };
  }
  const refs = new Refs(namespace, view);
  const policy = compilePolicy(parsed.data, refs, now);
  const ok = policy && !refs.problems.length;
  const tls = parsed.data.spec.outbound.tls;
  const inbound = parsed.data.spec.inbound;
  const token = ok
    ? JSON.stringify([policy, [...refs.credentials].sort((a, b) => a[0].localeCompare(b[0]))])
    : undefined;
  // a broken policy's room: what it asks for (its spec), as it will take once fixed; its host rule
  // takes room while it is left out too (relay-config.ts), which its domains alone did not count
  const bytes = compressedBytes(token ?? JSON.stringify([domains, parsed.data.spec]));
  return {
    key,
    domains,
    ...(named ? { inboundCredential: named } : {}),
    bytes,
    problems: refs.problems,
    tlsAsked: { mode: tls.mode, minVersion: tls.minVersion ?? "TLSv1.2" },
    ...(inbound && !domains.includes(CATCH_ALL)
      ? { hostRule: { hosts: [...inbound.hosts], require: inbound.require } }
      : {}),
    ...(policy && token !== undefined ? { policy, token } : {}),
    // most policies reference nothing: one shared empty map instead of three per policy
    credentials: refs.credentials.size ? refs.credentials : NONE,
    secrets: refs.secrets.size ? refs.secrets : NONE,
    configMaps: refs.configMaps.size ? refs.configMaps : NONE,
  };
}

/** `raw` without its status (a shallow copy when it has one). */
function withoutStatus(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || !("status" in raw)) return raw;
  const { status: _status, ...rest } = raw as Record<string, unknown>;
  return rest;
}

const NONE: ReadonlyMap<string, never> = new Map<string, never>();

/**
 * A policy's room in the config as gzip counts it: its text deflated on its own (what the limit is
 * measured in; a swap of compressible names for random ones keeps the length and not this).
 */
function compressedBytes(text: string): number {
  return deflateRawSync(text).length;
}
