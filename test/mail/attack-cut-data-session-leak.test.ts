// Attack review (inbound, Internet sender): a client that hangs up in the middle of a DATA larger
// than the journal's in-memory limit (2 MiB: the body goes to a file) leaves its session's
// bookkeeping behind. smtp-server calls onClose (which deletes the session's entry) while the
// spool is still discarding the file; receive() then answers the cut DATA through reject(), whose
// state() makes the entry again, and nothing ever deletes it: per-session state that outlives the
// session, growing with each such connection (the fuzz test's "no state left" invariant). Now a
// session smtp-server has closed gets no kept entry (relay/inbound/server.ts `closed`).
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { outsiderInbound, rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;
const ROUNDS = 5;

before(async () => {
  f = await relayFixture("attack-cut-data");
  sink = await startSink();
  await f.configure(outsiderInbound(sink));
  await f.start();
});

after(async () => {
  await f?.stop(() => sink?.close());
});

const sessionsOf = (): Map<string, unknown> =>
  (f.relay as unknown as { listeners: { sessions: Map<string, unknown> } }).listeners.sessions;

describe("attack: hanging up inside a large DATA", () => {
  it(`${ROUNDS} cut uploads of 2.5 MB leave no session state behind`, async () => {
    const line = "x".repeat(78) + "\r\n";
    const body = "Subject: cut\r\n\r\n" + line.repeat(Math.ceil((2.5 * 2 ** 20) / line.length));
    for (let i = 0; i < ROUNDS; i++) {
      const s = await rawSession(f.ports.smtp);
      await s.cmd("EHLO attacker.test");
      assert.match(await s.cmd("MAIL FROM:<x@attacker.test>"), /^250/);
      assert.match(await s.cmd("RCPT TO:<user@local.test>"), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      s.send(body); // no end of data
      await sleep(1000);
      s.close();
      await sleep(500);
    }
    await sleep(2000);
    assert.equal(sink.messages.length, 0);
    await waitFor(
      "per-session state released",
      () => (sessionsOf().size === 0 ? true : undefined),
      5000,
    ).catch(() => undefined);
    assert.equal(sessionsOf().size, 0, `${sessionsOf().size} session entries outlived their connections`);
  });
});
