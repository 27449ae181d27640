// Markdown tables of the figures.
import type { RelayFigures } from "./relay/index.js";

/** A Markdown table, columns padded to their widest cell. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(width[i]!)).join(" | ")} |`;
  return [fmt(head), fmt(width.map((w) => "-".repeat(w))), ...cells.slice(1).map(fmt)].join("\n");
}

const size = (b: number): string => (b >= 1 << 20 ? `${b / (1 << 20)} MB` : `${b / 1024} KB`);
const ratio = (a: number, b: number): string =>
  b > 0 && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : "n/a";

export function relayTable(figs: RelayFigures[]): string {
  const head = [
    "relay", "size", "C", "msgs", "delivered", "msg/s", "accept p50 ms", "accept p99 ms",
    "e2e p50 ms", "e2e p99 ms", "CPU s/1000", "peak RSS MB", "peak PSS MB", "procs", "conns out", "load1",
  ]; // prettier-ignore
  const rows: (string | number)[][] = [];
  const key = (f: RelayFigures): string => `${f.size}/${f.concurrency}/${f.messages}`;
  figs.forEach((f, i) => {
    rows.push([
      f.relay, size(f.size), f.concurrency, f.messages, `${f.delivered}${f.failed ? ` (${f.failed} failed)` : ""}`,
      f.deliveredPerSec, f.acceptP50Ms, f.acceptP99Ms, f.e2eP50Ms, f.e2eP99Ms, f.cpuSecondsPer1000,
      f.peakRssMb, f.peakPssMb, f.processes, f.outboundConnections, f.loadAvg1,
    ]); // prettier-ignore
    // after the second relay of a case: the ratios
    const other = figs.slice(0, i).find((x) => x.relay !== f.relay && key(x) === key(f));
    if (!other) return;
    const [s, p] = f.relay === "sealpost" ? [f, other] : [other, f];
    rows.push([
      "**Sealpost/Postfix**", size(f.size), f.concurrency, f.messages, "",
      ratio(s.deliveredPerSec, p.deliveredPerSec), ratio(s.acceptP50Ms, p.acceptP50Ms),
      ratio(s.acceptP99Ms, p.acceptP99Ms), ratio(s.e2eP50Ms, p.e2eP50Ms), ratio(s.e2eP99Ms, p.e2eP99Ms),
      ratio(s.cpuSecondsPer1000, p.cpuSecondsPer1000), ratio(s.peakRssMb, p.peakRssMb),
      ratio(s.peakPssMb, p.peakPssMb), "", ratio(s.outboundConnections, p.outboundConnections), "",
    ]); // prettier-ignore
  });
  return table(head, rows);
}
