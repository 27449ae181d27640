// Attack review (inbound, Internet sender): the local recipient table (spec.inbound.localRecipients)
// is the documented way to keep the relay from bouncing to forged senders (backscatter): an unknown
// address of a local domain gets 550 5.1.1 at RCPT TO, so nothing is accepted that the internal
// server will refuse. The table compares local parts after JavaScript's toLowerCase, which maps a
// few non-ASCII characters onto ASCII letters: U+212A KELVIN SIGN lower-cases to "k". So
// <\u212Aate@local.test> (SMTPUTF8) passes as kate@local.test, yet the relay queues and forwards the
// address as given, a mailbox the internal server does not have: it refuses it, and the relay
// bounces a DSN to whatever MAIL FROM the client forged. The table must hold an address the relay
// forwards, not one that only lower-cases to it.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { outsiderInbound, rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
/** The internal server: it has kate@local.test and nobody else. */
let internal: Sink;
/** The forged sender's MX (the default route): where backscatter lands. */
let victim: Sink;

before(async () => {
  f = await relayFixture("attack-table-fold");
  internal = await startSink({
    rcptReply: (a) => (a === "kate@local.test" ? undefined : "550 5.1.1 <" + a + ">: no such user"),
  });
  victim = await startSink();
  await f.configure({
    ...outsiderInbound(internal, { localRecipients: { addresses: ["kate@local.test"], files: [] } }),
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: victim.port } },
  });
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([internal?.close(), victim?.close()]));
});

describe("attack: a recipient that only lower-cases to a listed one", () => {
  it("<\\u212Aate@local.test> is no kate@local.test: refused at RCPT TO, no DSN to the forged sender", async () => {
    const s = await rawSession(f.ports.smtp, { localAddress: "127.0.0.2" });
    let rcpt: string;
    try {
      await s.cmd("EHLO attacker.test");
      assert.match(await s.cmd("MAIL FROM:<someone@victim.test> SMTPUTF8"), /^250 /);
      // the listed address itself is fine
      assert.match(await s.cmd("RCPT TO:<kate@local.test>"), /^250 /);
      assert.match(await s.cmd("RSET"), /^250 /);
      assert.match(await s.cmd("MAIL FROM:<someone@victim.test> SMTPUTF8"), /^250 /);
      rcpt = await s.cmd("RCPT TO:<\u212Aate@local.test>");
      if (rcpt.startsWith("250")) {
        assert.match(await s.cmd("DATA"), /^354 /);
        assert.match(await s.data("Subject: hello\r\n\r\nbody"), /^250 /);
      }
      await s.cmd("QUIT").catch(() => undefined);
    } finally {
      s.close();
    }
    // a bounce, if the relay took it, is queued within a few retry intervals (0.2 s)
    if (rcpt.startsWith("250")) await sleep(3000);
    const backscatter = victim.messages.filter((m) => m.from === "").map((m) => m.to.join(","));
    assert.deepEqual(
      { rcpt: rcpt.slice(0, 9), backscatter },
      { rcpt: "550 5.1.1", backscatter: [] },
      `RCPT TO:<\\u212Aate@local.test> (KELVIN SIGN) got "${rcpt}"; DSNs to the forged sender: ${JSON.stringify(backscatter)}`,
    );
  });
});
