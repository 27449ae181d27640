// What the relay does with each delivery event the Deliverer reports (relay/outbound/deliver.ts):
// metrics, the delivery log line, the per-policy figures of /status and, with TLS-RPT on, the TLS-RPT
// record of the attempt or of an MTA-STS policy failure.
import type { RelayConfig } from "./contract/config.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { DelivererDeps } from "./outbound/deliver.js";
import { eventOf, recordedPolicy, type TlsRptStore } from "./outbound/tlsrpt.js";
import { stsFailureEvent } from "./tlsrpt-reporting.js";
import type { PolicyFiguresBook } from "./queue/admin-api.js";
import type { AuditBook } from "./audit-figures.js";
import type { PartnerCertificates } from "./partner-certificates.js";
import type { TransitBook } from "./transit-figures.js";
import { transitOutcome } from "./outbound/transit-outcome.js";
import { clipped } from "./printable.js";
import { errorMessage } from "./contract/failure.js";

export interface ObserverDeps {
  metrics: Metrics;
  log: Logger;
  figures: PolicyFiguresBook;
  config: () => RelayConfig;
  /** Where TLS-RPT records go (undefined until reporting started). */
  tlsRpt: () => TlsRptStore | undefined;
  /** Shadow mode's figures and the partner certificate watch (absent: not kept). */
  audit?: AuditBook;
  certificates?: PartnerCertificates;
  /** The transport security report's figures (absent: not kept). */
  transit?: TransitBook;
}

/**
 * As many characters of an event's reason as its log line keeps. A reason comes from outside (a next
 * hop's reply, a WKD answer, a policy file, a certificate) and is logged per recipient and attempt:
 * each source is bounded where it is read, and the log line bounds it again here, in one place.
 */
export const MAX_LOGGED_REASON = 1024;

/** `r` as its log line writes it: its reason within MAX_LOGGED_REASON. */
function logged<T extends { reason?: string | undefined }>(r: T): T {
  return r.reason !== undefined && r.reason.length > MAX_LOGGED_REASON
    ? { ...r, reason: clipped(r.reason, MAX_LOGGED_REASON) }
    : r;
}

/** The keys a policy pins, enforced or audited: a certificate outside them is a key change to look at. */
function pinsOf(config: RelayConfig, policy: string): string[] {
  const tls = config.policies.find((p) => p.name === policy)?.outbound.tls;
  return [...(tls?.pins ?? []), ...(tls?.audit?.pins ?? [])];
}

type Observers = Required<
  Pick<
    DelivererDeps,
    "onMtaSts" | "onSmime" | "onFallback" | "onDkim" | "onOpenpgp" | "onAttempt" | "onTransmitted"
  >
>;

/**
 * The observers, each one's throw logged and swallowed: what the relay records of a delivery (a
 * metric, a book, a log line) never changes its outcome. Thrown into the Deliverer after a next hop's
 * 250, it discarded the results: the message was sent again at every retry and, at queue.maxAge,
 * reported to its sender as failed (scheduler.ts DELIVERY_ERROR).
 */
export function deliveryObservers(d: ObserverDeps): Observers {
  const o = observers(d);
  const guard =
    <A>(name: string, f: (a: A) => void) =>
    (a: A): void => {
      try {
        f(a);
      } catch (e) {
        d.log.error(
          { event: "observer-error", observer: name, err: errorMessage(e) },
          "delivery observer threw",
        );
      }
    };
  return {
    onMtaSts: guard("onMtaSts", o.onMtaSts),
    onSmime: guard("onSmime", o.onSmime),
    onFallback: guard("onFallback", o.onFallback),
    onDkim: guard("onDkim", o.onDkim),
    onOpenpgp: guard("onOpenpgp", o.onOpenpgp),
    onAttempt: guard("onAttempt", o.onAttempt),
    onTransmitted: guard("onTransmitted", o.onTransmitted),
  };
}

function observers(d: ObserverDeps): Observers {
  return {
    onTransmitted: (t) => {
      const o = transitOutcome(t.last, t.results);
      if (o) d.transit?.record(t.policy, t.domain, o);
    },
    onMtaSts: (r) => {
      d.metrics.mtaSts.inc({ policy: r.policy, sts_mode: r.stsMode, result: r.result });
      const bad = /mismatch|error|invalid/.test(r.result);
      const rpt = d.config().tlsRpt ? stsFailureEvent(r, Date.now()) : undefined;
      if (rpt) void d.tlsRpt()?.record(rpt);
      d.log[bad ? "warn" : "info"]({ event: "mta-sts", ...logged(r) }, `MTA-STS ${r.result}`);
    },
    onSmime: (r) => {
      for (const _ of r.recipients) d.metrics.smime.inc({ policy: r.policy, result: r.result });
      const level = r.result === "encrypted" || r.result === "signed-encrypted" ? "info" : "warn";
      d.log[level]({ event: "smime", ...logged(r) }, `S/MIME ${r.result}`);
    },
    onFallback: (r) => {
      for (const _ of r.recipients)
        d.metrics.tlsFallback.inc({
          policy: r.policy,
          action: r.action,
          trigger: r.trigger,
          result: r.result,
        });
      d.log.warn({ event: "tls-fallback", ...logged(r) }, `TLS fallback ${r.action} ${r.result}`);
    },
    onDkim: (r) => {
      for (const _ of r.recipients) d.metrics.dkim.inc({ domain: r.domain, result: r.result });
      d.log[r.result === "signed" ? "info" : "warn"]({ event: "dkim", ...logged(r) }, `DKIM ${r.result}`);
    },
    onOpenpgp: (r) => {
      for (const _ of r.recipients) d.metrics.openpgp.inc({ policy: r.policy, result: r.result });
      const level = r.result === "encrypted" || r.result === "signed-encrypted" ? "info" : "warn";
      d.log[level]({ event: "openpgp", ...logged(r) }, `OpenPGP ${r.result}`);
    },
    onAttempt: (a) => {
      // the attempt's log line first: a book below that throws (deliveryObservers' guard) loses its
      // own record, not the line an administrator reads
      const level = a.result === "delivered" || a.result === "partial" ? "info" : "warn";
      // the policy as the day's TLS-RPT file keeps it: a domain's policy text is bounded there too
      const line = logged(a.tlsPolicy ? { ...a, tlsPolicy: recordedPolicy(a.tlsPolicy) } : a);
      d.log[level]({ event: "delivery", ...line }, `delivery ${a.result}`);
      d.figures.record(a);
      const verdict = a.session?.audit;
      if (verdict && a.nextHop) {
        d.audit?.record(a.policy, a.nextHop, verdict.ok ? undefined : verdict.code);
        d.metrics.tlsAudit.inc({
          policy: a.policy,
          result: verdict.ok ? "pass" : "would-defer",
          code: verdict.ok ? "" : verdict.code,
        });
        if (!verdict.ok)
          d.log.warn(
            {
              event: "tls-audit",
              queueId: a.queueId,
              policy: a.policy,
              host: a.nextHop,
              code: verdict.code,
              reason: verdict.reason,
            },
            "audited TLS policy would have deferred",
          );
      }
      const peer = a.session?.peerSpki
        ? { spki: a.session.peerSpki, notAfter: a.session.peerNotAfter, issuer: a.session.peerIssuer }
        : a.peer;
      if (peer?.spki && peer.notAfter && a.nextHop) {
        d.certificates?.record(
          a.policy,
          a.nextHop,
          { spki: peer.spki, notAfter: peer.notAfter, ...(peer.issuer ? { issuer: peer.issuer } : {}) },
          pinsOf(d.config(), a.policy),
        );
      }
      const rpt = d.config().tlsRpt ? eventOf(a, Date.now()) : undefined;
      if (rpt) void d.tlsRpt()?.record(rpt);
      if (a.exception)
        d.metrics.tlsException.inc({ policy: a.policy, exception: a.exception, result: a.result });
      if (a.session?.tlsVersion) d.metrics.tls.inc({ direction: "outbound", version: a.session.tlsVersion });
    },
  };
}
