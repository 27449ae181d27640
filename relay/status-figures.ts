// Which per-policy figures /status carries: all of them while they fit FIGURES_BUDGET bytes, else
// the policies with the fewest bytes of them first. Pure.
//
// The figures (partner certificates, the shadow-mode audit, the transport report) grow with what a
// policy's mail did: a policy author whose policies send to many hosts of its own (their MX names,
// their subdomains) adds about 30 KB a policy, and an answer past the 4 MiB the operator's probe reads
// (operator/controllers/relay-probe.ts) left the operator blind to the relay's configuration for
// every tenant (test/mail/attack-status-figures-budget.test.ts). Leaving out the largest first keeps
// the most policies' figures and takes them from whoever inflated theirs; `figuresOmitted` says how
// many were left out (the books keep them: the next answer may carry them again).
import type { RelayStatus } from "./contract/status.js";

/** Bytes of per-policy figures one /status answer carries at most: half of what the operator reads. */
export const FIGURES_BUDGET = 2 * 1024 * 1024;

type Figures = Pick<RelayStatus, "audit" | "partnerCertificates" | "report">;

/** `all` within `budget` bytes of JSON, the policies with the most bytes left out first. */
export function figuresWithinBudget(
  all: Required<Figures>,
  budget = FIGURES_BUDGET,
): Figures & Pick<RelayStatus, "figuresOmitted"> {
  const keys = new Set([
    ...Object.keys(all.audit),
    ...Object.keys(all.partnerCertificates),
    ...Object.keys(all.report),
  ]);
  const sized = [...keys].map((k) => ({
    k,
    bytes: k.length + bytesOf(all.audit[k]) + bytesOf(all.partnerCertificates[k]) + bytesOf(all.report[k]),
  }));
  const total = sized.reduce((s, x) => s + x.bytes, 0);
  let kept: ReadonlySet<string> = keys;
  if (total > budget) {
    sized.sort((a, b) => a.bytes - b.bytes || a.k.localeCompare(b.k));
    const within = new Set<string>();
    let used = 0;
    for (const { k, bytes } of sized) {
      if (used + bytes > budget) break;
      used += bytes;
      within.add(k);
    }
    kept = within;
  }
  const pick = <T>(m: Record<string, T>): Record<string, T> | undefined => {
    const out: Record<string, T> = {};
    for (const [k, v] of Object.entries(m)) if (kept.has(k)) out[k] = v;
    return Object.keys(out).length ? out : undefined;
  };
  const audit = pick(all.audit);
  const partnerCertificates = pick(all.partnerCertificates);
  const report = pick(all.report);
  return {
    ...(audit ? { audit } : {}),
    ...(partnerCertificates ? { partnerCertificates } : {}),
    ...(report ? { report } : {}),
    ...(kept.size < keys.size ? { figuresOmitted: keys.size - kept.size } : {}),
  };
}

const bytesOf = (v: unknown): number => (v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v)));
