// Attack (chaos review of the queue, session 18d): the scale-down drain (relay/queue/drain.ts) hands
// over a message's pending recipients only. A recipient that failed for good is written "failed"
// before its DSN is queued (scheduler.ts notify, as Postfix's bounce log), so a kill -9 between that
// write and the DSN, or a DSN that could not be queued (a full volume: the attempt fails and backs
// off), leaves the message queued with a failed recipient nobody has told the sender about; the next
// attempt queues the DSN. A drain before that attempt handed the pending recipients to the peer and
// removed the message: the DSN was never queued anywhere in the fleet, and the sender, told 250 for
// that recipient, never learned it was not delivered. The state a crash leaves on the volume is
// written here as notify's first write leaves it, and A starts on it.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Envelope } from "../../relay/queue/envelope.js";
import { newQueueId, readSpool } from "../../relay/queue/spool.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "fleet-admin-token-0123456789";
const FLEET_KEY = "fleet-key-0123456789abcdef";

let a: RelayFixture;
let b: RelayFixture;
let sink: Sink;
const id = newQueueId();

async function configure(f: RelayFixture, handover?: { host: string; port: number }): Promise<void> {
  await f.configure(
    {
      relay: "mail/edge",
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      fleet: { keyFile: "secrets/fleet/key" },
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: sink.host, port: sink.port },
      },
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
        // the seeded message's next attempt stays a minute away: the drain comes first
        retry: { initial: 30, max: 60 },
        workers: 4,
        ...(handover ? { handover } : {}),
      },
    },
    {
      files: { "secrets/admin/token": `${TOKEN}\n`, "secrets/fleet/key": `${FLEET_KEY}\n` },
      ...(f !== a ? { cert: a.relayCert } : {}),
    },
  );
}

before(async () => {
  sink = await startSink();
  sink.setDown(true); // nothing leaves the fleet: what is queued is what the drain hands over
  a = await relayFixture("drain-unreported-a");
  b = await relayFixture("drain-unreported-b");
  await configure(b);
  await b.start();
  await configure(a, { host: "127.0.0.1", port: b.ports.smtp });
  // A's volume as a kill -9 after notify's first write left it: gone@ failed (550), its DSN not
  // queued; later@ deferred, due in a minute
  const q = join(a.work, "queue");
  await mkdir(join(q, "msg"), { recursive: true });
  await mkdir(join(q, "env"), { recursive: true });
  const message = Buffer.from(
    "From: app@local.test\r\nTo: gone@partner.test, later@partner.test\r\nSubject: two recipients\r\n" +
      "Message-ID: <two@local.test>\r\n\r\nbody\r\n",
  );
  const now = Date.now();
  const env: Envelope = {
    v: 1,
    id,
    from: "app@local.test",
    recipients: [
      {
        address: "gone@partner.test",
        state: "failed",
        lastError: { code: "REJECTED", message: "550 5.1.1 no such user", status: "5.1.1" },
      },
      {
        address: "later@partner.test",
        state: "pending",
        lastError: { code: "CONNECT_FAILED", message: "421 try later", status: "4.4.1" },
      },
    ],
    receivedAt: now - 5_000,
    attempts: 1,
    nextAttemptAt: now + 55_000,
    size: message.length,
    peer: "127.0.0.1",
    ownSender: true,
  };
  await writeFile(join(q, "msg", id), message);
  await writeFile(join(q, "env", `${id}.json`), JSON.stringify(env));
  await a.start();
});

after(async () => {
  await a?.stop();
  await b?.stop(() => sink?.close());
});

describe("attack: a drain and a failed recipient whose DSN is not queued yet", () => {
  it("the sender's DSN for gone@ is queued somewhere in the fleet after A's drain", async () => {
    const st = await a.relay!.drain({ deadlineMs: 8_000 });
    const fleet = [
      ...(await readSpool(join(a.work, "queue"))).map((m) => ({
        pod: "a",
        env: m.env,
        message: () => m.message(),
      })),
      ...(await readSpool(join(b.work, "queue"))).map((m) => ({
        pod: "b",
        env: m.env,
        message: () => m.message(),
      })),
    ];
    const dsns = [];
    for (const m of fleet)
      if (m.env.from === "" && m.env.recipients.some((r) => r.address === "app@local.test"))
        dsns.push((await m.message()).toString("latin1"));
    const seen = fleet.map(
      (m) =>
        `${m.pod}: <${m.env.from}> -> ${m.env.recipients.map((r) => `${r.address} ${r.state}`).join(", ")}`,
    );
    assert.equal(
      dsns.length,
      1,
      `one DSN to the sender; the fleet holds: ${JSON.stringify(seen)}; drain ${JSON.stringify(st)}`,
    );
    assert.match(dsns[0]!, /gone@partner\.test/, "the DSN reports the failed recipient");
    // and the pending recipient still travels on: B holds it
    assert.ok(
      fleet.some(
        (m) =>
          m.pod === "b" &&
          m.env.recipients.some((r) => r.address === "later@partner.test" && r.state === "pending"),
      ),
      `later@ handed over to B: ${JSON.stringify(seen)}`,
    );
  });
});
