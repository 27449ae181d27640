// Attack (chaos review of the queue, session 18d): the admin commands wait for a running delivery
// attempt before they act on a message (scheduler.ts exclusive), but not for the drain's handover
// of it (drain.ts handOver). An administrator bouncing a message while the drain hands it over
// (the peer has the data, its 250 not yet given) had the recipient marked failed and a DSN queued
// to the sender, then the peer's 250 arrived and the message left as handed over: the sender was
// told "failed" of mail the fleet went on to deliver. The peer here is a sink standing in for the
// fleet's Service (the fleet's certificate, the fleet's login) that holds its 250 until the test
// lets it go.
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { FLEET_USER, fleetPassword } from "../../relay/queue/handover.js";
import { readSpool } from "../../relay/queue/spool.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "fleet-admin-token-0123456789";
const FLEET_KEY = "fleet-key-0123456789abcdef";

let a: RelayFixture;
let mx: Sink;
let peer: Sink;
let open!: () => void;
const gate = new Promise<void>((r) => (open = r));

const admin = (path: string, method = "GET"): Promise<Response> =>
  fetch(`http://127.0.0.1:${a.ports.admin}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}` },
  });

before(async () => {
  mx = await startSink();
  mx.setDown(true); // the partner is down: the message stays queued on A
  a = await relayFixture("drain-admin-race");
  peer = await startSink({
    tls: { cert: await readFile(a.relayCert.certFile), key: await readFile(a.relayCert.keyFile) },
    auth: { user: FLEET_USER, pass: fleetPassword(FLEET_KEY) },
    dataGate: gate,
  });
  await a.configure(
    {
      relay: "mail/edge",
      admin: { port: a.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      fleet: { keyFile: "secrets/fleet/key" },
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: mx.host, port: mx.port },
      },
      policies: [
        {
          name: "mail/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: mx.host, port: mx.port } },
        },
      ],
      queue: {
        dir: join(a.work, "queue"),
        maxAge: 7200,
        retry: { initial: 30, max: 60 },
        workers: 4,
        handover: { host: peer.host, port: peer.port },
      },
    },
    { files: { "secrets/admin/token": `${TOKEN}\n`, "secrets/fleet/key": `${FLEET_KEY}\n` } },
  );
  await a.start();
});

after(async () => {
  open();
  await a?.stop(async () => {
    await peer?.close();
    await mx?.close();
  });
});

describe("attack: an admin bounce while the drain hands the message over", () => {
  it("the sender is not told failed of a message the peer took", async () => {
    const s = await rawSession(a.ports.smtp);
    await s.cmd("EHLO app.internal");
    assert.match(await s.cmd("MAIL FROM:<app@local.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<x@partner.test>"), /^250 /);
    assert.match(await s.cmd("DATA"), /^354 /);
    const queued = await s.data("Subject: raced\r\nMessage-ID: <raced@local.test>\r\n\r\nbody\r\n");
    assert.match(queued, /^250 /);
    await s.cmd("QUIT");
    s.close();
    const id = /queued as (\S+)/.exec(queued)![1]!;
    await waitFor("deferred once on A", async () => {
      const r = (await (await admin(`/queue/${id}`)).json()) as { attempts?: number; inFlight?: boolean };
      return r.attempts === 1 && !r.inFlight ? true : undefined;
    });

    const drained = a.relay!.drain({ deadlineMs: 20_000 });
    await waitFor("the peer has the data, its 250 held", () =>
      peer.messages.length === 1 ? true : undefined,
    );
    // the administrator bounces it now: it must not act on a message being handed over
    const bounce = admin(`/queue/${id}`, "DELETE").then(async (r) => ({
      status: r.status,
      body: await r.text(),
    }));
    const early = await Promise.race([bounce, new Promise((r) => setTimeout(() => r(undefined), 5000))]);
    open(); // the peer's 250
    const st = await drained;
    const answered = early ?? (await bounce);

    // a DSN queued on A stays there or is handed over to the peer by the drain's next pass
    const dsns = [
      ...(await readSpool(join(a.work, "queue"))).filter((m) => m.env.from === "").map(() => "on A"),
      ...peer.messages.filter((m) => m.from === "").map(() => "handed over"),
    ];
    const original = peer.messages.filter((m) => m.from === "app@local.test");
    assert.deepEqual(
      { original: original.length, dsns },
      { original: 1, dsns: [] },
      `the peer took it, so no DSN saying it failed; the admin's bounce answered ${JSON.stringify(answered)}; drain ${JSON.stringify(st)}`,
    );
  });
});
