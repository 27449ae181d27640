// RCPT TO (relay/inbound/server.ts onRcptTo) checks a TLS-RPT report address against the first
// recipient only, "which stands for all (each was checked against those before it)". That holds only
// while the report addresses do not change: after a reload mid-transaction the first recipient may
// have become a report address while a later one has not, and a report address is then accepted into
// a transaction holding ordinary recipients. The transaction is no report (isReportTransaction: not
// every recipient is one), so the report address is queued as ordinary mail, which it must never be
// (relay/inbound/tlsrpt-recipient.ts). Before the per-transaction index every accepted recipient was
// compared under the config of now and the RCPT got 452 4.5.3.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SMTPServerSession } from "smtp-server";
import { InboundListeners } from "../../relay/inbound/server.js";

interface Fake {
  onRcptTo(
    addr: { address: string; args: false },
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): void;
}

/** The TLS-RPT settings of the config loaded now (a reload replaces them). */
interface Loaded {
  tlsRpt: { addresses: string[] };
}

/** An InboundListeners with only what onRcptTo uses; report addresses are those of `loaded`. */
function listeners(loaded: Loaded): Fake {
  const l = Object.create(InboundListeners.prototype) as Record<string, unknown>;
  const config = { inbound: { maxRecipients: 100 } };
  Object.assign(l, {
    rcptIndex: new WeakMap(),
    rcptKinds: new WeakMap(),
    d: {
      tlsRpt: {
        isReportAddress: (a: string) => loaded.tlsRpt.addresses.includes(a),
        settings: () => loaded.tlsRpt,
      },
    },
    decision: () => ({
      d: { need: {}, relayFrom: true, policies: [] },
      cur: { loaded: { config }, inbound: { localDomains: [] }, authority: { localDomains: [] } },
    }),
    grant: () => undefined,
    state: () => ({ fleet: false }),
    refusing: () => false,
    admit: () => Promise.resolve(true),
    reject: (_s: unknown, _stage: string, r: { code: number; text: string }) =>
      new Error(`${r.code} ${r.text}`),
  });
  return l as unknown as Fake;
}

/** RCPT TO as smtp-server runs it: the handler, then the address added to envelope.rcptTo. */
function rcpt(l: Fake, session: SMTPServerSession, address: string): Promise<string> {
  return new Promise((resolve) =>
    l.onRcptTo({ address, args: false }, session, (err) => {
      if (err) return resolve(err.message);
      const list = session.envelope.rcptTo;
      const i = list.findIndex((x) => x.address.toLowerCase() === address.toLowerCase());
      if (i >= 0) list[i] = { address, args: false };
      else list.push({ address, args: false });
      resolve("250");
    }),
  );
}

describe("attack: a reload of the TLS-RPT report addresses mid-transaction", () => {
  it("a report address joins a transaction with an ordinary recipient after a reload: 452", async () => {
    const loaded: Loaded = { tlsRpt: { addresses: [] } };
    const l = listeners(loaded);
    const session = {
      id: "s1",
      secure: false,
      envelope: { mailFrom: { address: "x@sender.test", args: false }, rcptTo: [] },
    } as unknown as SMTPServerSession;
    assert.equal(await rcpt(l, session, "a@local.test"), "250");
    assert.equal(await rcpt(l, session, "b@local.test"), "250");
    // a reload: a@local.test (the first recipient) and tlsrpt@local.test are report addresses now
    loaded.tlsRpt = { addresses: ["a@local.test", "tlsrpt@local.test"] };
    // b@local.test, accepted, is ordinary: a report address must not join
    const reply = await rcpt(l, session, "tlsrpt@local.test");
    assert.match(reply, /^452 4\.5\.3/, `RCPT TO:<tlsrpt@local.test> got ${reply}`);
  });
});
