// Resource use of a process tree, read from /proc (Linux only).
//
// CPU: for every process in the tree (the root and its descendants, by parent pid) we add
// utime + stime + cutime + cstime. A child that exits is reaped by its parent and its whole CPU time
// moves into the parent's cutime/cstime, so the sum never loses short-lived processes (Postfix's
// smtpd, cleanup and smtp come and go under master). The difference of two readings is the CPU the
// tree used in between. For a single Node process (Sealpost's relay) it is just utime + stime.
//
// Memory: a sampler adds up VmRSS (status) and Pss (smaps_rollup) of the tree every `intervalMs` and
// keeps the peak. RSS counts shared pages (libc, the Postfix libraries) once per process and so
// overstates a multi-process server; PSS splits shared pages between their users and is the fairer
// figure for comparing one Node process with a dozen Postfix daemons. For a single process we also
// read VmHWM (the kernel's exact peak RSS) at the end.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

interface Stat {
  ppid: number;
  ticks: number;
}

function stat(pid: number): Stat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after "(comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    const n = (i: number) => Number(f[i - 3]);
    return { ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
  } catch {
    return undefined; // gone in between
  }
}

/** The root and all its live descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync("/proc")) {
    const pid = Number(e);
    if (!Number.isInteger(pid)) continue;
    const s = stat(pid);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(pid);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds used so far by the tree (including reaped children). */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += stat(pid)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function pssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Peak RSS of one process (kernel high-water mark), in kB. */
export function vmHwmKb(pid: number): number {
  return statusKb(pid, "VmHWM");
}

export interface MemoryPeak {
  /** Peak of the summed VmRSS of the tree, kB (sampled). */
  rssKb: number;
  /** Peak of the summed Pss of the tree, kB (sampled). */
  pssKb: number;
  /** Most processes seen at once. */
  processes: number;
  samples: number;
}

export class MemorySampler {
  private peak: MemoryPeak = { rssKb: 0, pssKb: 0, processes: 0, samples: 0 };
  private timer: NodeJS.Timeout;

  constructor(
    private root: number,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    const pids = processTree(this.root);
    let rss = 0;
    let pss = 0;
    for (const p of pids) {
      rss += statusKb(p, "VmRSS");
      pss += pssKb(p);
    }
    const k = this.peak;
    this.peak = {
      rssKb: Math.max(k.rssKb, rss),
      pssKb: Math.max(k.pssKb, pss),
      processes: Math.max(k.processes, pids.length),
      samples: k.samples + 1,
    };
  }

  stop(): MemoryPeak {
    this.sample();
    clearInterval(this.timer);
    return this.peak;
  }
}

/** The p-th percentile (0..100) of the values, nearest rank; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** Wall-clock milliseconds since the epoch, sub-millisecond resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
