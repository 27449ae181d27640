// Attack (hostile partner MX): a partner whose MX accepts TCP and then says nothing (a tarpit) is
// sent a few large messages the relay signs with DKIM (the organisation's own mail, e.g. the
// attachments the partner asked for). Each attempt is admitted into the queue's memory budget
// (memory-budget.ts: queue.memoryBytes, 128 MiB by default) with its cost, 4x the size for a DKIM
// group, before it connects, and keeps it while the partner hangs (up to attemptTimeout, 10 min; 30 s
// here, the greeting timeout of a partner that never greets). The budget admits in arrival order: once
// one attempt waits for more than is left, every later attempt waits behind it, however little it
// needs. Four 8 MiB signed messages to the tarpit (3 x 32 MiB held, the fourth waiting) and a third
// party's message to a healthy domain waits until a tarpit session times out, round after round while
// the partner has such mail queued. The relay runs its defaults (workers, memoryBytes, limits).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeDkimKey } from "../support/dkim.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSilentMx, type SilentMx } from "../support/silent-mx.js";
import { startSink, type Sink } from "../support/sink.js";

const KEY_FILE = "secrets/dkim-local/private.key";
const MIB = 1024 * 1024;
const LARGE = 4;

let g: RelayFixture;
/** A partner that accepts TCP and then says nothing at all (no greeting): every session hangs. */
let tarpit: SilentMx;
let healthy: Sink;

before(async () => {
  g = await relayFixture("attack-tarpit-memory-budget");
  tarpit = await startSilentMx("127.0.0.1", await freePort("127.0.0.1"));
  healthy = await startSink();
  const key = await makeDkimKey(g.work, "local");
  await g.configure(
    {
      queue: { dir: `${g.work}/queue`, retry: { initial: 60, max: 60 } },
      delivery: { allowedInternalCidrs: ["127.0.0.0/8"] },
      dkim: [{ domain: "local.test", selector: "sel1", keyFile: KEY_FILE }],
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
    },
    { files: { [KEY_FILE]: await readFile(key.keyFile) } },
  );
  await g.start();
});

after(async () => {
  await tarpit?.close(); // the hung sessions end, so the relay stops without waiting for them
  await g?.stop(() => healthy?.close());
});

describe("attack: a tarpit partner holds the memory budget", () => {
  it("signed large messages to a silent partner do not stop everyone's delivery: a third party's mail still goes out while it hangs", async () => {
    const line = `${"x".repeat(76)}\r\n`;
    const body = line.repeat(Math.ceil((8 * MIB) / line.length));
    const s = await rawSession(g.ports.smtp);
    assert.match(await s.cmd("EHLO client.test"), /^250/);
    for (let i = 0; i < LARGE; i++) {
      assert.match(await s.cmd("MAIL FROM:<alice@local.test>"), /^250/);
      assert.match(await s.cmd(`RCPT TO:<user${i}@tarpit.test>`), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      const head = `From: alice@local.test\r\nTo: user${i}@tarpit.test\r\nSubject: documents ${i}\r\n\r\n`;
      assert.match(await s.data(head + body), /^250/);
    }
    await waitFor("the tarpit holds the relay's sessions", () => (tarpit.open > 0 ? true : undefined));
    assert.match(await s.cmd("MAIL FROM:<bob@local.test>"), /^250/);
    assert.match(await s.cmd("RCPT TO:<carol@healthy.test>"), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    assert.match(
      await s.data("From: bob@local.test\r\nSubject: third party\r\nX-Test-Id: third-party\r\n\r\nbody"),
      /^250/,
    );
    await s.cmd("QUIT").catch(() => undefined);
    s.close();
    await waitFor(
      "the third party's message delivered",
      () => (healthy.messages.length ? true : undefined),
      90_000,
    );
    assert.match(healthy.messages[0]!.data.toString("latin1"), /X-Test-Id: third-party/);
    // delivered only once a tarpit session gave up (its greeting timeout) and freed its budget
    assert.equal(
      tarpit.total - tarpit.open,
      0,
      `the third party waited for the tarpit: ${tarpit.total - tarpit.open} tarpit session(s) had to time out first`,
    );
    assert.ok(tarpit.open > 0, "the tarpit still hangs");
  });
});
