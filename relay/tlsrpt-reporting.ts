// TLS-RPT (RFC 8460) as the relay runs it: the record of an MTA-STS policy failure, and the daily
// reports of relay/outbound/tlsrpt.ts sent once each finished day (checked hourly and at start),
// mailto: reports through the relay's own queue.
import { hostname } from "node:os";
import type { LoadedConfig } from "./config/load.js";
import { fileOf } from "./config/load.js";
import type { Logger } from "./log.js";
import type { DestinationFilter } from "./net/address-class.js";
import type { MtaStsRecord } from "./outbound/deliver.js";
import type { Dns } from "./outbound/mx.js";
import {
  dayOf,
  MAX_TALLY_ENTRIES,
  TlsRptReporter,
  type ResultType,
  type TlsRptEvent,
  type TlsRptStore,
  reportSender,
} from "./outbound/tlsrpt.js";
import { LOCAL_PEERS, type Envelope } from "./queue/envelope.js";
import { newQueueId, type Spool } from "./queue/spool.js";

/** The TLS-RPT record of an MTA-STS lookup, when it is a policy failure (sts-*); else undefined. */
export function stsFailureEvent(r: MtaStsRecord, t: number): TlsRptEvent | undefined {
  const bad = /mismatch|error|invalid/.test(r.result);
  if (!bad || !r.result.startsWith("sts-")) return undefined;
  return {
    t,
    domain: r.domain,
    policy: { type: "sts", strings: [] },
    result: r.result as ResultType,
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

export interface TlsRptReportingDeps {
  store: TlsRptStore;
  spool: Spool;
  queue: { add(env: Envelope): void };
  log: Logger;
  loaded: () => LoadedConfig;
  dns: () => Dns | undefined;
  destinations: () => DestinationFilter;
  stopping: () => boolean;
}

export interface TlsRptReporting {
  store: TlsRptStore;
  reporter: TlsRptReporter;
  timer: NodeJS.Timeout;
}

export function startTlsRptReporting(d: TlsRptReportingDeps): TlsRptReporting {
  const reporter = new TlsRptReporter(
    {
      store: d.store,
      dns: () => d.dns(),
      meta: () => {
        const c = d.loaded().config;
        const t = c.tlsRpt ?? { organizationName: c.hostname, contactInfo: `postmaster@${c.hostname}` };
        return {
          organizationName: t.organizationName,
          contactInfo: t.contactInfo,
          submitter: c.hostname,
          instance: hostname(),
          from: reportSender(c),
        };
      },
      fetchDeadlineMs: () => d.loaded().config.delivery.fetchTimeoutSeconds * 1000,
      destinations: () => d.destinations(),
      // the reports of domains or policies past the tally's bound are not sent (tlsrpt.ts DayTally)
      onOmitted: (day, sessions) =>
        d.log.warn(
          { event: "tlsrpt-omitted", day, sessions, limit: MAX_TALLY_ENTRIES },
          `TLS-RPT: ${sessions} sessions of ${day} left out of its reports (more domains and policies than the day's ${MAX_TALLY_ENTRIES} entries)`,
        ),
      httpsCa: () => {
        const f = d.loaded().config.tlsRpt?.caFile;
        return f ? fileOf(d.loaded(), f) : undefined;
      },
      enqueue: async (from, to, message) => {
        const now = Date.now();
        const r = await d.spool.enqueue(
          {
            id: newQueueId(now),
            from,
            recipients: to.map((address) => ({ address, state: "pending" as const })),
            receivedAt: now,
            peer: LOCAL_PEERS.tlsRpt,
          },
          Buffer.alloc(0),
          message,
        );
        if (!r.ok) throw new Error(r.message);
        d.queue.add(r.value);
        return r.value.id;
      },
    },
    (day, sent) => {
      for (const r of sent)
        d.log[r.result === "failed" ? "warn" : "info"]({ event: "tlsrpt", day, ...r }, `TLS-RPT ${r.result}`);
    },
  );
  const tick = async (): Promise<void> => {
    if (!d.loaded().config.tlsRpt || d.stopping()) return;
    await reporter.due(dayOf(Date.now()));
  };
  const timer = setInterval(() => void tick().catch(() => undefined), 3_600_000);
  timer.unref();
  void tick().catch(() => undefined);
  return { store: d.store, reporter, timer };
}
