// Attack (hostile partner MX), with the limits a deployed relay runs with: a partner whose MX accepts
// TCP and then says nothing (a tarpit). The scheduler parks a message whose destination is full
// without a queue worker (destination-gate.ts), "so a slow or silent partner never holds up other
// destinations" (MailRelay spec.delivery.destinationConcurrencyLimit's description). But the gate's
// limit is that destinationConcurrencyLimit, 20 by default, and the relay has queue.workers = 16 (the
// relay's default; the operator renders no other value): a destination is never full before every
// worker is on it. Sixteen messages to the tarpit partner take all 16 workers, and a third party's
// message to a healthy domain waits until a tarpit session times out (greeting 30 s here; a tarpit
// that greets and then trickles holds each attempt up to attemptTimeout, 10 min), round after round
// while the partner has mail queued. Here the relay runs with those defaults (neither workers nor
// destinationConcurrencyLimit set); the third party's message should go out while the tarpit hangs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RelayConfig } from "../../relay/contract/config.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSilentMx, type SilentMx } from "../support/silent-mx.js";
import { startSink, type Sink } from "../support/sink.js";

let g: RelayFixture;
/** A partner that accepts TCP and then says nothing at all (no greeting): every session hangs. */
let tarpit: SilentMx;
let healthy: Sink;
let workers = 0;

before(async () => {
  g = await relayFixture("attack-tarpit-default-limits");
  tarpit = await startSilentMx("127.0.0.1", await freePort("127.0.0.1"));
  healthy = await startSink();
  const cfg = await g.configure({
    // the relay's defaults for queue.workers and delivery.destinationConcurrencyLimit (the operator
    // sets neither: operator/compile/relay-config.ts)
    queue: { dir: `${g.work}/queue`, retry: { initial: 60, max: 60 } },
    delivery: { allowedInternalCidrs: ["127.0.0.0/8"] },
    policies: [
      {
        name: "partners/tarpit",
        domains: ["tarpit.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: tarpit.host, port: tarpit.port } },
      },
      {
        name: "partners/healthy",
        domains: ["healthy.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: healthy.host, port: healthy.port } },
      },
    ],
  });
  const parsed = RelayConfig.parse(cfg);
  workers = parsed.queue.workers;
  assert.equal(workers, 16, "the relay's default number of queue workers");
  assert.equal(parsed.delivery.destinationConcurrencyLimit, 20, "the default per-destination limit");
  await g.start();
});

after(async () => {
  await tarpit?.close(); // the hung sessions end, so the relay stops without waiting for them
  await g?.stop(() => healthy?.close());
});

describe("attack: a tarpit partner under the default limits", () => {
  it("a silent partner with a worker's worth of mail queued does not hold every worker: a third party's mail still goes out while it hangs", async () => {
    const s = await rawSession(g.ports.smtp);
    assert.match(await s.cmd("EHLO client.test"), /^250/);
    for (let i = 0; i < workers; i++) {
      assert.match(await s.cmd("MAIL FROM:<alice@local.test>"), /^250/);
      assert.match(await s.cmd(`RCPT TO:<user${i}@tarpit.test>`), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      assert.match(await s.data(`Subject: t${i}\r\n\r\nbody ${i}`), /^250/);
    }
    // each was started as it was queued (the workers were free): the tarpit holds them now
    await waitFor("the tarpit holds the relay's sessions", () => (tarpit.open > 0 ? true : undefined));
    assert.match(await s.cmd("MAIL FROM:<bob@local.test>"), /^250/);
    assert.match(await s.cmd("RCPT TO:<carol@healthy.test>"), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    assert.match(await s.data("Subject: third party\r\nX-Test-Id: third-party\r\n\r\nbody"), /^250/);
    await s.cmd("QUIT").catch(() => undefined);
    s.close();
    await waitFor(
      "the third party's message delivered",
      () => (healthy.messages.length ? true : undefined),
      90_000,
    );
    assert.match(healthy.messages[0]!.data.toString("latin1"), /X-Test-Id: third-party/);
    // delivered only once a tarpit session gave up (its greeting timeout) and freed a worker
    assert.equal(
      tarpit.total - tarpit.open,
      0,
      `the third party waited for the tarpit: ${tarpit.total - tarpit.open} tarpit session(s) had to time out first`,
    );
    assert.ok(tarpit.open > 0, "the tarpit still hangs");
  });
});
