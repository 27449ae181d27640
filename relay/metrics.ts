// Prometheus metrics, in the relay's own Registry (no global state: several relays can run in one
// test process).
import { X509Certificate } from "node:crypto";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { DEFAULT_POLICY } from "./outbound/route.js";

/**
 * Buckets of the delivery delay (seconds): a second to the queue's default lifetime (5 days), where a
 * mail administrator reads "delivered within a minute / an hour / a day".
 */
export const DELIVERY_DELAY_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 5 * 86_400];

export interface QueueStats {
  depth(): number;
  oldestAgeSeconds(): number;
}

/** The queue volume's free space and its reserve (relay/queue/free-space.ts, space-reserve.ts). */
export interface VolumeStats {
  /** Estimated free bytes; undefined: unreadable. */
  freeBytes(): number | undefined;
  reserveBytes(): number;
}

/** The body admission's places (relay/inbound/body-admission.ts). */
export interface AdmissionStats {
  stats(): { used: number; waiting: number };
}

/** Domains whose MTA-STS policy could not be fetched at the last fetch, lookup or refresh (relay/outbound/mta-sts.ts). */
export interface StsProblemStats {
  fetchProblems(): { cached: boolean }[];
}

/** The partner certificate watch (partner-certificates.ts): its hosts per policy. */
export interface PartnerCertificateStats {
  snapshot(): Record<string, { host: string; notAfter: string }[]>;
}

export function createMetrics() {
  const registry = new Registry();
  let stats: QueueStats = { depth: () => 0, oldestAgeSeconds: () => 0 };
  let sts: StsProblemStats = { fetchProblems: () => [] };
  let admission: AdmissionStats = { stats: () => ({ used: 0, waiting: 0 }) };
  let certificates: PartnerCertificateStats = { snapshot: () => ({}) };
  let volume: VolumeStats = { freeBytes: () => undefined, reserveBytes: () => 0 };
  const p = "sealpost_relay_";
  const m = {
    registry,
    accepted: new Counter({
      name: `${p}messages_accepted_total`,
      help: "Messages queued (250 sent).",
      labelNames: ["listener"],
      registers: [registry],
    }),
    rejected: new Counter({
      name: `${p}inbound_rejected_total`,
      help: "Inbound commands refused, by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    delivered: new Counter({
      name: `${p}recipients_delivered_total`,
      help: "Recipients accepted by the next hop.",
      labelNames: ["policy"],
      registers: [registry],
    }),
    deferred: new Counter({
      name: `${p}deliveries_deferred_total`,
      help: "Deferred delivery attempts, by reason.",
      labelNames: ["policy", "reason"],
      registers: [registry],
    }),
    bounced: new Counter({
      name: `${p}recipients_bounced_total`,
      help: "Recipients given up on (5xx or expired).",
      labelNames: ["policy", "reason"],
      registers: [registry],
    }),
    tls: new Counter({
      name: `${p}tls_sessions_total`,
      help: "TLS sessions by direction and protocol version.",
      labelNames: ["direction", "version"],
      registers: [registry],
    }),
    smime: new Counter({
      name: `${p}smime_recipients_total`,
      help: "S/MIME outcomes per recipient: encrypted, signed-encrypted, sent-clear, deferred, bounced, failed.",
      labelNames: ["policy", "result"],
      registers: [registry],
    }),
    tlsFallback: new Counter({
      name: `${p}tls_fallback_recipients_total`,
      help: "Recipients whose policy's TLS requirement could not be met on any hop and went through its fallback (smime or route), by the TLS failure that triggered it and the fallback's result: delivered, deferred, failed.",
      labelNames: ["policy", "action", "trigger", "result"],
      registers: [registry],
    }),
    dkim: new Counter({
      name: `${p}dkim_recipients_total`,
      help: "DKIM outcomes per recipient of a listed signing domain: signed, deferred (key missing or invalid).",
      labelNames: ["domain", "result"],
      registers: [registry],
    }),
    openpgp: new Counter({
      name: `${p}openpgp_recipients_total`,
      help: "OpenPGP outcomes per recipient: encrypted, signed-encrypted, sent-clear, deferred, bounced, failed.",
      labelNames: ["policy", "result"],
      registers: [registry],
    }),
    mtaSts: new Counter({
      name: `${p}mta_sts_total`,
      help: "MTA-STS decisions per delivery: enforced, not-enforced, mx-mismatch, testing-mx-mismatch, sts-policy-fetch-error, ...",
      labelNames: ["policy", "sts_mode", "result"],
      registers: [registry],
    }),
    reloads: new Counter({
      name: `${p}config_reloads_total`,
      help: "Config reloads by result.",
      labelNames: ["result"],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: `${p}inbound_auth_failures_total`,
      help: "Failed inbound AUTH attempts.",
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: `${p}queue_depth`,
      help: "Messages in the queue.",
      registers: [registry],
      collect() {
        this.set(stats.depth());
      },
    }),
    journalDamaged: new Gauge({
      name: `${p}journal_damaged_segments`,
      help: "Journal segments found damaged at the pod's start, or kept aside by an earlier start and still there: records that do not check although a later round of the segment says they were acknowledged (a bad sector, a flipped bit). Their messages are lost (each logged as queue-error); the segment is kept as journal/<seq>.log.damaged, never recycled. Above 0: check the volume.",
      registers: [registry],
    }),
    queueVolumeFree: new Gauge({
      name: `${p}queue_volume_free_bytes`,
      help: "Free bytes on the queue volume (statfs, read once a second, less what the queue wrote since). Below queue_volume_reserve_bytes, new mail is refused with 452 4.3.1 while deliveries, DSNs and the queue's records still write: grow the volume, or find why the queue does not drain.",
      registers: [registry],
      collect() {
        const free = volume.freeBytes();
        if (free === undefined) this.reset();
        else this.set(free);
      },
    }),
    queueVolumeReserve: new Gauge({
      name: `${p}queue_volume_reserve_bytes`,
      help: "Bytes of the queue volume new mail may not take (spec.queue.minFree; default 1.5 x maxMessageSize, at least 8 MiB; 0: none).",
      registers: [registry],
      collect() {
        this.set(volume.reserveBytes());
      },
    }),
    storageRefusals: new Counter({
      name: `${p}queue_storage_refusals_total`,
      help: "New transactions refused with 452 4.3.1 because the queue volume's free space is within its reserve, by stage: MAIL (with its SIZE=) or DATA (the message received).",
      labelNames: ["stage"],
      registers: [registry],
    }),
    queueOldest: new Gauge({
      name: `${p}queue_oldest_age_seconds`,
      help: "Age of the oldest queued message.",
      registers: [registry],
      collect() {
        this.set(stats.oldestAgeSeconds());
      },
    }),
    mtaStsFetchFailing: new Gauge({
      name: `${p}mta_sts_fetch_failing_domains`,
      help: "Recipient domains whose published MTA-STS policy could not be fetched at their last fetch (a lookup or the daily refresh); cached=true: an unexpired cached policy still applies (RFC 8461 5.1), cached=false: delivery falls back to opportunistic TLS. Above 0 for long: check HTTPS egress (port 443) and DNS.",
      labelNames: ["cached"],
      registers: [registry],
      collect() {
        const all = sts.fetchProblems();
        const withCache = all.filter((x) => x.cached).length;
        this.set({ cached: "true" }, withCache);
        this.set({ cached: "false" }, all.length - withCache);
      },
    }),
    deliveryDelay: new Histogram({
      name: `${p}delivery_delay_seconds`,
      help: "Seconds from a message's 250 to its recipient's final outcome: status sent (the next hop took it) or bounced (5xx, expired).",
      labelNames: ["status"],
      buckets: DELIVERY_DELAY_BUCKETS,
      registers: [registry],
    }),
    admissionWait: new Histogram({
      name: `${p}inbound_admission_wait_seconds`,
      help: "Seconds a transaction waited at its first RCPT TO for its place among the bodies being taken (relay/inbound/body-admission.ts); outcome overdue: admitted by the wait's bound, the bodies ahead still not taken.",
      labelNames: ["outcome"],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    admissionWaiting: new Gauge({
      name: `${p}inbound_admission_waiting`,
      help: "Transactions waiting at their first RCPT TO for a place among the bodies being taken.",
      registers: [registry],
      collect() {
        this.set(admission.stats().waiting);
      },
    }),
    admissionBytes: new Gauge({
      name: `${p}inbound_admission_bytes`,
      help: "Bytes the admitted transactions count for (declared or estimated; at most the 8 MiB window while nobody is overdue).",
      registers: [registry],
      collect() {
        this.set(admission.stats().used);
      },
    }),
    certificateExpiry: new Gauge({
      name: `${p}certificate_expiry_timestamp_seconds`,
      help: "Not-after (Unix seconds) of the server certificate the relay's listeners present, as loaded (updated on reload).",
      registers: [registry],
    }),
    tlsAudit: new Counter({
      name: `${p}tls_audit_sessions_total`,
      help: "Shadow mode (MailDomainPolicy tls.audit): sessions evaluated against the audited policy; result pass or would-defer, code the failure code it would have deferred with.",
      labelNames: ["policy", "result", "code"],
      registers: [registry],
    }),
    tlsException: new Counter({
      name: `${p}tls_exception_attempts_total`,
      help: "Delivery attempts (hops) resolved under a MailDomainPolicy exception (spec.exceptions): the policy was relaxed for them; result delivered, partial, deferred or failed.",
      labelNames: ["policy", "exception", "result"],
      registers: [registry],
    }),
    // read from the watch's book at each scrape, so its series are the book's (at most 50 hosts per
    // policy, none unseen for 30 days): set per session, it kept one series for every MX host name a
    // sender or a DNS answer ever named (state review, round 7)
    partnerCertificateExpiry: new Gauge({
      name: `${p}partner_certificate_expiry_timestamp_seconds`,
      help: "Not-after (Unix seconds) of the certificate a partner's next hop presented at its last session, per MailDomainPolicy and host (the partner certificate watch; the default route's hosts only in the token's /status).",
      labelNames: ["policy", "host"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [policy, list] of Object.entries(certificates.snapshot())) {
          // the default route's hosts are whatever domains the relay delivered to: /metrics answers
          // anyone on the pod network, so they stay in the token's /status (attack review, session 11)
          if (policy === DEFAULT_POLICY) continue;
          for (const c of list) {
            const t = Date.parse(c.notAfter);
            if (Number.isFinite(t)) this.set({ policy, host: c.host }, Math.floor(t / 1000));
          }
        }
      },
    }),
    configInfo: new Gauge({
      name: `${p}config_info`,
      help: "The loaded config (value 1).",
      labelNames: ["hash", "generation"],
      registers: [registry],
    }),
    bindQueue(s: QueueStats): void {
      stats = s;
    },
    bindVolume(s: VolumeStats): void {
      volume = s;
    },
    bindAdmission(s: AdmissionStats): void {
      admission = s;
    },
    bindMtaSts(s: StsProblemStats): void {
      sts = s;
    },
    bindPartnerCertificates(s: PartnerCertificateStats): void {
      certificates = s;
    },
    /** The loaded server certificate (PEM, leaf first): its not-after; unreadable: no value. */
    serverCertificate(pem: Buffer): void {
      try {
        m.certificateExpiry.set(Date.parse(new X509Certificate(pem).validTo) / 1000);
      } catch {
        m.certificateExpiry.reset(); // loadConfig checked it: not reached in practice
      }
    },
  };
  for (const r of ["ok", "failed"]) m.reloads.inc({ result: r }, 0);
  for (const stage of ["MAIL", "DATA"]) m.storageRefusals.inc({ stage }, 0);
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
