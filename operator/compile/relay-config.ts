// Compiles one MailRelay and the MailDomainPolicies it selects (with the RelayCredentials, Secrets and
// ConfigMaps they reference) into the relay's RelayConfig. Pure: the caller passes what the cluster
// holds (from the informer caches); the result is the config (validated by the relay's own zod schema
// and cross-reference checks) plus, per policy, why it was left out. A policy is all in or all out:
// - two policies claiming the same domain pattern: the oldest keeps it (domain-claims.ts);
// - a reference to a Secret/ConfigMap key or RelayCredential that does not exist → MissingReference;
// - a credential of the wrong type or usage → InvalidReference;
// - an inbound.credentialRef naming one of the relay's own inbound accounts (its
//   spec.inbound.credentialRefs) → InvalidReference on that relay (relay-verdict.ts);
// - anything the relay's schema rejects, or a domain without a canonical IDNA form → InvalidSpec.
// A policy left out never lets its domains fall to a weaker route: the domains it owns go into the
// config's deferredPolicies, and the relay defers their mail (4.3.5) until the policy is fixed. Domain
// patterns are compiled to the one canonical form (relay/contract/domains.ts).
// This file assembles the relay's config from the relay's own settings and the policies compiled one
// by one (policy.ts, references.ts).
import { MATERIAL_BUDGET_BYTES } from "../render/mounted-sources.js";
import { createHash } from "node:crypto";
import {
  CONFIG_VERSION,
  type Credential,
  type DeferredPolicy,
  type Policy,
  type RelayConfig,
} from "../../relay/contract/config.js";
import { checkReferences } from "../../relay/contract/config-checks.js";
import { configJsonText, encodeConfig } from "../../relay/contract/config-encoding.js";
import { parseRelayConfig } from "./config-parse.js";
import { canonicalPattern } from "../../relay/contract/domains.js";
import { collapsedProblem, tooLargeProblem } from "./config-fit.js";
import {
  collapsedDeferrals,
  leftOutDeferral,
  ownedWhenLeftOut,
  deferredEntry,
  type LeftOutPart,
} from "./left-out.js";
import type { MailRelay } from "../api.js";
import { durationSeconds, quantityBytes } from "../api.js";
import { keyOf } from "../objects.js";
import type { ProjectedSource } from "../render/input.js";
import { ADMIN_PORT, FLEET_SECRET_KEY, names, QUEUE_DIR } from "../render/meta.js";
import { keptRanges } from "./relay-ranges.js";
import { shadowedLogins } from "./login-names.js";
import { CATCH_ALL, claimIndex, floorFor, type LocalClaim } from "./domain-claims.js";
import { relayIdOf } from "./claim-age.js";
import { forRelay, relayMaxSeconds } from "./exceptions.js";
import { compileDkim } from "./dkim.js";
import { compilePolicyEntry, type PolicyEntry } from "./policy.js";
import type { PolicyProblem } from "./problems.js";
import { judgement, type Judgement, type RelayClaim } from "./relay-verdict.js";
import { ownFleetSecret, Refs, secretPath, type ClusterView } from "./references.js";
import { ownServiceAddresses } from "./self-addresses.js";
import { compileOwnDomains, type CompiledOwnDomains } from "./own-domains.js";
import { compileTlsReporting } from "./tls-reporting.js";

/** A compile with its config.json gzipped as the ConfigMap holds it (memo.ts encodes it off the event loop). */
export type EncodedConfig = CompileResult & { stored: Buffer };

/** The compile with its gzip, encoded synchronously (tests; the reconciler uses CompileMemo.encoded). */
export function withStored(c: CompileResult): EncodedConfig {
  return { ...c, stored: encodeConfig(c.json) };
}

export interface CompileResult {
  config: RelayConfig;
  /** config.json (compact), its sha256 (hex: what the relay reports). */
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
  /** Secrets and ConfigMaps to project into /etc/sealpost: everything this config reads. */
  sources: ProjectedSource[];
  /**
   * The paths of `sources` the relay's own settings read (its spec's references, the Secrets the
   * operator made for it); the others are policy material (render/mounted-sources.ts).
   */
  relayPaths: ReadonlySet<string>;
  /**
   * The material of the policies left out because the relay's pods do not mount all of it
   * (FitProbe.mounted, MountPending): what the pod template would need to take them in.
   */
  pending: ProjectedSource[];
  /** TCP ports the relay connects out to besides 25/465/587. */
  egressPorts: number[];
  /** MTA-STS and TLS-RPT for the relay's own domains (own-domains.ts). */
  own: CompiledOwnDomains;
}

/** The relay's own claim on its local domains (domain-claims.ts), which no policy may take. */
export function localClaimOf(relay: MailRelay): LocalClaim {
  return {
    key: keyOf(relay),
    id: relayIdOf(relay.metadata),
    localDomains: (relay.spec.inbound.localDomains ?? []).map((d) => canonicalPattern(d) ?? d),
  };
}

/** What no policy may take from the relay: its local domains, its own inbound accounts and senders (relay-verdict.ts). */
export function relayClaimOf(relay: MailRelay): RelayClaim {
  return {
    ...localClaimOf(relay),
    accounts: (relay.spec.inbound.credentialRefs ?? []).map((r) => r.name),
    relayFrom: relay.spec.inbound.relayFrom ?? [],
    ...(relay.spec.inbound.partnerHosts ? { partnerHosts: relay.spec.inbound.partnerHosts } : {}),
  };
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The parts of the config a relay applies only on restart. */
export function restartRelevant(c: RelayConfig): unknown {
  return { listeners: c.listeners, admin: c.admin, queueDir: c.queue.dir };
}

/** How one probe of the config fit (memo.ts fitted) compiles the relay: which policies it leaves out, and how. */
export interface FitProbe {
  /** Policies left out because the config would not fit with them (config-fit.ts), by key. */
  leftOut?: ReadonlySet<string>;
  /** Write them as one broken catch-all (left-out.ts collapsedDeferrals), not one by one. */
  collapsed?: boolean;
  /**
   * Each policy's judgement by key, kept across the probes of one fit: the same policies on the same
   * relay are judged the same whatever a probe leaves out (a flood's verdicts and host checks were
   * most of each probe's time). Valid only for one relay spec and one set of selected policies.
   */
  judgements?: Map<string, Judgement>;
  /**
   * The paths the relay's pod template mounts (render/mounted-sources.ts liveMounts); absent: no
   * template yet, everything may be mounted. A policy whose material is not all among them is left
   * out (MountPending) and its domains deferred: the config never names a file its pods lack.
   */
  mounted?: ReadonlySet<string>;
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
  fit: FitProbe = {},
): CompileResult {
  const { leftOut = new Set<string>(), collapsed = false } = fit;
  const ns = relay.metadata.namespace ?? "";
  const problems = new Map<string, PolicyProblem[]>();
  // objects from the cluster passed the CRD's schema; zod applies the API's defaults (and would catch a
  // CRD that drifted from the schema); a policy that does not parse still holds the domains it claims
  const sorted = selected.map(entryOf).sort((a, b) => a.key.localeCompare(b.key));
  const claimantsOf = claimIndex(sorted);
  const compiled: Policy[] = [];
  const deferredPolicies: DeferredPolicy[] = [];
  // the logins of left-out policies: refused by the relay until they are back (not the relay's own)
  const heldCredentials = new Set<string>();
  const credentials: Record<string, Credential> = {};
  const secretItems = new Map<string, Map<string, string>>();
  const configMapItems = new Map<string, Map<string, string>>();
  // the material of the policies left out for want of a mount (MountPending)
  const pendingSecrets = new Map<string, Map<string, string>>();
  const pendingConfigMaps = new Map<string, Map<string, string>>();
  // what the relay's own settings read (not policy material: render/mounted-sources.ts)
  const relayPaths = new Set<string>();
  const relayItem = (items: Map<string, Map<string, string>>, name: string, key: string, path: string) => {
    mapIn(items, name).set(key, path);
    relayPaths.add(path);
  };
  const egress = new Set<number>();
  const tokens = new Map<string, string>();
  const relayClaim = relayClaimOf(relay);
  const maxSeconds = relayMaxSeconds(relay);
  // the inbound logins of policies left out for size: held when another policy brings them
  const cutLogins = new Set<string>();
  const tooLarge = leftOut.size ? (collapsed ? collapsedProblem : tooLargeProblem)(keyOf(relay)) : undefined;
  const leftOutParts: LeftOutPart[] = [];
  for (const entry of sorted) {
    // left out, its partner's hosts keep its rule when the rule itself passed (relay-verdict.ts)
    let judged = fit.judgements?.get(entry.key);
    if (!judged) {
      judged = judgement(entry, claimantsOf, relayClaim);
      fit.judgements?.set(entry.key, judged);
    }
    const { hostRule } = judged;
    let { verdict } = judged;
    if (tooLarge && leftOut.has(entry.key)) {
      // what it owns, deferred (left-out.ts); its partner's hosts keep its requirement
      problems.set(entry.key, [...verdict.problems, tooLarge]);
      if (entry.inboundCredential && !relayClaim.accounts.includes(entry.inboundCredential))
        cutLogins.add(entry.inboundCredential);
      const part: LeftOutPart = {
        key: entry.key,
        owned: ownedWhenLeftOut(entry, verdict),
        ...(hostRule ? { inbound: hostRule } : {}),
      };
      if (collapsed) leftOutParts.push(part);
      else {
        const deferred = leftOutDeferral(part, tooLarge);
        if (deferred) deferredPolicies.push(deferred);
      }
      continue;
    }
    // its material not all mounted in the relay's pods yet (render/mounted-sources.ts): left out,
    // its domains deferred, until the pod template takes it
    const unmounted =
      fit.mounted && entry.policy && !verdict.problems.length ? unmountedOf(entry, fit.mounted) : [];
    if (unmounted.length) {
      verdict = {
        ...verdict,
        problems: [mountPending(keyOf(relay), relay.spec.policyMountInterval, unmounted)],
        deferred: [...ownedWhenLeftOut(entry, verdict)],
      };
      addItems(pendingSecrets, entry.secrets);
      addItems(pendingConfigMaps, entry.configMaps);
    }
    if (verdict.problems.length || !entry.policy) {
      problems.set(entry.key, verdict.problems);
      if (entry.inboundCredential && !relayClaim.accounts.includes(entry.inboundCredential))
        heldCredentials.add(entry.inboundCredential);
      const deferred = deferredEntry(
        { key: entry.key, owned: verdict.deferred, ...(hostRule ? { inbound: hostRule } : {}) },
        verdict.problems.map((p) => `${p.reason}: ${p.message}`).join("; "),
        true,
      );
      if (deferred) deferredPolicies.push(deferred);
      continue;
    }
    // exceptions longer than this relay allows, or below its catch-all's floor, are left out (the
    // policy's status says Refused)
    const pol = forRelay(entry.policy, maxSeconds, floorFor(entry, claimantsOf, relayClaim.id));
    compiled.push(pol);
    tokens.set(entry.key, entry.token ?? "");
    for (const [name, c] of entry.credentials) credentials[name] = c;
    addItems(secretItems, entry.secrets);
    addItems(configMapItems, entry.configMaps);
    if (pol.outbound.nextHop) egress.add(pol.outbound.nextHop.port);
    // a TLS fallback's alternate next hop (an encryption portal) is a next hop too: without its port
    // the NetworkPolicy dropped every fallback delivery while the policy read Accepted
    const fb = pol.outbound.tlsFallback;
    if (fb?.action === "route") egress.add(fb.nextHop.port);
  }

  const catchAll = compiled.find((p) => p.domains.includes(CATCH_ALL));
  const spec = relay.spec;
  const inbound = spec.inbound;
  const queue = spec.queue;
  // relay-wide inbound accounts (e.g. mail clients on 587)
  const relayProblems: PolicyProblem[] = [];
  for (const ref of inbound.credentialRefs ?? []) {
    const refs = new Refs(ns, view);
    const credential = refs.credential(ref.name, ["password"], "inbound", "spec.inbound.credentialRefs");
    relayProblems.push(...refs.problems);
    if (!credential) continue;
    for (const [name, c] of refs.credentials) credentials[name] = c;
    addItems(secretItems, refs.secrets, relayPaths);
  }
  // one username, one login (login-names.ts): a second credential with a login's username is held
  for (const [name, problem] of shadowedLogins(
    ns,
    credentials,
    relayClaim.accounts,
    (n) => view.credentials.get(n)?.metadata.creationTimestamp,
  )) {
    heldCredentials.add(name);
    relayProblems.push(problem);
  }
  for (const name of cutLogins) if (credentials[name]) heldCredentials.add(name);
  // the recipients of the local domains: a missing ConfigMap keeps the inline list only (refusing
  // more, never accepting every address)
  const lr = inbound.localRecipients;
  let recipientFiles: string[] = [];
  if (lr?.configMapRef) {
    const refs = new Refs(ns, view);
    const path = refs.configMapKey(lr.configMapRef.name, lr.configMapRef.key);
    relayProblems.push(...refs.problems);
    addItems(configMapItems, refs.configMaps, relayPaths);
    if (path) recipientFiles = [path];
  }
  const own = compileOwnDomains(relay, view);
  for (const m of own.mounts) relayItem(secretItems, m.secret, m.key, m.path);
  if (tooLarge && collapsed)
    deferredPolicies.push(...collapsedDeferrals(keyOf(relay), leftOutParts, tooLarge, relayClaim));
  // DKIM signing domains and their keys (dkim.ts): a problem leaves the domain deferred, not unsigned
  const localDomains = (inbound.localDomains ?? []).map((d) => canonicalPattern(d) ?? d);
  const dkim = compileDkim(relay, localDomains, view);
  relayProblems.push(...dkim.problems);
  addItems(secretItems, dkim.secrets, relayPaths);
  const listeners = spec.listeners;
  // the /queue admin endpoints' bearer token (absent: they are disabled)
  const tokenRef = spec.admin?.tokenSecretRef;
  const adminToken = tokenRef ? secretPath(tokenRef.name, tokenRef.key) : undefined;
  if (tokenRef && adminToken) relayItem(secretItems, tokenRef.name, tokenRef.key, adminToken);
  // scale-down drain (relay/queue/drain.ts): a pod that goes hands its queue over to the fleet's
  // Service on 25, authenticated with the fleet's own key (relay/queue/handover.ts: the Secret
  // `<relay>-fleet` the operator creates); needs the admin token (the preStop hook calls the local
  // /queue/drain) and a direct (non-PROXY) smtp listener
  // Only the Secret the operator created for this very relay (references.ts ownFleetSecret): a
  // `<relay>-fleet` planted by anyone who may create Secrets, before the relay has an admin token or
  // while a replace has the old one garbage-collected, would hand them the fleet's AUTH (relaying).
  const fleetSecret = names.fleetSecret(relay.metadata.name ?? "");
  const fleetInfo = view.secrets.get(fleetSecret);
  const fleetKey =
    fleetInfo?.keys.has(FLEET_SECRET_KEY) && ownFleetSecret(fleetInfo, relay.metadata.uid)
      ? secretPath(fleetSecret, FLEET_SECRET_KEY)
      : undefined;
  if (fleetKey) relayItem(secretItems, fleetSecret, FLEET_SECRET_KEY, fleetKey);
  const handover =
    adminToken && fleetKey && listeners.smtp.enabled && !listeners.smtp.proxyProtocol?.enabled
      ? { host: `${names.service(relay.metadata.name ?? "")}.${ns}.svc`, port: listeners.smtp.port }
      : undefined;
  const input = {
    version: CONFIG_VERSION,
    relay: keyOf(relay),
    generation: relay.metadata.generation ?? 0,
    hostname: spec.hostname,
    selfAddresses: ownServiceAddresses(relay, view),
    listeners: {
      smtp: {
        enabled: listeners.smtp.enabled,
        port: listeners.smtp.port,
        host: "0.0.0.0",
        ...proxyOf(listeners.smtp, "smtp", relayProblems),
      },
      smtps: {
        enabled: listeners.smtps.enabled,
        port: listeners.smtps.port,
        host: "0.0.0.0",
        ...proxyOf(listeners.smtps, "smtps", relayProblems),
      },
      submission: {
        enabled: listeners.submission.enabled,
        port: listeners.submission.port,
        host: "0.0.0.0",
        ...proxyOf(listeners.submission, "submission", relayProblems),
      },
    },
    admin: { port: ADMIN_PORT, host: "0.0.0.0", ...(adminToken ? { tokenFile: adminToken } : {}) },
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    ...(fleetKey ? { fleet: { keyFile: fleetKey } } : {}),
    inbound: {
      require: inbound.require,
      relayFrom: keptRanges("spec.inbound.relayFrom", inbound.relayFrom, relayProblems),
      localDomains,
      ...(inbound.internalNextHop
        ? { internalNextHop: { host: inbound.internalNextHop.host, port: inbound.internalNextHop.port } }
        : {}),
      maxMessageSize: quantityBytes(inbound.maxMessageSize),
      maxRecipients: inbound.maxRecipients,
      // the report addresses exist (their mail is read as a report, relay/inbound/tlsrpt-recipient.ts)
      ...(lr
        ? {
            localRecipients: {
              addresses: [...(lr.addresses ?? []), ...own.reportAddresses],
              files: recipientFiles,
            },
          }
        : {}),
      hopLimit: inbound.hopLimit,
      // deleted: the relay refuses new mail (421) so its queue can empty (controllers/mailrelay/deletion.ts)
      ...(relay.metadata.deletionTimestamp ? { stopped: true } : {}),
      limits: {
        ipv6PrefixLength: inbound.ipv6ClientPrefixLength,
        // the cluster's IPv6 networks: one address per pod, counted by it (relay/inbound/throttle.ts)
        ipv6ExactClients: spec.service.clusterNetworks.filter((c) => c.includes(":")),
        hardErrorLimit: inbound.hardErrorLimit,
        maxCommandsPerSession: inbound.maxCommandsPerSession,
      },
    },
    delivery: {
      mxAddressLimit: spec.delivery.mxAddressLimit,
      mxSessionLimit: spec.delivery.mxSessionLimit,
      destinationConcurrencyLimit: spec.delivery.destinationConcurrencyLimit,
      attemptTimeoutSeconds: durationSeconds(spec.delivery.attemptTimeout),
      fetchTimeoutSeconds: durationSeconds(spec.delivery.fetchTimeout),
      allowedInternalCidrs: keptRanges(
        "spec.delivery.allowedInternalCidrs",
        spec.delivery.allowedInternalCidrs,
        relayProblems,
      ),
    },
    dkim: dkim.entries,
    credentials: Object.fromEntries(Object.entries(credentials).sort((a, b) => a[0].localeCompare(b[0]))),
    ...(spec.dns?.servers?.length ? { dns: { servers: [...spec.dns.servers] } } : {}),
    ...(own.ownDomains ? { ownDomains: own.ownDomains } : {}),
    ...compileTlsReporting(relay),
    policies: compiled.filter((p) => !p.domains.includes(CATCH_ALL)),
    deferredPolicies,
    heldCredentials: [...heldCredentials].sort(),
    ...(catchAll ? { defaultOutbound: catchAll.outbound, defaultOutboundPolicy: catchAll.name } : {}),
    queue: {
      dir: QUEUE_DIR,
      maxAge: Math.round(durationSeconds(queue.maxAge)),
      retry: { initial: durationSeconds(queue.retry.initial), max: durationSeconds(queue.retry.max) },
      // bodies in flight stay well inside the pod's memory limit (relay/queue/memory-budget.ts)
      memoryBytes: Math.floor(quantityBytes(spec.resources.limits.memory) / 4),
      // the volume's reserve for the queue's own writes (relay/queue/space-reserve.ts); absent: the
      // relay's default from maxMessageSize
      ...(queue.minFree !== undefined ? { minFreeBytes: quantityBytes(queue.minFree) } : {}),
      ...(handover ? { handover } : {}),
    },
  };
  if (handover) egress.add(handover.port);
  if (input.inbound.internalNextHop) egress.add(input.inbound.internalNextHop.port);
  const config = parseRelayConfig(input);
  const refProblems = checkReferences(config);
  if (refProblems.length)
    throw new Error(`compiled config fails the relay's checks: ${refProblems.join("; ")}`);
  const json = configJsonText(config);
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
    relayPaths,
    pending: [
      ...[...pendingSecrets].map(([name, m]) => source("secret", name, m)),
      ...[...pendingConfigMaps].map(([name, m]) => source("configMap", name, m)),
    ],
    egressPorts: [...egress].filter((p) => ![25, 465, 587].includes(p)).sort((a, b) => a - b),
    own,
  };
}

/** A listener's PROXY protocol; trusted ranges an older relay reads wider are left out (relay-ranges.ts). */
function proxyOf(
  l: { proxyProtocol?: { enabled: boolean; trustedCidrs: string[] } | undefined },
  name: string,
  problems: PolicyProblem[],
): {
  proxyProtocol?: { enabled: boolean; trustedCidrs: string[] };
} {
  // with none left, PROXY stays required and no peer is trusted: the listener refuses every
  // connection rather than take a client address from anyone
  return l.proxyProtocol?.enabled
    ? {
        proxyProtocol: {
          enabled: true,
          trustedCidrs: keptRanges(
            `spec.listeners.${name}.proxyProtocol.trustedCidrs`,
            l.proxyProtocol.trustedCidrs,
            problems,
          ),
        },
      }
    : {};
}

/** Adds `from`'s items (name, then key to path) to `into`; `paths`, when given, gets their paths. */
function addItems(
  into: Map<string, Map<string, string>>,
  from: ReadonlyMap<string, ReadonlyMap<string, string>>,
  paths?: Set<string>,
): void {
  for (const [name, m] of from)
    for (const [k, v] of m) {
      mapIn(into, name).set(k, v);
      paths?.add(v);
    }
}

function mapIn<K, V>(m: Map<K, Map<string, V>>, k: K): Map<string, V> {
  let v = m.get(k);
  if (!v) m.set(k, (v = new Map<string, V>()));
  return v;
}

/** The paths of `entry`'s material that `mounted` lacks. */
function unmountedOf(entry: PolicyEntry, mounted: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const items of [entry.secrets, entry.configMaps])
    for (const m of items.values()) for (const path of m.values()) if (!mounted.has(path)) out.push(path);
  return out.sort();
}

/** Why a policy whose material the relay's pods do not mount yet is left out (MountPending). */
function mountPending(relayKey: string, interval: string, unmounted: readonly string[]): PolicyProblem {
  const shown =
    unmounted.slice(0, 3).join(", ") + (unmounted.length > 3 ? ` and ${unmounted.length - 3} more` : "");
  return {
    reason: "MountPending",
    message: `relay ${relayKey}'s pods do not mount ${shown} yet: a Secret or ConfigMap new to a relay joins its pod template (which rolls every pod) at most once per the relay's spec.policyMountInterval (${interval}), so that no policy author can keep the relay's pods rolling, and only while the template has room for it (${MATERIAL_BUDGET_BYTES / 1024} KiB of mounted policy material, smallest first); the policy comes in then`,
  };
}

function source(kind: ProjectedSource["kind"], name: string, m: Map<string, string>): ProjectedSource {
  const items = [...m].sort((a, b) => a[0].localeCompare(b[0])).map(([key, path]) => ({ key, path }));
  return { kind, name, items, optional: true };
}
