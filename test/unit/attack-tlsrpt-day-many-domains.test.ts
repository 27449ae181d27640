// Attack review of the TLS-RPT DayTally (session 18): a day's sessions are now counted as they are
// read, in memory proportional to the counts "per domain, policy and failure detail", not to the
// sessions (test/unit/attack-tlsrpt-day-memory.test.ts, one busy domain). But the domains are the
// sessions' own: every outbound session to a domain not seen that day adds a domain, a policy and a
// failure detail, about 700 bytes of heap, more than the line itself. A stranger who has the relay
// send to as many domains as it likes (the bounces of mail forged as from a wildcard domain of its
// own, one session each: the very case targetsByDomain's comment names) made 400,000 sessions cost
// about 270 MB of heap: past a relay pod's memory the report run died, and it runs again at every
// start and every hour for a week (KEEP_DAYS). The tally now holds at most MAX_TALLY_ENTRIES
// domains, policies and failure details in all; sessions of domains or policies beyond them are
// left out of the day's reports (and counted), those already held keep being counted.
// Measured without time: a child process with a small heap builds the reports of such a day, and a
// domain seen before the flood gets its exact report.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ltsNodeBinary, repoRoot } from "../support/toolchain.js";

const DAY = "2026-01-01";
const SESSIONS = 400_000;
const HEAP_MB = 96;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-day-domains-"));
  await mkdir(join(dir, "tlsrpt"));
  // every tenth session to busy.example (a partner, first seen before the flood), the others each to
  // a domain of its own, a tenth of them failed
  const out = createWriteStream(join(dir, "tlsrpt", `${DAY}.jsonl`));
  const t0 = Date.parse(`${DAY}T12:00:00Z`);
  for (let i = 0; i < SESSIONS; i++) {
    const busy = i % 10 === 0;
    const domain = busy ? "busy.example" : `d${i}.bounce.example`;
    const line = JSON.stringify({
      t: t0 + (i % 3_600_000),
      domain,
      policy: { type: "no-policy-found", strings: [] },
      result: i % 7 ? "success" : "starttls-not-supported",
      mx: `mx.${domain}`,
      ip: "192.0.2.1",
      src: "198.51.100.7",
      reason: i % 7 ? "" : "the next hop offered no STARTTLS",
    });
    if (!out.write(line + "\n")) await new Promise((r) => out.once("drain", r));
  }
  await new Promise<void>((r) => out.end(r));
});
after(() => rm(dir, { recursive: true, force: true }));

// the child: sendDay over the store (only busy.example publishes a TLS-RPT record), POSTs captured
const CHILD = `
import { gunzipSync } from "node:zlib";
import { sendDay, TlsRptStore } from "./relay/outbound/tlsrpt.ts";
const reports = [];
const none = Object.assign(new Error("no record"), { code: "ENOTFOUND" });
await sendDay(${JSON.stringify(DAY)}, {
  store: new TlsRptStore(process.env.QUEUE_DIR),
  dns: () => ({
    resolveTxt: async (name) => {
      if (name === "_smtp._tls.busy.example") return [["v=TLSRPTv1; rua=https://reports.busy.example/v1"]];
      throw none;
    },
  }),
  meta: () => ({ organizationName: "Relay", contactInfo: "postmaster@relay.example", submitter: "relay.example", from: "tlsrpt@relay.example" }),
  enqueue: async () => "Q1",
  post: async (_url, gz) => { reports.push(JSON.parse(gunzipSync(gz).toString("utf8"))); return 200; },
});
process.stdout.write(JSON.stringify(reports.map((r) => r.policies.map((p) => p.summary))));
`;

describe("attack: a day of sessions to as many domains does not take the relay's memory", () => {
  it(`${SESSIONS} sessions, most to a domain of their own: reported by a process with a ${HEAP_MB} MB heap`, () => {
    const r = spawnSync(
      ltsNodeBinary(),
      [`--max-old-space-size=${HEAP_MB}`, "--import", "tsx", "--input-type=module", "-e", CHILD],
      { cwd: repoRoot, env: { ...process.env, QUEUE_DIR: dir }, encoding: "utf8", maxBuffer: 1 << 20 },
    );
    const fatal = /heap out of memory|Invalid string length|ERR_STRING_TOO_LONG/.exec(r.stderr)?.[0];
    assert.equal(
      r.status,
      0,
      `the report run died (${fatal ?? `exit ${r.status}`}): ${r.stderr.slice(-600)}`,
    );
    // busy.example's sessions: i = 0, 10, 20, ...; failed where i % 7 === 0 (i % 70 === 0)
    const busy = SESSIONS / 10;
    const failed = Math.ceil(SESSIONS / 70);
    assert.deepEqual(JSON.parse(r.stdout), [
      [{ "total-successful-session-count": busy - failed, "total-failure-session-count": failed }],
    ]);
  });
});
