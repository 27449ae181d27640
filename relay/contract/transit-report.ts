// The per-partner transport security report (issue 19 item 6, as Exchange's Transit Security report):
// per policy and recipient domain over the last days, messages delivered by the protection they got,
// deferred and bounced by failure code. The relay counts (relay/transit-figures.ts) and serves it on
// /status `report`; the operator sums the fleet into the policy's status.report
// (operator/status/transit-report.ts); `sealpost report` renders that (cli/report/). The levels and
// the bounded reading of a pod's answer are declared here, once for both sides.
import { z } from "zod";

/**
 * What protected a delivered message, strongest first: DANE (TLSA match), MTA-STS (enforced policy),
 * pinned (the leaf's key among the policy's pins), verified (CA chain and name), encrypted (TLS, peer
 * not authenticated), clear (no TLS).
 */
export const TRANSIT_LEVELS = ["dane", "mta-sts", "pinned", "verified", "encrypted", "clear"] as const;
export type TransitLevel = (typeof TRANSIT_LEVELS)[number];

/** Counts of one domain (or of a whole policy). */
export interface TransitCounts {
  /** Messages delivered, by level. */
  delivered: Partial<Record<TransitLevel, number>>;
  /** Messages deferred (the attempt ended without delivery, retried later), by failure code. */
  deferred: Record<string, number>;
  /** Messages bounced (returned to the sender), by failure code. */
  bounced: Record<string, number>;
}

/** One policy's report on /status. */
export interface TransitFigures {
  windowDays: number;
  /** The oldest day (UTC, YYYY-MM-DD) counted. */
  since: string;
  /** Per recipient domain; past MAX_TRANSIT_DOMAINS the rest is summed under OTHER_DOMAINS. */
  domains: Record<string, TransitCounts>;
}

export const emptyCounts = (): TransitCounts => ({ delivered: {}, deferred: {}, bounced: {} });
const add = (into: Record<string, number>, from: Record<string, number | undefined>): void => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + (n ?? 0);
};

/** Adds `from` into `into` (the relay's days and the operator's pods sum the same way). */
export function addCounts(into: TransitCounts, from: TransitCounts): void {
  add(into.delivered, from.delivered);
  add(into.deferred, from.deferred);
  add(into.bounced, from.bounced);
}

/** Messages in all. */
export function countsTotal(c: TransitCounts): number {
  let n = 0;
  for (const m of [c.delivered, c.deferred, c.bounced]) for (const v of Object.values(m)) n += v ?? 0;
  return n;
}

/** Domains kept per policy on /status (the rest: one OTHER_DOMAINS row). */
export const MAX_TRANSIT_DOMAINS = 50;
export const OTHER_DOMAINS = "(others)";
/** A code that is not one of relay/contract/failure.ts's (an older or newer relay) counts as this. */
export const OTHER_CODE = "OTHER";

const MAX_CODES = 64;
const Count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).catch(0);

/** Key -> count, at most `max` keys, keys matching `key`; anything else dropped. */
const Counts = (key: RegExp, max: number) =>
  z
    .record(z.string(), z.unknown())
    .catch({})
    .transform((r) => {
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(r).slice(0, max)) if (key.test(k)) out[k] = Count.parse(v);
      return out;
    });

const LEVEL_KEY = new RegExp(`^(${TRANSIT_LEVELS.join("|")})$`);
const CODE_KEY = /^[A-Z0-9_]{1,64}$/;

const TransitCountsSchema = z
  .object({
    delivered: Counts(LEVEL_KEY, TRANSIT_LEVELS.length),
    deferred: Counts(CODE_KEY, MAX_CODES),
    bounced: Counts(CODE_KEY, MAX_CODES),
  })
  .transform((c): TransitCounts => c);

const TransitFiguresSchema = z
  .object({
    windowDays: Count,
    since: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    domains: z
      .record(z.string(), z.unknown())
      .catch({})
      .transform((r) => {
        const out: Record<string, TransitCounts> = {};
        for (const [d, v] of Object.entries(r).slice(0, MAX_TRANSIT_DOMAINS + 1)) {
          const c = TransitCountsSchema.safeParse(v);
          if (d.length <= 253 && c.success) out[d] = c.data;
        }
        return out;
      }),
  })
  .transform((f): TransitFigures => f);

/** One policy's report as the operator reads it from an untrusted /status; undefined when malformed. */
export function readTransitFigures(v: unknown): TransitFigures | undefined {
  const r = TransitFiguresSchema.safeParse(v);
  return r.success ? r.data : undefined;
}
