// Attack (state review, round 7): the outbound TLS-RPT store appends one JSON line per outbound
// session to <queue>/tlsrpt/<day>.jsonl (plus <day>.state.json and <day>.sent) on the queue's own
// volume, and nothing ever removed them: every day of traffic stayed for ever, as many lines as
// senders decide (an outsider whose mail bounces to domains of their choosing). A sent day's events
// and state now go when it is marked sent, and every file older than a week at the next run.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TlsRptReporter, TlsRptStore, type SendDeps } from "../../relay/outbound/tlsrpt.js";
import type { Dns } from "../../relay/outbound/mx.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-retention-"));
});
after(() => rm(dir, { recursive: true, force: true }));

const DAYS = 30;
const PER_DAY = 500; // sessions to distinct attacker domains each day

describe("attack: TLS-RPT day files are kept for ever", () => {
  it(`${DAYS} days reported and marked sent leave no event files behind`, async () => {
    const store = new TlsRptStore(dir);
    const start = Date.parse("2026-01-01T12:00:00Z");
    for (let d = 0; d < DAYS; d++)
      for (let i = 0; i < PER_DAY; i++)
        await store.record({
          t: start + d * 86_400_000,
          domain: `d${i}.evil.example`,
          policy: { type: "no-policy-found", strings: [] },
          result: "starttls-not-supported",
          mx: `mx${i}.evil.example`,
          ip: "192.0.2.1",
          reason: "x".repeat(200),
        });
    const d: SendDeps = {
      store,
      // the attacker's domains publish no rua: nothing to send, the day is finished at once
      dns: () => ({ resolveTxt: () => Promise.resolve([]) }) as unknown as Dns,
      meta: () => ({
        organizationName: "Relay",
        contactInfo: "postmaster@relay.example",
        submitter: "relay.example",
        from: "tlsrpt-noreply@relay.example",
      }),
      enqueue: () => Promise.resolve("Q1"),
    };
    await new TlsRptReporter(d).due("2026-02-01");
    assert.deepEqual(await store.pendingDays("2026-02-01"), [], "every day is reported and marked sent");
    const names = await readdir(store.dir);
    let bytes = 0;
    for (const n of names) bytes += (await stat(join(store.dir, n))).size;
    const events = names.filter((n) => n.endsWith(".jsonl") || n.endsWith(".state.json"));
    assert.equal(events.length, 0, `${events.length} sent days' files (${bytes} bytes) kept for ever`);
    // the days of the last week were reported; their markers stay (a late event of a sent day is not
    // reported twice); the older days' files went unreported (a report a week late is of no use)
    assert.deepEqual(names.filter((n) => n.endsWith(".sent")).sort(), [
      "2026-01-25.sent",
      "2026-01-26.sent",
      "2026-01-27.sent",
      "2026-01-28.sent",
      "2026-01-29.sent",
      "2026-01-30.sent",
    ]);
  });

  it("a run a week later removes the old markers and an unfinished old day", async () => {
    const store = new TlsRptStore(dir);
    await store.record({
      t: Date.parse("2026-02-10T12:00:00Z"),
      domain: "late.example",
      policy: { type: "no-policy-found", strings: [] },
      result: "starttls-not-supported",
    });
    await store.flushed();
    assert.deepEqual(await store.pendingDays("2026-03-20"), []);
    assert.deepEqual(await readdir(store.dir), []);
  });
});
