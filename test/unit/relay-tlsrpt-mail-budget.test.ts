// The report mails being read at once hold at most MAIL_BUDGET_REPORTS reports' worth together
// (relay/inbound/tlsrpt-recipient.ts): a report is read into memory, never spooled, and body
// admission stops counting a place 2 s into DATA, so without it 500 sessions of ~1.4 MB each held
// ~730 MB (inbound review, round 7). Beyond it: 452 4.3.1, the sender tries again later.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { MAIL_BUDGET_REPORTS, receiveReportMail } from "../../relay/inbound/tlsrpt-recipient.js";
import { HeldBytes } from "../../relay/own-domains/held-bytes.js";
import type { TlsRptReceiver } from "../../relay/own-domains/tlsrpt-receiver.js";

/** A receiver whose report mails already hold `held` bytes (other clients' sessions). */
function receiver(held: number): TlsRptReceiver & { received: Buffer[] } {
  const received: Buffer[] = [];
  const mailBodies = new HeldBytes();
  mailBodies.take("203.0.113.1", held, Infinity, Infinity);
  return {
    mailBodies,
    received,
    maxMessageBytes: () => 1000,
    figures: { refuse: () => undefined },
    receiveMessage: (b: Buffer) => {
      received.push(b);
      return { ok: true };
    },
  } as unknown as TlsRptReceiver & { received: Buffer[] };
}

const body = (n: number) => Readable.from(Array.from({ length: n }, () => Buffer.from("x")));

describe("TLS-RPT report mail: the budget over all sessions", () => {
  it("a report within the budget is read whole (its 1-byte chunks gathered) and the budget given back", async () => {
    const r = receiver(0);
    const out = await receiveReportMail(r, body(500), "a@b", "192.0.2.1");
    assert.equal(out.ok, true);
    assert.equal(r.received[0]!.length, 500);
    assert.equal(r.mailBodies.used, 0);
  });

  it("past the budget: 452 4.3.1, nothing kept, nothing counted afterwards", async () => {
    const r = receiver(MAIL_BUDGET_REPORTS * 1000 - 100);
    const out = await receiveReportMail(r, body(500), "a@b", "192.0.2.1");
    assert.deepEqual(out, {
      ok: false,
      reply: { code: 452, text: "4.3.1 Too many TLS-RPT reports being received, try again later" },
    });
    assert.equal(r.received.length, 0);
    assert.equal(r.mailBodies.used, MAIL_BUDGET_REPORTS * 1000 - 100);
  });

  // review of the fix, round 7: one client's four unfinished sessions held the whole budget
  it("one client holds at most one report's worth: its next session gets 452, another client's does not", async () => {
    const r = receiver(0);
    r.mailBodies.take("192.0.2.1", 900, Infinity, Infinity); // an unfinished session of that client
    const mine = await receiveReportMail(r, body(500), "a@b", "192.0.2.1");
    assert.equal(mine.ok ? 250 : mine.reply.code, 452);
    const theirs = await receiveReportMail(r, body(500), "a@b", "198.51.100.7");
    assert.equal(theirs.ok, true);
    assert.equal(r.mailBodies.of("192.0.2.1"), 900);
    assert.equal(r.mailBodies.of("198.51.100.7"), 0);
    assert.equal(r.mailBodies.used, 900);
  });
});
