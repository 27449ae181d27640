// A day of TLS-RPT sessions on a queue volume, reported by a child process with a small heap: the
// attack tests' measure of what a day's reports cost in memory (no time asserted). writeDay writes
// the day's file as TlsRptStore does (one JSON line per session); reportInSmallHeap runs sendDay
// over it in `node --max-old-space-size=<heapMb>`, where only `reporting` publishes a TLS-RPT record.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ltsNodeBinary, repoRoot } from "./toolchain.js";

/** Writes `n` sessions (`session(i, t0)`: one event, t0 the day's noon) as `queueDir`'s day file. */
export async function writeDay(
  queueDir: string,
  day: string,
  n: number,
  session: (i: number, t0: number) => Record<string, unknown>,
): Promise<void> {
  await mkdir(join(queueDir, "tlsrpt"), { recursive: true });
  const out = createWriteStream(join(queueDir, "tlsrpt", `${day}.jsonl`));
  const t0 = Date.parse(`${day}T12:00:00Z`);
  for (let i = 0; i < n; i++)
    if (!out.write(JSON.stringify(session(i, t0)) + "\n")) await new Promise((r) => out.once("drain", r));
  await new Promise<void>((r) => out.end(r));
}

const child = (day: string, reporting: string) => `
import { gunzipSync } from "node:zlib";
import { sendDay, TlsRptStore } from "./relay/outbound/tlsrpt.ts";
const reports = [];
const none = Object.assign(new Error("no record"), { code: "ENOTFOUND" });
await sendDay(${JSON.stringify(day)}, {
  store: new TlsRptStore(process.env.QUEUE_DIR),
  dns: () => ({
    resolveTxt: async (name) => {
      if (name === ${JSON.stringify(`_smtp._tls.${reporting}`)}) return [["v=TLSRPTv1; rua=https://reports.${reporting}/v1"]];
      throw none;
    },
  }),
  meta: () => ({ organizationName: "Relay", contactInfo: "postmaster@relay.example", submitter: "relay.example", from: "tlsrpt@relay.example" }),
  enqueue: async () => "Q1",
  post: async (_url, gz) => { reports.push(JSON.parse(gunzipSync(gz).toString("utf8"))); return 200; },
});
process.stdout.write(JSON.stringify(reports.map((r) => r.policies.map((p) => p.summary))));
`;

/**
 * The day's reports as a child with a `heapMb` heap builds them: each report's policies' summaries.
 * Fails the test, naming how the child died, when it did not end well.
 */
export function reportInSmallHeap(queueDir: string, day: string, heapMb: number, reporting: string): unknown {
  const r = spawnSync(
    ltsNodeBinary(),
    [`--max-old-space-size=${heapMb}`, "--import", "tsx", "--input-type=module", "-e", child(day, reporting)],
    { cwd: repoRoot, env: { ...process.env, QUEUE_DIR: queueDir }, encoding: "utf8", maxBuffer: 1 << 20 },
  );
  const fatal = /heap out of memory|Invalid string length|ERR_STRING_TOO_LONG/.exec(r.stderr)?.[0];
  assert.equal(r.status, 0, `the report run died (${fatal ?? `exit ${r.status}`}): ${r.stderr.slice(-600)}`);
  return JSON.parse(r.stdout) as unknown;
}
