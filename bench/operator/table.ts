// Markdown tables of the operator figures: the burst and the change, and the two cold starts.
import { table } from "../table.js";
import type { ColdStartFigures, OperatorFigures } from "./index.js";

const no = (ok: boolean): string => (ok ? "" : " (**no**)");
const kb = (b: number): number => Math.round(b / 102.4) / 10;
const ratio = (a: number, b: number | undefined): number | string =>
  b ? Math.round((a / b) * 100) / 100 : "";

export function operatorBurstTable(figs: OperatorFigures[]): string {
  const head = [
    "policies", "relays", "create s", "converge s", "floor s", "converge / floor", "floor watched s",
    "converge / floor watched", "after last POST s",
    "writes", "writes/policy", "writes +3 s", "connections", "reconciles (policy/relay)", "change s", "change writes",
    "config.json KB", "gzip KB", "CPU s", "apiserver+etcd CPU s", "peak RSS MB",
  ]; // prettier-ignore
  return table(
    head,
    figs.map((f) => [
      f.policies, f.relays, f.createSeconds, `${f.convergeSeconds}${no(f.converged)}`, f.floor?.seconds ?? "",
      ratio(f.convergeSeconds, f.floor?.seconds), f.floor?.watchedSeconds ?? "",
      ratio(f.convergeSeconds, f.floor?.watchedSeconds), f.afterLastPostSeconds,
      f.writes, f.writesPerPolicy, f.writesAfterSettle, f.connections,
      `${f.reconciles.maildomainpolicy ?? 0}/${f.reconciles.mailrelay ?? 0}`,
      `${f.changeConvergeSeconds}${no(f.changeConverged)}`, f.changeWrites, kb(f.configJsonBytes), kb(f.configBytes),
      f.operatorCpuSeconds, f.controlPlaneCpuSeconds ?? "", f.operatorPeakRssMb,
    ]), // prettier-ignore
  );
}

export function operatorColdStartTable(figs: OperatorFigures[]): string {
  const rows: (string | number)[][] = [];
  for (const f of figs)
    for (const c of [f.coldStart, f.coldStartNoStatus].filter((x): x is ColdStartFigures => !!x))
      rows.push([
        f.policies, c.statuses === "accepted" ? "Accepted" : "none", c.readySeconds,
        `${c.convergeSeconds}${no(c.converged)}`, c.writes, c.writesAfterSettle,
        `${c.reconciles.maildomainpolicy ?? 0}/${c.reconciles.mailrelay ?? 0}`, c.connections, c.cpuSeconds,
        c.controlPlaneCpuSeconds ?? "", c.peakRssMb,
      ]); // prettier-ignore
  const head = [
    "policies", "statuses at start", "ready s", "converged s", "writes", "writes +3 s",
    "reconciles (policy/relay)", "connections", "CPU s", "apiserver+etcd CPU s", "peak RSS MB",
  ]; // prettier-ignore
  return table(head, rows);
}

/** Both tables, for bench/main.ts's report. */
export function operatorTables(figs: OperatorFigures[]): string {
  const cold = figs.some((f) => f.coldStart || f.coldStartNoStatus);
  return (
    `${operatorBurstTable(figs)}\n` +
    (cold
      ? `\nOperator (re)started with the policies already there:\n\n${operatorColdStartTable(figs)}\n`
      : "")
  );
}
