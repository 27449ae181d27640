// Issue 17, attack review 3: a MailRelay being deleted must stop accepting before its queue
// finalizer can go, or mail accepted after the delete is stranded on the retained volume. The
// operator compiles inbound.stopped into the deleted relay's config; this is the relay's side, a
// client's view over SMTP: once the relay loaded that config, a new session gets 421 4.3.2 at
// connect, a session opened before gets 421 at MAIL FROM, and a transaction already past RCPT TO gets
// 421 after DATA with nothing queued; the queue keeps delivering, and /status says `stopped` (what
// the operator waits for, with an empty queue) only once nothing is still being received.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { loopbackInbound, rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;

const status = async (): Promise<{ configHash: string; stopped?: boolean; queue: { depth: number } }> =>
  (await (await fetch(`http://127.0.0.1:${f.ports.admin}/status`)).json()) as never;

before(async () => {
  sink = await startSink();
  f = await relayFixture("relay-inbound-stopped");
});

after(async () => {
  await f?.stop(() => sink?.close());
});

const configure = (stopped: boolean) => f.configure(loopbackInbound(sink.port, { stopped }));

describe("inbound.stopped: a deleted relay refuses new mail (421) and keeps delivering", () => {
  it("refuses new sessions, MAIL FROM and DATA once loaded; /status says stopped", async () => {
    await configure(false);
    await f.start();
    const before = await status();
    assert.equal(before.stopped, undefined);
    // a transaction past RCPT TO, and an idle session, both opened before the stop
    const busy = await rawSession(f.ports.smtp);
    await busy.cmd("EHLO app.internal");
    assert.match(await busy.cmd("MAIL FROM:<app@client.test>"), /^250 /);
    assert.match(await busy.cmd("RCPT TO:<bob@local.test>"), /^250 /);
    const idle = await rawSession(f.ports.smtp);
    await idle.cmd("EHLO app.internal");

    await configure(true);
    await f.relay!.checkConfig();
    await waitFor("stopped config loaded", async () =>
      (await status()).configHash !== before.configHash ? true : undefined,
    );

    const fresh = await rawSession(f.ports.smtp).catch((e: Error) => e);
    assert.ok(!(fresh instanceof Error), "the listener stays up: senders are told to come back");
    assert.match(fresh.greeting, /^421 4\.3\.2 /);
    fresh.close();
    assert.match(await idle.cmd("MAIL FROM:<app@client.test>"), /^421 4\.3\.2 /);
    idle.close();
    assert.match(await busy.cmd("DATA"), /^354 /);
    assert.match(await busy.data("Subject: after the delete\r\n\r\nbody"), /^421 4\.3\.2 /);
    busy.close();

    const after = await waitFor("stopped", async () => {
      const s = await status();
      return s.stopped ? s : undefined;
    });
    assert.equal(after.queue.depth, 0, "nothing was queued after the stop");
    assert.equal(sink.messages.length, 0);
  });

  it("mail queued before the stop is still delivered", async () => {
    await configure(false);
    await f.relay!.checkConfig();
    await waitFor("accepting again", async () => ((await status()).stopped ? undefined : true));
    const s = await rawSession(f.ports.smtp);
    await s.cmd("EHLO app.internal");
    await s.cmd("MAIL FROM:<app@client.test>");
    await s.cmd("RCPT TO:<carol@local.test>");
    await s.cmd("DATA");
    assert.match(await s.data("Subject: before\r\n\r\nbody"), /^250 /);
    s.close();
    await configure(true);
    await f.relay!.checkConfig();
    await waitFor("delivered and stopped", async () => {
      const st = await status();
      return st.stopped && st.queue.depth === 0 && sink.messages.length === 1 ? true : undefined;
    });
  });
});
