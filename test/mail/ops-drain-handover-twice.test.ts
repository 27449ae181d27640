// Attack (review of the handover allowance, round 7): a fleet session got one hop over hopLimit, but
// every receiving pod adds its own Received: line, so a message handed over twice (a scale-down by
// two, a rolling restart) carried two more lines than when the client sent it: one taken with 250
// at hopLimit - 1 lines passed A -> B, then C answered 554 5.4.6 to B's drain and it stayed on B's
// volume. A fleet session's hops are no longer counted again (server.ts HANDOVER_ALLOWANCE). From
// the client's side: one message, two drains, each must end drained.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "fleet-admin-token-0123456789";
const FLEET_KEY = "fleet-key-0123456789abcdef";

let a: RelayFixture;
let b: RelayFixture;
let c: RelayFixture;
let sink: Sink;

const api = (f: RelayFixture, path: string): Promise<Response> =>
  fetch(`http://127.0.0.1:${f.ports.admin}${path}`);

async function configure(f: RelayFixture, handover?: { host: string; port: number }): Promise<void> {
  await f.configure(
    {
      relay: "mail/edge",
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      fleet: { keyFile: "secrets/fleet/key" },
      inbound: { require: "none", relayFrom: ["127.0.0.1"], localDomains: ["local.test"] },
      policies: [
        {
          name: "mail/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: sink.host, port: sink.port } },
        },
      ],
      queue: {
        dir: join(f.work, "queue"),
        maxAge: 7200,
        retry: { initial: 0.5, max: 2 },
        workers: 4,
        ...(handover ? { handover } : {}),
      },
    },
    {
      files: { "secrets/admin/token": `${TOKEN}\n`, "secrets/fleet/key": `${FLEET_KEY}\n` },
      // one fleet: every pod presents the same server certificate (the drain checks it)
      ...(f !== a ? { cert: a.relayCert } : {}),
    },
  );
}

before(async () => {
  sink = await startSink();
  sink.setDown(true); // nothing leaves the fleet: the queue is what is handed over
  a = await relayFixture("double-handover-a");
  b = await relayFixture("double-handover-b");
  c = await relayFixture("double-handover-c");
  await configure(c);
  await c.start();
  await configure(b, { host: "127.0.0.1", port: c.ports.smtp });
  await b.start();
  await configure(a, { host: "127.0.0.1", port: b.ports.smtp });
  await a.start();
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await c?.stop(() => sink?.close());
});

describe("attack: a message handed over twice and the hop allowance", () => {
  it("A accepts a message with hopLimit - 1 Received: lines (250)", async () => {
    const hops = Array.from(
      { length: 49 },
      (_, i) =>
        `Received: from h${i}.client.test by h${i + 1}.client.test; Sat, 05 Dec 2026 10:00:00 +0000\r\n`,
    ).join("");
    const s = await rawSession(a.ports.smtp);
    await s.cmd("EHLO app.internal");
    assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<hops@partner.test>"), /^250 /);
    assert.match(await s.cmd("DATA"), /^354 /);
    assert.match(await s.data(`${hops}Subject: hops\r\nX-Test-Id: hops\r\n\r\nhops\r\n`), /^250 /);
    await s.cmd("QUIT");
    s.close();
    await waitFor("queued on A", async () => {
      const st = (await (await api(a, "/status")).json()) as { queue: { depth: number } };
      return st.queue.depth === 1 ? true : undefined;
    });
  });

  it("A's drain hands it to B", async () => {
    const st = await a.relay!.drain({ deadlineMs: 8_000 });
    assert.equal(st.state, "drained", JSON.stringify(st));
    await waitFor("queued on B", async () => {
      const st2 = (await (await api(b, "/status")).json()) as { queue: { depth: number } };
      return st2.queue.depth === 1 ? true : undefined;
    });
  });

  it("B's drain (the next pod scaled down) hands it to C: not stranded on B's volume", async () => {
    const st = await b.relay!.drain({ deadlineMs: 6_000 });
    assert.deepEqual(
      { state: st.state, remaining: st.remaining, handedOver: st.handedOver },
      { state: "drained", remaining: 0, handedOver: 1 },
      `B's drain: ${JSON.stringify(st)}`,
    );
  });
});
