// Attack (cluster network, IPv6; attack review, session 12): a pod sharing a /64 with the relay's
// pods (every pod of a node under the default node IPAM) held the connections and spent the AUTH
// failures of that /64, which the relay counted as one client: the fleet peer's own connection got
// 421, its fleet login 454 for the whole window, and a scale-down drain ended `incomplete` with the
// queue left on a volume no pod mounts. Clients inside the cluster's IPv6 networks
// (spec.service.clusterNetworks, compiled to inbound.limits.ipv6ExactClients) are now counted per
// address, and the right fleet credential logs in whatever the throttle says
// (relay/inbound/throttle.ts clientKeys, relay/inbound/server.ts onAuth).
// The pods' addresses come through a trusted PROXY-protocol front on loopback (as in
// relay-inbound-authority.test.ts): nothing here needs an address the machine does not have.
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { fleetPassword } from "../../relay/queue/handover.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import {
  plainToken,
  rawSession,
  relayFixture,
  type RawSession,
  type RelayFixture,
} from "../support/relay.js";

const KEY = "fleet-key-0123456789abcdef0123456789";
const PEER = "fd00:0:0:1::b"; // the fleet peer (the draining pod)
const NEIGHBOUR = "fd00:0:0:1::bad"; // another pod of the same /64
const OUTSIDER = "2001:db8:7::1"; // an Internet host (outside the cluster's networks)

let a: RelayFixture;
let b: RelayFixture;
let heldPort: number;
let front: { server: Server; port: number; sockets: Set<Socket>; next: string[] };
const held: RawSession[] = [];

/** A front on loopback before B's port 25: each connection gets a PROXY v1 header naming `next`'s first. */
async function startFront(to: number): Promise<typeof front> {
  const sockets = new Set<Socket>();
  const next: string[] = [];
  const server = createServer((client) => {
    const src = next.shift() ?? OUTSIDER;
    const up = connect({ host: "127.0.0.1", port: to });
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => (client.destroy(), up.destroy()));
    }
    up.once("connect", () => {
      up.write(`PROXY TCP6 ${src} fd00:0:0:2::25 40000 25\r\n`);
      client.pipe(up);
      up.pipe(client);
    });
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
  return { server, port, sockets, next };
}

async function configure(
  f: RelayFixture,
  o: { handover?: { host: string; port: number }; cert?: RelayFixture },
) {
  await f.configure(
    {
      listeners: {
        smtp: {
          port: f.ports.smtp,
          host: "127.0.0.1",
          ...(o.handover ? {} : { proxyProtocol: { enabled: true, trustedCidrs: ["127.0.0.1/32"] } }),
        },
        smtps: { port: f.ports.smtps, host: "127.0.0.1" },
        submission: { port: f.ports.submission, host: "127.0.0.1" },
      },
      fleet: { keyFile: "secrets/fleet/key" },
      inbound: {
        require: "none",
        relayFrom: o.handover ? ["127.0.0.1"] : [],
        localDomains: ["local.test"],
        // as the operator compiles the default spec.service.clusterNetworks
        limits: { ipv6ExactClients: ["fc00::/7", "fe80::/10", "::1/128"] },
      },
      policies: [
        {
          name: "mail/held",
          domains: ["held.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: heldPort } },
        },
      ],
      queue: {
        dir: `${f.work}/queue`,
        retry: { initial: 30, max: 60 },
        workers: 2,
        ...(o.handover ? { handover: o.handover } : {}),
      },
    },
    { files: { "secrets/fleet/key": `${KEY}\n` }, ...(o.cert ? { cert: o.cert.relayCert } : {}) },
  );
}

/** A session to B from `client` (through the front). */
async function from(client: string): Promise<RawSession> {
  front.next.push(client);
  return rawSession(front.port);
}

async function login(client: string, user: string, pass: string): Promise<string> {
  const s = await from(client);
  try {
    await s.cmd("EHLO pod.internal");
    await s.starttls();
    await s.cmd("EHLO pod.internal");
    return await s.cmd(`AUTH PLAIN ${plainToken(user, pass)}`);
  } finally {
    s.close();
  }
}

before(async () => {
  heldPort = await freePort(); // nothing listens: A's message stays queued
  a = await relayFixture("fleet-neighbour-a");
  b = await relayFixture("fleet-neighbour-b");
  await configure(b, { cert: a }); // the fleet: B serves A's certificate
  await b.start();
  front = await startFront(b.ports.smtp);
});

after(async () => {
  for (const s of held) s.close();
  for (const s of front?.sockets ?? []) s.destroy();
  front?.server.close();
  await a?.stop();
  await b?.stop();
});

describe("attack: a /64 neighbour locks the fleet out of its own handover", () => {
  it("a neighbour holding 20 connections leaves the fleet peer its own", async () => {
    for (let i = 0; i < 20; i++) {
      const s = await from(NEIGHBOUR);
      assert.match(await s.cmd("EHLO neighbour.internal"), /^250/);
      held.push(s);
    }
    const over = await from(NEIGHBOUR);
    assert.match(over.greeting, /^421 /, "the neighbour's own 21st connection is refused");
    over.close();
    const s = await from(PEER);
    assert.match(s.greeting, /^220 /, "the fleet peer still gets a session");
    s.close();
    for (const h of held.splice(0)) h.close();
    await waitFor("the neighbour's connections released", async () => {
      const t = await from(NEIGHBOUR);
      t.close();
      return /^220/.test(t.greeting) || undefined;
    });
  });

  it("an Internet host's /64 is still one client", async () => {
    const mine: RawSession[] = [];
    for (let i = 0; i < 20; i++) mine.push(await from(`2001:db8:7::${(i + 1).toString(16)}`));
    const s = await from("2001:db8:7::ff");
    assert.match(s.greeting, /^421 /, "another address of the same /64 gets no 21st connection");
    s.close();
    for (const m of mine) m.close();
  });

  it("a neighbour's ten wrong passwords do not lock the fleet credential out", async () => {
    for (let i = 0; i < 10; i++) assert.match(await login(NEIGHBOUR, "nobody", `guess${i}`), /^(535|454) /);
    assert.match(await login(NEIGHBOUR, "nobody", "again"), /^454 /, "the neighbour itself is throttled");
    assert.match(await login(PEER, "sealpost-fleet", fleetPassword(KEY)), /^235 /);
  });

  it("an outsider's wrong fleet passwords do not lock the fleet credential out", async () => {
    for (let i = 0; i < 10; i++)
      assert.match(await login(OUTSIDER, "sealpost-fleet", `guess${i}`), /^(535|454) /);
    assert.match(await login(PEER, "sealpost-fleet", fleetPassword(KEY)), /^235 /);
  });

  it("the scale-down drain hands its queue over meanwhile", async () => {
    // A's handover reaches B through the front, as the peer's pod address
    await configure(a, { handover: { host: "127.0.0.1", port: front.port } });
    await a.start();
    const s = await rawSession(a.ports.smtp);
    await s.cmd("EHLO app.internal");
    assert.match(await s.cmd("MAIL FROM:<app@local.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<u@held.test>"), /^250 /);
    assert.match(await s.cmd("DATA"), /^354 /);
    assert.match(await s.data("Subject: queued\r\n\r\nx\r\n"), /^250 /);
    s.close();
    await waitFor("queued on A", () => (a.relay!.status().queue.depth === 1 ? true : undefined));
    for (let i = 0; i < 4; i++) front.next.push(PEER); // the drain's connections
    const st = await a.relay!.drain({ deadlineMs: 10_000 });
    assert.equal(st.state, "drained", `the queue stays on A: ${st.lastError ?? ""}`);
  });
});
