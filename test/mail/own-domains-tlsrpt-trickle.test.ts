// Attack (inbound review, round 7): a TLS-RPT report address (ownDomains.tlsRpt.addresses, published in
// the domain's _smtp._tls TXT record, so anyone can find it) takes mail from any unauthenticated
// client, and its DATA is read into memory, never spooled. receiveReportMail kept every chunk as it
// came: a client that sent its body one byte per TCP segment made each read a 1-byte Buffer of some
// 120 bytes of memory, so one session of the default ~1.4 MB held about 170 MB (the spool path was
// fixed for exactly this: relay/queue/small-chunks.ts). Small chunks are now gathered (BodyParts).
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { after, before, describe, it } from "node:test";
import { hostileConnect, type HostileClient } from "../support/hostile-client.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

let f: RelayFixture;
let sink: Sink;
const open: HostileClient[] = [];

before(async () => {
  sink = await startSink();
  f = await relayFixture("tlsrpt-trickle");
  await f.configure({
    ...outsiderInbound(sink),
    ownDomains: { tlsRpt: { addresses: ["tlsrpt@local.test"] } },
  });
  await f.start();
});

after(async () => {
  for (const c of open) c.close();
  await f?.stop(() => sink.close());
});

function heap(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** A stranger's DATA to `rcpt`, its body trickled one byte per write; the heap grown while it is held. */
async function trickle(rcpt: string, bytes: number): Promise<{ grown: number; c: HostileClient }> {
  const c = await hostileConnect(f.ports.smtp, { timeoutMs: 60_000 });
  open.push(c);
  assert.match(await c.cmd("EHLO stranger.example"), /^250/);
  assert.match(await c.cmd("MAIL FROM:<reports@stranger.example>"), /^250/);
  assert.match(await c.cmd(`RCPT TO:<${rcpt}>`), /^250/);
  assert.match(await c.cmd("DATA"), /^354/);
  c.write("Subject: tlsrpt\r\nContent-Type: text/plain\r\n\r\n");
  await new Promise((r) => setTimeout(r, 200));
  const before = heap();
  const line = Buffer.from("x".repeat(70) + "\r\n", "latin1");
  for (let i = 0; i < bytes; i++) {
    c.write(line.subarray(i % line.length, (i % line.length) + 1));
    // the relay reads it before the next byte goes (one TCP segment per byte, as over a slow path)
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 300));
  return { grown: heap() - before, c };
}

const BYTES = 72 * 5600; // whole lines: the body ends in CRLF before the dot

describe("attack: a TLS-RPT report mail trickled one byte per segment", () => {
  it("control: the same trickle to an ordinary local recipient holds about its bytes (small-chunks.ts)", async () => {
    const { grown, c } = await trickle("someone@local.test", BYTES);
    c.write(".\r\n");
    assert.match((await c.replies(1))[0]!, /^250/);
    assert.ok(grown < 8 * BYTES, `${(grown / 1e6).toFixed(1)} MB held for ${BYTES} bytes`);
  });

  it(`${BYTES} bytes to the report address hold at most a few times their size, not one buffer per byte`, async () => {
    const { grown, c } = await trickle("tlsrpt@local.test", BYTES);
    const perByte = grown / BYTES;
    c.write(".\r\n");
    const [reply] = await c.replies(1);
    assert.match(reply!, /^550 5\.6\.0/, "no report part: refused, after it was held");
    assert.ok(
      grown < 8 * BYTES,
      `one unauthenticated session held ${(grown / 1e6).toFixed(1)} MB for ${BYTES} bytes sent ` +
        `(${perByte.toFixed(0)} bytes of memory per byte); at the default maxMessageBytes (~1.46 MB) ` +
        `that is ~${((perByte * 1.46e6) / 1e6).toFixed(0)} MB per session`,
    );
  });
});
