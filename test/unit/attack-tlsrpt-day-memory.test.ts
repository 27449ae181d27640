// Attack (session 18, following the observability review's note): every outbound session is one
// line of the day's TLS-RPT file (relay/outbound/tlsrpt.ts TlsRptStore, about 250 bytes), and the
// day's reports read the whole file into one string and every line into an object before counting
// them. A relay that makes a few hundred thousand sessions a day (a busy one, or one a stranger
// feeds with bounces of mail forged as from its own domains, one session each) needs hundreds of MB
// of heap for it: past the pod's memory limit (512Mi by default) it is killed, and the report runs
// again at every start and every hour for a week (KEEP_DAYS), so the pod never stays up. The day is
// now read line by line and counted as it is read: the memory is that of the counts (per domain,
// policy and failure detail), not of the sessions.
// Measured without time: a child process with a small heap (--max-old-space-size) builds the reports
// of a day whose file alone is larger than that heap.
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
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-day-memory-"));
  // 400,000 sessions of one domain (about 100 MB of lines): one policy, a failure every tenth
  await writeDay(dir, DAY, SESSIONS, (i, t0) => ({
    t: t0 + (i % 3_600_000),
    domain: "busy.example",
    policy: { type: "no-policy-found", strings: [] },
    result: i % 10 ? "success" : "starttls-not-supported",
    mx: "mx1.busy.example",
    ip: "192.0.2.1",
    src: "198.51.100.7",
    reason: "the next hop offered no STARTTLS, so the message was deferred for now".slice(0, i % 10 ? 0 : 80),
  }));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("attack: a day of many sessions does not take the relay's memory", () => {
  it(`${SESSIONS} sessions (about 100 MB of lines): reported by a process with a ${HEAP_MB} MB heap`, () => {
    assert.deepEqual(reportInSmallHeap(dir, DAY, HEAP_MB, "busy.example"), [
      [{ "total-successful-session-count": SESSIONS * 0.9, "total-failure-session-count": SESSIONS * 0.1 }],
    ]);
  });
});
