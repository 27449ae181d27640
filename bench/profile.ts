// Summary of V8 CPU profiles (.cpuprofile, written by node --cpu-prof): self time by function and
// by file, over every profile in a directory.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  functions: { name: string; where: string; selfMs: number; pct: number }[];
  files: { file: string; selfMs: number; pct: number }[];
}

const root = new URL("..", import.meta.url).pathname;

function shorten(url: string): string {
  const path = url.replace(/^file:\/\//, "");
  if (!path) return "(native)";
  return path.includes("node_modules/")
    ? path.slice(path.lastIndexOf("node_modules/") + 13)
    : relative(root, path);
}

export function summarizeProfiles(dir: string, top = 25): ProfileSummary {
  const byFn = new Map<string, { name: string; where: string; selfMs: number }>();
  const byFile = new Map<string, number>();
  let totalMs = 0;
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".cpuprofile"))) {
    const p = JSON.parse(readFileSync(join(dir, f), "utf8")) as Profile;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      const cf = nodes.get(id)!.callFrame;
      if (cf.functionName === "(idle)") return;
      totalMs += ms;
      const where = `${shorten(cf.url)}:${cf.lineNumber + 1}`;
      const k = `${cf.functionName}@${where}`;
      const e = byFn.get(k) ?? { name: cf.functionName || "(anonymous)", where, selfMs: 0 };
      e.selfMs += ms;
      byFn.set(k, e);
      const file = shorten(cf.url);
      byFile.set(file, (byFile.get(file) ?? 0) + ms);
    });
  }
  const pct = (ms: number): number => Math.round((ms / totalMs) * 1000) / 10;
  return {
    totalMs: Math.round(totalMs),
    functions: [...byFn.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((e) => ({ ...e, selfMs: Math.round(e.selfMs), pct: pct(e.selfMs) })),
    files: [...byFile.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, ms]) => ({ file, selfMs: Math.round(ms), pct: pct(ms) })),
  };
}

export function profileTables(s: ProfileSummary): string {
  const fns = s.functions.map((f) => `| ${f.pct}% | ${f.selfMs} | \`${f.name}\` | ${f.where} |`).join("\n");
  const files = s.files.map((f) => `| ${f.pct}% | ${f.selfMs} | ${f.file} |`).join("\n");
  return (
    `Sampled ${s.totalMs} ms of non-idle CPU (main thread).\n\n` +
    `| self % | self ms | function | where |\n| --- | --- | --- | --- |\n${fns}\n\n` +
    `| self % | self ms | file |\n| --- | --- | --- |\n${files}`
  );
}
