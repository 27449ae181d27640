// Per-destination concurrency (issue 17, Postfix default_destination_concurrency_limit): a slow
// partner with many messages queued for it never sees more sessions at once from the relay than
// delivery.destinationConcurrencyLimit, though the relay has more workers; a second partner is not
// held up behind it. The partner sinks count the TCP sessions open at once themselves (idle pooled
// connections included).
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { freePort } from "../support/ports.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const LIMIT = 3;
const MESSAGES = 40;

let f: RelayFixture;
let slow: Sink;
let other: Sink;
/**
 * The slow partner answers no DATA until the test has queued everything and seen the other partner
 * served: how fast the relay accepts (a slow volume, a loaded CI machine) must not decide whether
 * the slow partner has caught up by then.
 */
let unblock: () => void = () => undefined;

before(async () => {
  f = await relayFixture("ops-destination-concurrency");
  slow = await startSink({ dataDelayMs: 200, dataGate: new Promise<void>((r) => (unblock = r)) });
  other = await startSink();
  await f.configure({
    queue: { dir: `${f.work}/queue`, retry: { initial: 0.2, max: 0.5 }, workers: 16 },
    delivery: { allowedInternalCidrs: ["127.0.0.0/8"], destinationConcurrencyLimit: LIMIT },
    policies: [
      {
        name: "partners/slow",
        domains: ["slow.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: slow.host, port: slow.port } },
      },
      {
        name: "partners/other",
        domains: ["other.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: other.host, port: other.port } },
      },
    ],
  });
  await f.start();
});

after(async () => {
  unblock();
  await f?.stop(() => Promise.all([slow?.close(), other?.close()]));
});

/** Queues `n` messages to `to` in one SMTP session (no process per message). */
async function queue(n: number, to: (i: number) => string): Promise<void> {
  const s = await rawSession(f.ports.smtp);
  assert.match(await s.cmd("EHLO client.test"), /^250/);
  for (let i = 0; i < n; i++) {
    assert.match(await s.cmd("MAIL FROM:<alice@local.test>"), /^250/);
    assert.match(await s.cmd(`RCPT TO:<${to(i)}>`), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    assert.match(await s.data(`Subject: m${i}\r\nX-Test-Id: m${i}\r\n\r\nbody ${i}`), /^250/);
  }
  await s.cmd("QUIT").catch(() => undefined);
  s.close();
}

describe("per-destination concurrency", () => {
  it(`a slow partner with ${MESSAGES} messages queued sees at most ${LIMIT} sessions at once`, async () => {
    await queue(MESSAGES, (i) => `user${i}@slow.test`);
    // many more messages wait than the partner gets sessions (each of its transactions takes 200 ms)
    const depth = f.relay!.status().queue.depth;
    assert.ok(depth > 2 * LIMIT, `queued for the slow partner: ${depth}`);
    // while the slow partner is busy, mail for another partner goes through
    await queue(1, () => "carol@other.test");
    await waitFor("other partner delivered", () => (other.messages.length === 1 ? true : undefined), 20_000);
    assert.ok(slow.messages.length <= LIMIT, "the other partner did not wait for the slow one");
    unblock();
    await waitFor("all delivered", () => (slow.messages.length >= MESSAGES ? true : undefined), 60_000);
    assert.equal(new Set(slow.messages.map((m) => m.to[0])).size, MESSAGES);
    assert.ok(slow.sessions.max <= LIMIT, `max sessions at once: ${slow.sessions.max}`);
    assert.equal(slow.sessions.max, LIMIT, "the limit, not something else, bounded the sessions");
  });
});

/** A partner that accepts TCP and then says nothing at all (no greeting): every session hangs. */
async function startTarpit() {
  const host = "127.0.0.1";
  const port = await freePort(host);
  const sockets = new Set<net.Socket>();
  const t = { host, port, open: 0, max: 0, closed: 0 };
  const server = net.createServer((s) => {
    sockets.add(s);
    t.open++;
    t.max = Math.max(t.max, t.open);
    s.on("error", () => undefined);
    s.on("close", () => {
      sockets.delete(s);
      t.open--;
      t.closed++;
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return { t, close };
}

// The attacker's review of issue 17: a delivery waiting for a full destination held a queue worker,
// so a tarpitting partner with more messages due than limit x workers stalled every other domain
// until its sessions timed out. Now a message whose destination is full waits without a worker.
describe("a tarpitting partner does not stall other destinations", () => {
  const WORKERS = 3;
  const TARPIT_LIMIT = 2;
  let g: RelayFixture;
  let tarpit: Awaited<ReturnType<typeof startTarpit>>;
  let healthy: PostfixPeer;

  before(async () => {
    g = await relayFixture("ops-destination-tarpit");
    tarpit = await startTarpit();
    healthy = await startPostfix({ domains: ["healthy.test"] });
    await g.configure({
      queue: { dir: `${g.work}/queue`, workers: WORKERS },
      delivery: { allowedInternalCidrs: ["127.0.0.0/8"], destinationConcurrencyLimit: TARPIT_LIMIT },
      policies: [
        {
          name: "partners/tarpit",
          domains: ["tarpit.test"],
          outbound: { tls: { mode: "none" }, nextHop: { host: tarpit.t.host, port: tarpit.t.port } },
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
    await g?.stop(() => healthy?.stop());
  });

  it(`more than limit x workers messages for the tarpit, then one to a healthy Postfix: delivered while the tarpit hangs`, async () => {
    const n = TARPIT_LIMIT * WORKERS + 4;
    const s = await rawSession(g.ports.smtp);
    assert.match(await s.cmd("EHLO client.test"), /^250/);
    for (let i = 0; i < n; i++) {
      assert.match(await s.cmd("MAIL FROM:<alice@local.test>"), /^250/);
      assert.match(await s.cmd(`RCPT TO:<user${i}@tarpit.test>`), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      assert.match(await s.data(`Subject: t${i}\r\n\r\nbody ${i}`), /^250/);
    }
    await waitFor("the tarpit holds its sessions", () => (tarpit.t.open === TARPIT_LIMIT ? true : undefined));
    assert.match(await s.cmd("MAIL FROM:<alice@local.test>"), /^250/);
    assert.match(await s.cmd("RCPT TO:<carol@healthy.test>"), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    assert.match(await s.data("Subject: healthy\r\nX-Test-Id: healthy\r\n\r\nbody"), /^250/);
    await s.cmd("QUIT").catch(() => undefined);
    s.close();
    const got = await healthy.waitForMessages(1, 60_000);
    assert.equal(got[0]!.headers["x-test-id"]?.[0], "healthy");
    // the tarpit is still stuck: none of its sessions has ended (timed out) to free a worker
    assert.equal(tarpit.t.closed, 0, "delivered only after a tarpit session gave up");
    assert.equal(tarpit.t.open, TARPIT_LIMIT);
    assert.ok(tarpit.t.max <= TARPIT_LIMIT, `tarpit sessions at once: ${tarpit.t.max}`);
    // nothing lost: every tarpit message is still queued, the healthy one is gone
    assert.equal(g.relay!.status().queue.depth, n);
  });
});
