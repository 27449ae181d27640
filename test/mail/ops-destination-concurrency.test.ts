// Per-destination concurrency (issue 17, Postfix default_destination_concurrency_limit): a slow
// partner with many messages queued for it never sees more sessions at once from the relay than
// delivery.destinationConcurrencyLimit, though the relay has more workers; a second partner is not
// held up behind it. The partner sinks count the TCP sessions open at once themselves (idle pooled
// connections included).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const LIMIT = 3;
const MESSAGES = 40;

let f: RelayFixture;
let slow: Sink;
let other: Sink;

before(async () => {
  f = await relayFixture("ops-destination-concurrency");
  slow = await startSink({ dataDelayMs: 200 });
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
    assert.ok(slow.messages.length < MESSAGES, "the other partner did not wait for the slow one");
    await waitFor("all delivered", () => (slow.messages.length >= MESSAGES ? true : undefined), 60_000);
    assert.equal(new Set(slow.messages.map((m) => m.to[0])).size, MESSAGES);
    assert.ok(slow.sessions.max <= LIMIT, `max sessions at once: ${slow.sessions.max}`);
    assert.equal(slow.sessions.max, LIMIT, "the limit, not something else, bounded the sessions");
  });
});
