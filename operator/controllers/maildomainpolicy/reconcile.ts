// MailDomainPolicy reconciler: status only (the relays own the config). For each relay that selects
// the policy it compiles that relay (pure, from the caches) to learn whether the policy is in its
// config or why not; Accepted when it is in every selecting relay's config, Enforced when every
// ready pod of those relays reports (admin /status) the config hash that contains it.
// status.lastDelivery and status.counters come from the same /status answers (`policies`): summed over
// the ready pods of those relays, written only when they change, refreshed every figuresPollMs.
import type { PolicyProblem } from "../../compile/problems.js";
import {
  DEFAULT_CERTIFICATE_EXPIRY_WARNING,
  durationSeconds,
  type MailDomainPolicy,
  type MailRelay,
} from "../../api.js";
import type { ReconcileResult } from "../../runtime/controller.js";
import { keyOf, splitKey } from "../../objects.js";
import type { ReconcilerDeps } from "../deps.js";
import { probeRelay, relayAdminToken } from "../relay-probe.js";
import { writeStatus } from "../status-write.js";
import { claimRecords, relayIdOf } from "../../compile/claim-age.js";
import { claimedDomains } from "../../compile/domain-claims.js";
import {
  policyAccepted,
  policyEnforced,
  policyPartnerCertificates,
  policyReady,
  policySafeToEnforce,
  policyExceptions,
  worthProbing,
  type PolicyFacts,
} from "./conditions.js";
import type { LastDelivery, PartnerCertificate, PodReport } from "../../../relay/contract/status.js";
import type { ConditionInput } from "../../runtime/conditions.js";
import { auditSummary, partnerCertificates, type AuditSummary } from "../../status/tls-watch.js";
import { domainsSummary } from "../../status/domains-summary.js";
import { transitSummary, type TransitSummary } from "../../status/transit-report.js";
import {
  exceptionVerdicts,
  nextExceptionChange,
  relayMaxSeconds,
  type RelayMax,
} from "../../compile/exceptions.js";
import { exceptionEvents, exceptionsStatus } from "../../status/policy-exceptions.js";
import { policyCheck } from "./check.js";

interface FigureFields {
  lastDelivery?: LastDelivery;
  counters?: { deliveries: number; deferrals: number; bounces: number };
}

/**
 * The policy's figures from its pods' reports: counters summed, the newest last delivery. Pods that
 * did not answer, or answered without figures, count for nothing; with no figures at all the previous
 * status stays (a probe hiccup does not blank the columns). The last delivery never goes back in time.
 */
export function figuresFor(key: string, reports: PodReport[], prev: FigureFields): FigureFields {
  const withFigures = reports.filter((r) => r.policies !== undefined);
  if (!withFigures.length)
    return {
      ...(prev.lastDelivery ? { lastDelivery: prev.lastDelivery } : {}),
      ...(prev.counters ? { counters: prev.counters } : {}),
    };
  const counters = { deliveries: 0, deferrals: 0, bounces: 0 };
  let last: LastDelivery | undefined = prev.lastDelivery;
  for (const r of withFigures) {
    const f = r.policies![key];
    if (!f) continue;
    counters.deliveries += f.deliveries;
    counters.deferrals += f.deferrals;
    counters.bounces += f.bounces;
    if (f.lastDelivery && (!last || Date.parse(f.lastDelivery.time) > Date.parse(last.time)))
      last = f.lastDelivery;
  }
  return { ...(last ? { lastDelivery: last } : {}), counters };
}

interface WatchFields {
  report?: TransitSummary;
  audit?: AuditSummary;
  partnerCertificates?: PartnerCertificate[];
}

/**
 * Shadow mode and the certificate watch (issue 19): the fleet's figures and their conditions. Like
 * the counters, a round without any answer keeps the previous figures.
 */
export function tlsWatch(
  raw: MailDomainPolicy | { spec?: unknown },
  key: string,
  reports: PodReport[],
  prev: WatchFields,
  now: Date,
  g: number | undefined,
): { fields: WatchFields; conditions: ConditionInput[] } {
  const tls = (raw.spec as MailDomainPolicy["spec"] | undefined)?.outbound?.tls;
  const answered = reports.some((r) => r.policies !== undefined);
  const audited = tls?.audit !== undefined;
  const audit = audited ? (answered ? auditSummary(key, reports) : prev.audit) : undefined;
  const certs = answered
    ? (partnerCertificates(key, reports) ?? prev.partnerCertificates)
    : prev.partnerCertificates;
  let windowSeconds = durationSeconds(DEFAULT_CERTIFICATE_EXPIRY_WARNING);
  try {
    if (tls?.certificateExpiryWarning) windowSeconds = durationSeconds(tls.certificateExpiryWarning);
  } catch {
    // the apiserver validated the pattern; an unreadable one keeps the default
  }
  const conditions = [
    policySafeToEnforce({ audited, ...(audit ? { figures: audit } : {}) }, g),
    policyPartnerCertificates({ ...(certs ? { certificates: certs } : {}), windowSeconds, now }, g),
  ].filter((c): c is ConditionInput => c !== undefined);
  return {
    fields: { ...(audit ? { audit } : {}), ...(certs ? { partnerCertificates: certs } : {}) },
    conditions,
  };
}

/** The transport security report; like the counters, a round without any answer keeps the previous one. */
function transitReport(key: string, reports: PodReport[], prev: TransitSummary | undefined): WatchFields {
  const answered = reports.some((r) => r.policies !== undefined);
  const report = answered ? transitSummary(key, reports) : prev;
  return report ? { report } : {};
}

export async function reconcileMailDomainPolicy(
  deps: ReconcilerDeps,
  key: string,
): Promise<ReconcileResult | void> {
  const { namespace, name } = splitKey(key);
  const raw = deps.state.caches.policies.get(namespace, name);
  if (!raw || raw.metadata.deletionTimestamp) return;
  const generation = raw.metadata.generation;
  const relays = deps.state.relaysSelecting(raw);
  const problems: PolicyProblem[] = [];
  const included: { relay: string; relayObj: MailRelay }[] = [];
  // the exceptions' limits: each selecting relay's maxDuration and catch-all floor (compile/exceptions.ts)
  const maxima: RelayMax[] = [];
  // the domains its relays defer while it is left out (it never falls to a weaker route)
  const deferred = new Set<string>();
  for (const relayObject of relays) {
    const relay = deps.compiler.parsedRelay(relayObject);
    if (!relay) continue;
    const floor = deps.compiler.floorOf(relay, raw);
    maxima.push({
      relay: keyOf(relayObject),
      maxSeconds: relayMaxSeconds(relay),
      ...(floor ? { floor } : {}),
    });
    // this policy's part of the relay's compile, without compiling the relay's other policies
    const verdict = deps.compiler.verdict(relay, raw);
    if (!verdict) continue; // the relay's own problem, reported on the MailRelay
    if (verdict.included) included.push({ relay: keyOf(relayObject), relayObj: relay });
    else {
      for (const problem of verdict.problems)
        if (!problems.some((x) => x.reason === problem.reason && x.message === problem.message))
          problems.push(problem);
      for (const domain of verdict.deferred) deferred.add(domain);
    }
  }
  // no relay selects it: its own problems (spec, references) still show
  if (!relays.length) problems.push(...deps.compiler.policyEntry(raw).problems);
  const facts: PolicyFacts = {
    selectingRelays: relays.length,
    includedIn: included.map((i) => i.relay),
    problems,
    deferred: [...deferred],
  };
  const accepted = policyAccepted(facts, generation);

  let ready = 0;
  const behind: string[] = [];
  const refused: { pod: string; error: string }[] = [];
  const reports: PodReport[] = [];
  if (worthProbing(accepted, facts))
    for (const i of included) {
      const pods = deps.state.readyPods(i.relayObj);
      if (!pods.length) continue;
      // a pod is current when the config it reports enforces this policy as it is now: a config
      // compiled before another policy changed still does (no N status writes per config revision)
      const enforces = (configHash: string): boolean => {
        let known = deps.compiler.configEnforces(i.relayObj, configHash, raw);
        if (known === undefined) {
          try {
            deps.compiler.compile(i.relayObj); // the current config (memoised), then look again
          } catch {
            return false;
          }
          known = deps.compiler.configEnforces(i.relayObj, configHash, raw);
        }
        return known === true;
      };
      const pr = await probeRelay(deps, pods, enforces, await relayAdminToken(deps, i.relayObj));
      ready += pr.ready;
      behind.push(...pr.behind.map((p) => `${namespace}/${p}`));
      refused.push(...pr.refused.map((r) => ({ pod: `${namespace}/${r.pod}`, error: r.error })));
      reports.push(...pr.reports.map((r) => r.report));
    }
  const enforced = policyEnforced(
    accepted,
    facts,
    { readyPods: ready, behindPods: behind, refusedPods: refused },
    generation,
  );
  const readyCond = policyReady(accepted, enforced, generation);
  const prev = (raw.status ?? {}) as FigureFields & WatchFields;
  const figures = figuresFor(key, reports, prev);
  const domains = domainsSummary((raw.spec as { domains?: unknown } | undefined)?.domains);
  const watch = tlsWatch(raw, key, reports, prev, deps.now(), generation);
  const now = deps.now().getTime();
  const exceptions = exceptionVerdicts(raw, now, maxima);
  const exceptionsCondition = policyExceptions(exceptions, generation);
  const report = transitReport(key, reports, prev.report);
  // the pre-flight check on request (annotation sealpost.dev/check), asked of a relay that runs it
  const check = policyCheck(
    deps,
    raw,
    key,
    included.map((i) => i.relayObj),
    generation,
  );
  const written = deps.written.current(`${raw.kind ?? ""}/${key}`, raw) as
    { exceptions?: Parameters<typeof exceptionEvents>[0] } | undefined;
  // when each domain was first claimed, and since when each relay selects it: what decides a
  // contested domain (compile/claim-age.ts)
  deps.compiler.selectedNowBy(
    key,
    relays.map((r) => relayIdOf(r.metadata)),
  );
  const records = claimRecords(
    raw,
    claimedDomains(raw),
    relays,
    deps.now(),
    written,
    (r) => {
      const parsed = deps.compiler.parsedRelay(r);
      return parsed ? deps.compiler.selectedAtBirth(parsed, key) : false;
    },
    deps.compiler.policyEntry(raw).bytes,
  );
  const wrote = await writeStatus(
    deps,
    raw,
    {
      observedGeneration: generation,
      domains,
      ...records,
      ...figures,
      ...watch.fields,
      ...report,
      ...exceptionsStatus(exceptions),
      check: check.check,
    },
    [
      readyCond,
      accepted,
      enforced,
      ...watch.conditions,
      ...(exceptionsCondition ? [exceptionsCondition] : []),
      ...(check.condition ? [check.condition] : []),
    ],
  );
  if (wrote)
    for (const e of exceptionEvents(written?.exceptions, exceptions)) await deps.events.record(raw, e);
  // relay figures change without a cluster event: look again while there are pods to ask; an
  // exception starts or ends without one too, and an unanswered check is asked again
  const again =
    enforced.reason === "Pending"
      ? Math.min(deps.enforcePollMs, deps.figuresPollMs)
      : ready
        ? deps.figuresPollMs
        : undefined;
  const soonest = Math.min(
    again ?? Infinity,
    nextExceptionChange([raw], now) ?? Infinity,
    check.requeueAfterMs ?? Infinity,
  );
  if (soonest !== Infinity) return { requeueAfterMs: soonest };
}
