// Compiles one MailRelay and the MailDomainPolicies it selects (with the RelayCredentials, Secrets and
// ConfigMaps they reference) into the relay's RelayConfig. Pure: the caller passes what the cluster
// holds (from the informer caches); the result is the config (validated by the relay's own zod schema
// and cross-reference checks) plus, per policy, why it was left out. A policy is all in or all out:
// - two policies claiming the same domain pattern (equal specificity): the oldest (creationTimestamp,
//   then name) keeps it, every later one gets DomainConflict naming it — never a coin toss, and a
//   policy created later cannot take a domain over (issue 14, finding 1); an older wildcard claims
//   its subdomains too (a later eu.partner.example under *.partner.example is in conflict);
// - a reference to a Secret/ConfigMap key or RelayCredential that does not exist → MissingReference;
// - a credential of the wrong type or usage → InvalidReference;
// - anything the relay's schema rejects, or a domain without a canonical IDNA form → InvalidSpec.
// A policy left out never lets its domains fall to a weaker route: the domains it owns go into the
// config's deferredPolicies, and the relay defers their mail (4.3.5) until the policy is fixed. Domain
// patterns are compiled to the one canonical form (relay/domains.ts).
import { createHash } from "node:crypto";
import {
  CONFIG_VERSION,
  DomainPattern,
  Policy as PolicySchema,
  RelayConfig as RelayConfigSchema,
  type Credential,
  type DeferredPolicy,
  type Policy,
  type RelayConfig,
} from "../../relay/config/schema.js";
import { checkReferences } from "../../relay/config/load.js";
import { canonicalPattern, claimingPatterns } from "../../relay/domains.js";
import type { MailDomainPolicy, MailRelay, RelayCredential } from "../api.js";
import type { ProjectedSource } from "../render/input.js";
import { ADMIN_PORT, FLEET_SECRET_KEY, names, QUEUE_DIR } from "../render/meta.js";
import { ownServiceAddresses } from "./self-addresses.js";
import { durationSeconds, MailDomainPolicy as MailDomainPolicySchema, quantityBytes } from "../api.js";

export type ProblemReason = "DomainConflict" | "MissingReference" | "InvalidReference" | "InvalidSpec";

export interface PolicyProblem {
  reason: ProblemReason;
  message: string;
}

/** What the cluster holds that policies may reference, by name, in the relay's namespace. */
export interface ClusterView {
  credentials: ReadonlyMap<string, RelayCredential>;
  /** Secret name → its type and data keys. */
  secrets: ReadonlyMap<string, SecretInfo>;
  /** ConfigMap name → its data keys. */
  configMaps: ReadonlyMap<string, ReadonlySet<string>>;
  /** The relays' Services: name → the addresses that reach it (compile/self-addresses.ts). */
  services?: ReadonlyMap<string, ServiceInfo>;
}

export interface SecretInfo {
  type?: string;
  keys: ReadonlySet<string>;
  /** uid of the object its controller ownerReference names (who created it, for the fleet Secret). */
  controllerUid?: string;
}

export interface ServiceInfo {
  addresses: readonly string[];
  /** uid of the object its controller ownerReference names: only the relay's own Service counts. */
  controllerUid?: string;
}

export interface CompileResult {
  config: RelayConfig;
  /** config.json exactly as written to the ConfigMap, and its sha256 (hex). */
  json: string;
  hash: string;
  /** sha256 of what the relay cannot hot-reload (listeners, admin, queue dir). */
  restartHash: string;
  /** namespace/name of the policies in the config. */
  included: string[];
  /** Per included policy, its PolicyEntry token: what this config enforces of it. */
  tokens: Map<string, string>;
  /** Problems of the policies left out, by namespace/name. */
  problems: Map<string, PolicyProblem[]>;
  /** Problems of the relay's own references (spec.inbound.credentialRefs); those credentials are left out. */
  relayProblems: PolicyProblem[];
  /** Secrets and ConfigMaps to project into /etc/sealpost. */
  sources: ProjectedSource[];
  /** TCP ports the relay connects out to besides 25/465/587. */
  egressPorts: number[];
}

export const secretPath = (secret: string, key: string): string => `secrets/${secret}/${key}`;
export const configMapPath = (cm: string, key: string): string => `configmaps/${cm}/${key}`;

export function keyOf(o: { metadata: { namespace?: string; name?: string } }): string {
  return `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

class Refs {
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
    const keys = kind === "Secret" ? this.view.secrets.get(name)?.keys : this.view.configMaps.get(name);
    if (!keys) return (this.missing(`${kind} ${this.ns}/${name} not found`), undefined);
    const pem = [...keys].filter((k) => /\.(crt|pem)$/.test(k)).sort();
    if (!pem.length)
      return (this.missing(`${kind} ${this.ns}/${name} has no key ending in .crt or .pem`), undefined);
    return pem.map((k) => (kind === "Secret" ? this.secretKey(name, k) : this.configMapKey(name, k))!);
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
   * (problem noted). `where`: the domains and next hop of the policy that sends it (restrictTo).
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
    if (!types.includes(c.spec.type) || c.spec.usage !== usage) {
      this.invalid(
        `RelayCredential ${this.ns}/${name} is type ${c.spec.type} usage ${c.spec.usage}; ${role} needs type ${types.join(" or ")} usage ${usage}`,
      );
      return undefined;
    }
    const outside = where ? credentialScopeProblem(c, where.domains, where.nextHop) : undefined;
    if (outside) {
      this.invalid(`RelayCredential ${this.ns}/${name} (${role}): ${outside}`);
      return undefined;
    }
    const compiled = compileCredential(c, this);
    if (compiled) this.credentials.set(name, compiled);
    return compiled ? name : undefined;
  }

  secretType(name: string): string | undefined {
    return this.view.secrets.get(name)?.type;
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
 * Why a credential may not be used by a policy with these domains and next hop (its
 * spec.restrictTo, finding 5 of issue 14), or undefined. Pure.
 */
export function credentialScopeProblem(
  c: RelayCredential,
  domains: readonly string[],
  nextHop: string | undefined,
): string | undefined {
  const r = c.spec.restrictTo;
  if (!r) return undefined;
  if (r.domains) {
    const out = domains.filter((d) => !r.domains!.some((a) => covered(d, a)));
    if (out.length)
      return `restrictTo.domains (${r.domains.join(", ")}) does not cover ${out.join(", ")}: remove those domains from the policy or add them to the credential's restrictTo.domains`;
  }
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
  return c.spec.secretRef?.name ?? `${c.metadata.name}-client-tls`;
}

function compileCredential(c: RelayCredential, refs: Refs): Credential | undefined {
  const name = `${refs.namespace}/${c.metadata.name}`;
  if (c.spec.type === "password") {
    if (!c.spec.username || !c.spec.passwordSecretRef) {
      refs.invalid(`RelayCredential ${name} of type password needs username and passwordSecretRef`);
      return undefined;
    }
    const file = refs.secretKey(c.spec.passwordSecretRef.name, c.spec.passwordSecretRef.key ?? "password");
    return file
      ? {
          type: "password",
          usage: c.spec.usage,
          username: c.spec.username,
          passwordFile: file,
          // what a client logged in with it may do (relay/inbound/authority.ts)
          ...(c.spec.usage === "inbound" && c.spec.allowRelay ? { allowRelay: true } : {}),
          ...(c.spec.usage === "inbound" && c.spec.senderDomains
            ? { senderDomains: c.spec.senderDomains.flatMap((p) => canonicalPattern(p) ?? []) }
            : {}),
        }
      : undefined;
  }
  const secret = credentialSecretName(c);
  if (c.spec.secretRef) {
    const t = refs.secretType(secret);
    if (t !== undefined && t !== "kubernetes.io/tls") {
      refs.invalid(
        `Secret ${refs.namespace}/${secret} of RelayCredential ${name} is type ${t}, not kubernetes.io/tls`,
      );
      return undefined;
    }
  }
  const certFile = refs.secretKey(secret, "tls.crt");
  const keyFile = refs.secretKey(secret, "tls.key");
  return certFile && keyFile
    ? { type: "clientCertificate", usage: c.spec.usage, certFile, keyFile }
    : undefined;
}

/** The catch-all pattern: its policy becomes the relay's defaultOutbound. */
export const CATCH_ALL = "*";

function compilePolicy(p: MailDomainPolicy, refs: Refs): Policy | undefined {
  const s = p.spec;
  const tls = s.outbound.tls;
  const outbound: Policy["outbound"] = { tls: { mode: tls.mode, minVersion: tls.minVersion ?? "TLSv1.2" } };
  const ca = tls.caBundle;
  if (ca?.configMapRef) {
    const f = refs.configMapKey(ca.configMapRef.name, ca.configMapRef.key ?? "ca.crt");
    if (f) outbound.tls.caFile = f;
  } else if (ca?.secretRef) {
    const f = refs.secretKey(ca.secretRef.name, ca.secretRef.key ?? "ca.crt");
    if (f) outbound.tls.caFile = f;
  }
  if (tls.matchNames?.length) outbound.tls.matchNames = [...tls.matchNames];
  const where = {
    domains: s.domains,
    ...(s.outbound.nextHop ? { nextHop: s.outbound.nextHop.host } : {}),
  };
  if (tls.clientCertificateRef) {
    const n = refs.credential(
      tls.clientCertificateRef.name,
      ["clientCertificate"],
      "outbound",
      "outbound.tls.clientCertificateRef",
      where,
    );
    if (n) outbound.tls.clientCredential = n;
  }
  if (s.outbound.auth?.credentialRef) {
    const n = refs.credential(
      s.outbound.auth.credentialRef.name,
      ["password"],
      "outbound",
      "outbound.auth.credentialRef",
      where,
    );
    if (n) outbound.authCredential = n;
    if (s.outbound.auth.allowUnauthenticatedPeer) outbound.authUnauthenticatedPeer = true;
  }
  if (s.outbound.nextHop)
    outbound.nextHop = { host: s.outbound.nextHop.host, port: s.outbound.nextHop.port ?? 25 };
  const smime = s.outbound.messageEncryption?.smime;
  if (smime) {
    const rc = smime.recipientCertificates;
    const files = rc.secretRef
      ? refs.pemKeys("Secret", rc.secretRef.name)
      : rc.configMapRef
        ? refs.pemKeys("ConfigMap", rc.configMapRef.name)
        : undefined;
    if (files?.length) {
      outbound.smime = {
        certificateFiles: files,
        missingCertificate: smime.missingCertificate ?? "defer",
        sign: smime.sign ?? false,
      };
    }
  }
  const domains: string[] = [];
  s.domains.forEach((d, i) => {
    const c = canonicalPattern(d);
    if (c === undefined)
      refs.problems.push({
        reason: "InvalidSpec",
        message: `spec.domains[${i}]: "${d}" is not a valid domain name (IDNA2008/UTS #46): write its A-label form, e.g. xn--bcher-kva.example for bücher.example`,
      });
    else if (!domains.includes(c)) domains.push(c);
  });
  const policy: Policy = { name: keyOf(p), domains, outbound };
  if (s.inbound) {
    policy.inbound = { hosts: [...s.inbound.hosts], require: s.inbound.require };
    if (s.inbound.credentialRef) {
      // the relay's config knows inbound password accounts only (an inbound client certificate has no
      // representation in RelayConfig yet)
      const n = refs.credential(
        s.inbound.credentialRef.name,
        ["password"],
        "inbound",
        "inbound.credentialRef",
      );
      if (n) policy.inbound.credentials = [n];
    }
  }
  if (domains.includes(CATCH_ALL) && s.inbound) {
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

/** The references of one policy, for mapping Secret/ConfigMap/RelayCredential events back to it. Pure. */
export function policyReferences(
  p: MailDomainPolicy,
  credentials: ReadonlyMap<string, RelayCredential>,
): { secrets: Set<string>; configMaps: Set<string>; credentials: Set<string> } {
  const out = { secrets: new Set<string>(), configMaps: new Set<string>(), credentials: new Set<string>() };
  const s = p.spec;
  const ca = s.outbound.tls.caBundle;
  if (ca?.configMapRef) out.configMaps.add(ca.configMapRef.name);
  if (ca?.secretRef) out.secrets.add(ca.secretRef.name);
  const rc = s.outbound.messageEncryption?.smime?.recipientCertificates;
  if (rc?.secretRef) out.secrets.add(rc.secretRef.name);
  if (rc?.configMapRef) out.configMaps.add(rc.configMapRef.name);
  for (const ref of [
    s.outbound.tls.clientCertificateRef,
    s.outbound.auth?.credentialRef,
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

/** The parts of the config a relay applies only on restart. */
export function restartRelevant(c: RelayConfig): unknown {
  return { listeners: c.listeners, admin: c.admin, queueDir: c.queue.dir };
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
  /** metadata.creationTimestamp ("" when absent): the older policy keeps a contested domain. */
  created: string;
  /**
   * The canonical domain patterns it claims, once each; from the raw spec when it does not parse
   * (InvalidSpec), so that a broken policy still holds its domains.
   */
  domains: string[];
  /** Spec and reference problems (no conflicts): the policy is left out when there is one. */
  problems: PolicyProblem[];
  /** The relay config's policy, when there are no problems. */
  policy?: Policy;
  /**
   * With `policy`: what the relay gets of this policy, as a string (the policy and the credentials it
   * brings). Two configs with the same token for a policy enforce it the same way.
   */
  token?: string;
  /** What the policy brings into the config: credentials, and the Secret/ConfigMap keys it mounts. */
  credentials: ReadonlyMap<string, Credential>;
  secrets: ReadonlyMap<string, ReadonlyMap<string, string>>;
  configMaps: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** The canonical domain patterns a raw policy object claims (whatever of spec.domains canonicalises). */
export function claimedDomains(raw: unknown): string[] {
  const d = (raw as { spec?: { domains?: unknown } } | undefined)?.spec?.domains;
  if (!Array.isArray(d)) return [];
  const out = new Set<string>();
  for (const x of d) {
    const c = typeof x === "string" ? canonicalPattern(x) : undefined;
    if (c !== undefined && (c === CATCH_ALL || DomainPattern.safeParse(c).success)) out.add(c);
  }
  return [...out];
}

export function compilePolicyEntry(raw: unknown, namespace: string, view: ClusterView): PolicyEntry {
  const key = keyOf(raw as MailDomainPolicy);
  const created = (raw as MailDomainPolicy).metadata?.creationTimestamp ?? "";
  const domains = claimedDomains(raw);
  const parsed = MailDomainPolicySchema.safeParse(raw);
  if (!parsed.success)
    return {
      key,
      created,
      domains,
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
  const refs = new Refs(namespace, view);
  const policy = compilePolicy(parsed.data, refs);
  const ok = policy && !refs.problems.length;
  return {
    key,
    created,
    domains,
    problems: refs.problems,
    ...(ok
      ? {
          policy,
          token: JSON.stringify([policy, [...refs.credentials].sort((a, b) => a[0].localeCompare(b[0]))]),
        }
      : {}),
    // most policies reference nothing: one shared empty map instead of three per policy
    credentials: refs.credentials.size ? refs.credentials : NONE,
    secrets: refs.secrets.size ? refs.secrets : NONE,
    configMaps: refs.configMaps.size ? refs.configMaps : NONE,
  };
}

const NONE: ReadonlyMap<string, never> = new Map<string, never>();

/** A policy claiming a domain pattern, as the ownership rule reads it. */
export interface Claimant {
  key: string;
  /** creationTimestamp (RFC 3339), "" when unknown (sorts last). */
  created: string;
  /** The patterns it claims (to name the wider one it holds a domain by). */
  domains?: readonly string[];
}

/** Who keeps a contested domain: the oldest policy (creationTimestamp), then the name. */
export function claimOrder(a: Claimant, b: Claimant): number {
  const ta = a.created ? Date.parse(a.created) : Infinity;
  const tb = b.created ? Date.parse(b.created) : Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** One policy's verdict on one relay, apart from its own problems. */
export interface PolicyVerdict {
  /** DomainConflict problems (the domains it lost to an older policy) followed by its own problems. */
  problems: PolicyProblem[];
  /** With problems: the domains it still owns, whose mail the relay defers until it is fixed. */
  deferred: string[];
}

/**
 * The verdict on one policy: per domain pattern it claims (in sorted order), whether an older policy
 * of the same relay claims it too (then the other keeps it: DomainConflict); with any problem, the
 * domains it keeps are deferred. `claimants(domain)`: every policy the relay selects that claims
 * `domain` (this one included or not). Pure.
 */
export function policyVerdict(
  e: PolicyEntry,
  claimants: (domain: string) => readonly Claimant[],
): PolicyVerdict {
  const problems: PolicyProblem[] = [];
  const kept: string[] = [];
  for (const domain of [...e.domains].sort((a, b) => a.localeCompare(b))) {
    const owner = [...claimants(domain), e].sort(claimOrder)[0]!;
    if (owner.key === e.key) {
      kept.push(domain);
      continue;
    }
    const by = claimingPatterns(domain).find((p) => p !== domain && owner.domains?.includes(p));
    problems.push({
      reason: "DomainConflict",
      message: `domain ${domain} is already claimed by MailDomainPolicy ${owner.key}${by ? ` (as ${by}, which covers it)` : ""}, created earlier, which keeps deciding it; remove ${domain} from this policy (or delete the older one)`,
    });
  }
  problems.push(...e.problems);
  if (!e.policy && !problems.length)
    problems.push({ reason: "InvalidSpec", message: "the policy does not compile" });
  return { problems, deferred: problems.length ? kept : [] };
}

/** What the relay does with the domains of a policy left out (for its Accepted condition). */
export function deferredNote(deferred: readonly string[]): string {
  if (!deferred.length) return "";
  const what = deferred.includes(CATCH_ALL)
    ? "mail to every domain no other policy matches (local domains excepted)"
    : `mail to ${deferred.join(", ")}`;
  return `meanwhile the relay defers ${what} (4.3.5), never sending it under another policy or the default`;
}

/**
 * Compiles the relay. `policies` are the ones its policySelector matches (any order). Throws only if
 * the relay's own settings are invalid (the MailRelay reconciler reports that on the MailRelay).
 * `entryOf` compiles one policy (a memoising caller passes its cache; default: compilePolicyEntry).
 */
export function compileRelayConfig(
  relay: MailRelay,
  selected: readonly unknown[],
  view: ClusterView,
  entryOf: (raw: unknown) => PolicyEntry = (raw) =>
    compilePolicyEntry(raw, relay.metadata.namespace ?? "", view),
): CompileResult {
  const ns = relay.metadata.namespace ?? "";
  const problems = new Map<string, PolicyProblem[]>();
  // objects from the cluster passed the CRD's schema; zod applies the API's defaults (and would catch a
  // CRD that drifted from the schema); a policy that does not parse still holds the domains it claims
  const sorted = selected.map(entryOf).sort((a, b) => a.key.localeCompare(b.key));
  const owners = new Map<string, Claimant[]>();
  for (const e of sorted)
    for (const d of e.domains) {
      const list = owners.get(d);
      if (list) list.push(e);
      else owners.set(d, [e]);
    }
  const compiled: Policy[] = [];
  const deferredPolicies: DeferredPolicy[] = [];
  const credentials: Record<string, Credential> = {};
  const secretItems = new Map<string, Map<string, string>>();
  const configMapItems = new Map<string, Map<string, string>>();
  const egress = new Set<number>();
  const tokens = new Map<string, string>();
  for (const e of sorted) {
    const v = policyVerdict(e, (d) => [...new Set(claimingPatterns(d).flatMap((p) => owners.get(p) ?? []))]);
    if (v.problems.length || !e.policy) {
      problems.set(e.key, v.problems);
      if (v.deferred.length)
        deferredPolicies.push({
          name: e.key,
          domains: v.deferred,
          reason: v.problems.map((p) => `${p.reason}: ${p.message}`).join("; "),
        });
      continue;
    }
    const pol = e.policy;
    compiled.push(pol);
    tokens.set(e.key, e.token ?? "");
    for (const [name, c] of e.credentials) credentials[name] = c;
    for (const [name, m] of e.secrets) for (const [k, v] of m) mapIn(secretItems, name).set(k, v);
    for (const [name, m] of e.configMaps) for (const [k, v] of m) mapIn(configMapItems, name).set(k, v);
    if (pol.outbound.nextHop) egress.add(pol.outbound.nextHop.port);
  }

  const catchAll = compiled.find((p) => p.domains.includes(CATCH_ALL));
  const spec = relay.spec;
  const inbound = spec.inbound;
  const queue = spec.queue;
  // relay-wide inbound accounts (e.g. mail clients on 587)
  const relayProblems: PolicyProblem[] = [];
  for (const ref of inbound.credentialRefs ?? []) {
    const refs = new Refs(ns, view);
    const n = refs.credential(ref.name, ["password"], "inbound", "spec.inbound.credentialRefs");
    relayProblems.push(...refs.problems);
    if (!n) continue;
    for (const [name, c] of refs.credentials) credentials[name] = c;
    for (const [name, m] of refs.secrets) for (const [k, v] of m) mapIn(secretItems, name).set(k, v);
  }
  // the recipients of the local domains: a missing ConfigMap keeps the inline list only (refusing
  // more, never accepting every address)
  const lr = inbound.localRecipients;
  let recipientFiles: string[] = [];
  if (lr?.configMapRef) {
    const refs = new Refs(ns, view);
    const path = refs.configMapKey(lr.configMapRef.name, lr.configMapRef.key);
    relayProblems.push(...refs.problems);
    for (const [name, m] of refs.configMaps) for (const [k, v] of m) mapIn(configMapItems, name).set(k, v);
    if (path) recipientFiles = [path];
  }
  const l = spec.listeners;
  // the /queue admin endpoints' bearer token (absent: they are disabled)
  const tokenRef = spec.admin?.tokenSecretRef;
  const adminToken = tokenRef ? secretPath(tokenRef.name, tokenRef.key) : undefined;
  if (tokenRef && adminToken) mapIn(secretItems, tokenRef.name).set(tokenRef.key, adminToken);
  // scale-down drain (relay/queue/drain.ts): a pod that goes hands its queue over to the fleet's
  // Service on 25, authenticated with the fleet's own key (relay/queue/handover.ts: the Secret
  // `<relay>-fleet` the operator creates); needs the admin token (the preStop hook calls the local
  // /queue/drain) and a direct (non-PROXY) smtp listener
  // Only the Secret the operator created for this very relay (its controller ownerReference names the
  // relay's uid): a `<relay>-fleet` planted by anyone who may create Secrets, before the relay exists or
  // while a replace has the old one garbage-collected, would hand them the fleet's AUTH (relaying).
  const fleetSecret = names.fleetSecret(relay.metadata.name ?? "");
  const fleetInfo = view.secrets.get(fleetSecret);
  const fleetKey =
    fleetInfo?.keys.has(FLEET_SECRET_KEY) &&
    relay.metadata.uid &&
    fleetInfo.controllerUid === relay.metadata.uid
      ? secretPath(fleetSecret, FLEET_SECRET_KEY)
      : undefined;
  if (fleetKey) mapIn(secretItems, fleetSecret).set(FLEET_SECRET_KEY, fleetKey);
  const handover =
    adminToken && fleetKey && l.smtp.enabled && !l.smtp.proxyProtocol?.enabled
      ? { host: `${names.service(relay.metadata.name ?? "")}.${ns}.svc`, port: l.smtp.port }
      : undefined;
  const input = {
    version: CONFIG_VERSION,
    relay: keyOf(relay),
    generation: relay.metadata.generation ?? 0,
    hostname: spec.hostname,
    selfAddresses: ownServiceAddresses(relay, view),
    listeners: {
      smtp: { enabled: l.smtp.enabled, port: l.smtp.port, host: "0.0.0.0", ...proxyOf(l.smtp) },
      smtps: { enabled: l.smtps.enabled, port: l.smtps.port, host: "0.0.0.0", ...proxyOf(l.smtps) },
      submission: {
        enabled: l.submission.enabled,
        port: l.submission.port,
        host: "0.0.0.0",
        ...proxyOf(l.submission),
      },
    },
    admin: { port: ADMIN_PORT, host: "0.0.0.0", ...(adminToken ? { tokenFile: adminToken } : {}) },
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    ...(fleetKey ? { fleet: { keyFile: fleetKey } } : {}),
    inbound: {
      require: inbound.require,
      relayFrom: [...(inbound.relayFrom ?? [])],
      localDomains: (inbound.localDomains ?? []).map((d) => canonicalPattern(d) ?? d),
      ...(inbound.internalNextHop
        ? { internalNextHop: { host: inbound.internalNextHop.host, port: inbound.internalNextHop.port } }
        : {}),
      maxMessageSize: quantityBytes(inbound.maxMessageSize),
      maxRecipients: inbound.maxRecipients,
      ...(lr ? { localRecipients: { addresses: [...(lr.addresses ?? [])], files: recipientFiles } } : {}),
      hopLimit: inbound.hopLimit,
      limits: {
        ipv6PrefixLength: inbound.ipv6ClientPrefixLength,
        hardErrorLimit: inbound.hardErrorLimit,
        maxCommandsPerSession: inbound.maxCommandsPerSession,
      },
    },
    delivery: {
      mxAddressLimit: spec.delivery.mxAddressLimit,
      mxSessionLimit: spec.delivery.mxSessionLimit,
      attemptTimeoutSeconds: durationSeconds(spec.delivery.attemptTimeout),
      fetchTimeoutSeconds: durationSeconds(spec.delivery.fetchTimeout),
      allowedInternalCidrs: [...(spec.delivery.allowedInternalCidrs ?? [])],
    },
    credentials: Object.fromEntries(Object.entries(credentials).sort((a, b) => a[0].localeCompare(b[0]))),
    ...(spec.dns?.servers?.length ? { dns: { servers: [...spec.dns.servers] } } : {}),
    policies: compiled.filter((p) => !p.domains.includes(CATCH_ALL)),
    deferredPolicies,
    ...(catchAll ? { defaultOutbound: catchAll.outbound, defaultOutboundPolicy: catchAll.name } : {}),
    queue: {
      dir: QUEUE_DIR,
      maxAge: Math.round(durationSeconds(queue.maxAge)),
      retry: { initial: durationSeconds(queue.retry.initial), max: durationSeconds(queue.retry.max) },
      // bodies in flight stay well inside the pod's memory limit (relay/queue/memory-budget.ts)
      memoryBytes: Math.floor(quantityBytes(spec.resources.limits.memory) / 4),
      ...(handover ? { handover } : {}),
    },
  };
  if (handover) egress.add(handover.port);
  if (input.inbound.internalNextHop) egress.add(input.inbound.internalNextHop.port);
  const config = RelayConfigSchema.parse(input);
  const refProblems = checkReferences(config);
  if (refProblems.length)
    throw new Error(`compiled config fails the relay's checks: ${refProblems.join("; ")}`);
  const json = JSON.stringify(config, null, 2) + "\n";
  const sources: ProjectedSource[] = [
    ...[...secretItems].map(([name, m]) => source("secret", name, m)),
    ...[...configMapItems].map(([name, m]) => source("configMap", name, m)),
  ];
  return {
    config,
    json,
    hash: sha256(json),
    restartHash: sha256(JSON.stringify(restartRelevant(config))).slice(0, 32),
    included: compiled.map((p) => p.name),
    tokens,
    problems,
    relayProblems,
    sources,
    egressPorts: [...egress].filter((p) => ![25, 465, 587].includes(p)).sort((a, b) => a - b),
  };
}

function proxyOf(l: { proxyProtocol?: { enabled: boolean; trustedCidrs: string[] } | undefined }): {
  proxyProtocol?: { enabled: boolean; trustedCidrs: string[] };
} {
  return l.proxyProtocol?.enabled
    ? { proxyProtocol: { enabled: true, trustedCidrs: [...l.proxyProtocol.trustedCidrs] } }
    : {};
}

function mapIn<K, V>(m: Map<K, Map<string, V>>, k: K): Map<string, V> {
  let v = m.get(k);
  if (!v) m.set(k, (v = new Map<string, V>()));
  return v;
}

function source(kind: ProjectedSource["kind"], name: string, m: Map<string, string>): ProjectedSource {
  const items = [...m].sort((a, b) => a[0].localeCompare(b[0])).map(([key, path]) => ({ key, path }));
  return { kind, name, items, optional: true };
}
