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
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { reportInSmallHeap, writeDay } from "../support/tlsrpt-day.js";

const DAY = "2026-01-01";
const SESSIONS = 400_000;
const HEAP_MB = 96;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-day-domains-"));
  // every tenth session to busy.example (a partner, first seen before the flood), the others each to
  // a domain of its own, a tenth of them failed
  await writeDay(dir, DAY, SESSIONS, (i, t0) => {
    const domain = i % 10 === 0 ? "busy.example" : `d${i}.bounce.example`;
    return {
      t: t0 + (i % 3_600_000),
      domain,
      policy: { type: "no-policy-found", strings: [] },
      result: i % 7 ? "success" : "starttls-not-supported",
      mx: `mx.${domain}`,
      ip: "192.0.2.1",
      src: "198.51.100.7",
      reason: i % 7 ? "" : "the next hop offered no STARTTLS",
    };
  });
});
after(() => rm(dir, { recursive: true, force: true }));

describe("attack: a day of sessions to as many domains does not take the relay's memory", () => {
  it(`${SESSIONS} sessions, most to a domain of their own: reported by a process with a ${HEAP_MB} MB heap`, () => {
    // only busy.example publishes a TLS-RPT record; its sessions: i = 0, 10, 20, ...; failed where
    // i % 7 === 0 (i % 70 === 0)
    const busy = SESSIONS / 10;
    const failed = Math.ceil(SESSIONS / 70);
    assert.deepEqual(reportInSmallHeap(dir, DAY, HEAP_MB, "busy.example"), [
      [{ "total-successful-session-count": busy - failed, "total-failure-session-count": failed }],
    ]);
  });
});
