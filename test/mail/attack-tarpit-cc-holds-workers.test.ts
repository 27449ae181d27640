// Attack (hostile partner MX): a recipient domain whose MX accepts TCP and then says nothing (a
// tarpit). The scheduler parks a message whose destinations are ALL full without a worker
// (destination-gate.ts), so the tarpit's own messages hold only destinationConcurrencyLimit workers.
// But a message that goes to the tarpit AND to another domain (an employee's reply-all to a thread the
// attacker put itself on Cc of, a newsletter) is started because its other destination has a free
// slot, and its tarpit group then waits inside the attempt for a tarpit slot (destination-slots.ts),
// holding a queue worker: a few such messages take every worker, and a third party's message to a
// healthy domain waits until the tarpit's sessions time out. Here: workers 3, tarpit limit 1; one
// message to the tarpit alone, two to the tarpit and a healthy domain, then a victim's message to the
// healthy domain, which should go out while the tarpit still hangs (no tarpit session has ended).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSilentMx, type SilentMx } from "../support/silent-mx.js";
import { startSink, type Sink } from "../support/sink.js";

const WORKERS = 3;
const TARPIT_LIMIT = 1;

let g: RelayFixture;
/** A partner that accepts TCP and then says nothing at all (no greeting): every session hangs. */
let tarpit: SilentMx;
let healthy: Sink;

before(async () => {
  g = await relayFixture("attack-tarpit-cc-holds-workers");
  tarpit = await startSilentMx("127.0.0.1", await freePort("127.0.0.1"));
  healthy = await startSink();
  await g.configure({
    queue: { dir: `${g.work}/queue`, workers: WORKERS },
    delivery: { allowedInternalCidrs: ["127.0.0.0/8"], destinationConcurrencyLimit: TARPIT_LIMIT },
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
  await g.start();
});

after(async () => {
  await tarpit?.close(); // the hung sessions end, so the relay stops without waiting for them
  await g?.stop(() => healthy?.close());
});

type Session = Awaited<ReturnType<typeof rawSession>>;

async function send(s: Session, from: string, to: string[], id: string): Promise<void> {
  assert.match(await s.cmd(`MAIL FROM:<${from}>`), /^250/);
  for (const r of to) assert.match(await s.cmd(`RCPT TO:<${r}>`), /^250/);
  assert.match(await s.cmd("DATA"), /^354/);
  assert.match(await s.data(`Subject: ${id}\r\nX-Test-Id: ${id}\r\n\r\nbody ${id}`), /^250/);
}

describe("attack: a tarpit partner on Cc", () => {
  it("messages to the tarpit and another domain do not hold every worker: a third party's mail still goes out while the tarpit hangs", async () => {
    const s = await rawSession(g.ports.smtp);
    assert.match(await s.cmd("EHLO client.test"), /^250/);
    // the tarpit's own message takes its one slot
    await send(s, "alice@local.test", ["victim0@tarpit.test"], "tarpit-only");
    await waitFor("the tarpit holds its session", () => (tarpit.open === TARPIT_LIMIT ? true : undefined));
    // reply-alls with the tarpit on Cc: their healthy copies go out at once...
    for (let i = 1; i < WORKERS; i++)
      await send(s, "alice@local.test", [`cc${i}@healthy.test`, `victim${i}@tarpit.test`], `mixed-${i}`);
    await waitFor(
      "the reply-alls' healthy copies delivered",
      () => (healthy.messages.length >= WORKERS - 1 ? true : undefined),
      60_000,
    );
    // ...then someone else's message to the healthy domain
    await send(s, "bob@local.test", ["carol@healthy.test"], "third-party");
    await s.cmd("QUIT").catch(() => undefined);
    s.close();
    await waitFor(
      "the third party's message delivered",
      () =>
        healthy.messages.some((m) => m.data.toString("latin1").includes("X-Test-Id: third-party"))
          ? true
          : undefined,
      90_000,
    );
    // delivered only once a tarpit session gave up (its greeting timeout) and freed a worker: the
    // workers were all held by the tarpit, the partner's choice, not by the per-destination limit
    assert.equal(
      tarpit.total - tarpit.open,
      0,
      `the third party waited for the tarpit: ${tarpit.total - tarpit.open} tarpit session(s) had to time out first`,
    );
    assert.equal(tarpit.open, TARPIT_LIMIT);
  });
});
