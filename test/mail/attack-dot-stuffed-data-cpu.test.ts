// Attack review (inbound, Internet sender): a body made of lines that start with a dot. SMTP
// dot-stuffs such a line ("." becomes ".."), and smtp-server's DATA scan (copied, with its scan by
// indexOf, in relay/inbound/data-scan.ts) handles every escape dot by writing what it has so far and
// going on with the rest of the chunk in a setImmediate: one write, one trip through the relay's
// checks (data-checks.ts) and the spool's reader (read-chunks.ts), and one pass of the event loop per
// dot. A client outside relayFrom that may only write to a local domain sends "..\r\n" lines: four
// bytes per escape, a million of them in 4 MiB, twelve million in the default 50 MiB limit. On this
// machine 4 MiB of them took some 7 s of CPU to accept against 0.15 s for as many ordinary bytes
// (50x), so one unauthenticated session keeps the relay's one event loop busy for minutes per
// message, every one of its passes slowed for every other session. Its cost must not depend on how
// many dots a message has: every escape of a chunk is handled in one pass.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { hostileConnect } from "../support/hostile-client.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;

/** An Internet sender (outside relayFrom). */
const OUTSIDER = "127.0.0.2";
const BODY_BYTES = 4 * 2 ** 20;

before(async () => {
  f = await relayFixture("attack-dot-cpu");
  sink = await startSink();
  await f.configure(outsiderInbound(sink));
  await f.start();
});

after(async () => {
  await f?.stop(() => sink?.close());
});

/**
 * Sends one message whose body is `line` repeated to BODY_BYTES (as it goes on the wire, already
 * dot-stuffed) and measures the relay's CPU (it runs in this process) from the body's first byte to
 * the 250.
 */
async function accept(line: string): Promise<{ reply: string; cpuMs: number; wallMs: number }> {
  const c = await hostileConnect(f.ports.smtp, { localAddress: OUTSIDER, timeoutMs: 180_000 });
  try {
    assert.match(await c.cmd("EHLO attacker.test"), /^250/);
    assert.match(await c.cmd("MAIL FROM:<x@attacker.test>"), /^250/);
    assert.match(await c.cmd("RCPT TO:<user@local.test>"), /^250/);
    assert.match(await c.cmd("DATA"), /^354/);
    const body = "Subject: dots\r\n\r\n" + line.repeat(Math.floor(BODY_BYTES / line.length)) + ".\r\n";
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    c.write(Buffer.from(body, "latin1"));
    const [reply] = await c.replies(1);
    const cpu = process.cpuUsage(cpu0);
    return { reply: reply!, cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 };
  } finally {
    c.close();
  }
}

describe("attack: a body of dot-stuffed lines", () => {
  it("costs the relay about what as many ordinary bytes cost, not a pass of the event loop per dot", async () => {
    const plain = await accept("ab\r\n");
    assert.match(plain.reply, /^250 /);
    // each line is a lone "." once unstuffed: the same bytes on the wire, a million escape dots
    const dots = await accept("..\r\n");
    assert.match(dots.reply, /^250 /);
    const budget = 4 * plain.cpuMs + 1000;
    assert.ok(
      dots.cpuMs <= budget,
      `4 MiB of dot-stuffed lines took ${Math.round(dots.cpuMs)} ms of CPU (${Math.round(dots.wallMs)} ms) ` +
        `to accept, ordinary lines ${Math.round(plain.cpuMs)} ms (${Math.round(plain.wallMs)} ms); allowed ${Math.round(budget)} ms`,
    );
  });
});
