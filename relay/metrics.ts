// Prometheus metrics, in the relay's own Registry (no global state: several relays can run in one
// test process).
import { Counter, Gauge, Registry } from "prom-client";

export interface QueueStats {
  depth(): number;
  oldestAgeSeconds(): number;
}

export function createMetrics() {
  const registry = new Registry();
  let stats: QueueStats = { depth: () => 0, oldestAgeSeconds: () => 0 };
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
    queueOldest: new Gauge({
      name: `${p}queue_oldest_age_seconds`,
      help: "Age of the oldest queued message.",
      registers: [registry],
      collect() {
        this.set(stats.oldestAgeSeconds());
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
  };
  for (const r of ["ok", "failed"]) m.reloads.inc({ result: r }, 0);
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
