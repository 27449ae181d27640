// How far V8 lets the operator's heap grow past what survived its last full collection (issue 18:
// 10,000 MailDomainPolicies within 200 MB of RSS). V8 picks that factor itself, between 1.1 and 4,
// from how fast it collects: with 10,000 policies the operator's live heap is 55-60 MB, but the
// burst's garbage (each relay compile's config.json and fingerprint, every status PATCH's body and
// reply, every watch event; promoted early by the chart's 2 MiB semi-spaces) grew the heap to 160 MB
// before a full collection, and the process to 240-280 MB of RSS. A factor of 1.3 collects at
// 1.3x the live heap: peak RSS 160-185 MB at 10,000, with no more operator CPU in the bench
// (docs/benchmarks.md, "operator memory at 10,000"). --optimize-for-size reached the same for 30%
// more CPU. Set here, not in the chart's NODE_OPTIONS, because Node accepts only a few V8 flags
// there (this one is refused); V8 reads it at every limit it computes, so setting it at start holds.
// A --heap-growing-percent given on node's command line wins.
import { setFlagsFromString } from "node:v8";

export const HEAP_GROWING_PERCENT = 30;

/** Sets V8's heap growing factor to 1 + percent/100, unless node's own command line set one. */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
