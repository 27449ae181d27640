// Attack (second review of the implicit-TLS count, round 7): a connection's early count was filed
// under its listener, client address and port, and released by its socket's close. Once the first
// connection became a session (its count taken over), a second one with the same client address
// and port (a client behind a PROXY-protocol balancer using one source port towards two balancer
// frontends, or one reaching two of the node's addresses) was counted under the same id, and the
// first one's close released the SECOND one's count: that connection was outside
// maxConnectionsPerIp and past the handshake deadline, and per source port one client held any
// number of unfinished handshakes. Each connection now has an admission of its own.
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;
const PER_IP = 2;
const CLIENT = "203.0.113.9"; // the real client, as the balancer declares it
const sockets: net.Socket[] = [];

before(async () => {
  sink = await startSink();
  f = await relayFixture("smtps-pending-id-release");
  await f.configure({
    listeners: {
      smtp: { port: f.ports.smtp, host: "127.0.0.1" },
      smtps: {
        port: f.ports.smtps,
        host: "127.0.0.1",
        proxyProtocol: { enabled: true, trustedCidrs: ["127.0.0.1/32"] },
      },
      submission: { port: f.ports.submission, host: "127.0.0.1" },
    },
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sink.port },
      limits: {
        maxConnections: 100,
        maxConnectionsPerIp: PER_IP,
        idleTimeoutSeconds: 60,
        sessionTimeoutSeconds: 600,
      },
    },
  });
  await f.start();
});

after(async () => {
  for (const s of sockets) s.destroy();
  await f?.stop(() => sink.close());
});

const proxyLine = (clientPort: number, frontend: string): Buffer =>
  Buffer.from(`PROXY TCP4 ${CLIENT} ${frontend} ${clientPort} 465\r\n`, "latin1");

function openRaw(first: Buffer): Promise<net.Socket & { gone: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: f.ports.smtps, host: "127.0.0.1" }) as net.Socket & { gone: boolean };
    s.gone = false;
    s.on("close", () => (s.gone = true));
    s.on("error", () => undefined);
    s.on("data", () => undefined);
    s.once("connect", () => {
      s.write(first);
      resolve(s);
    });
    s.once("error", reject);
    sockets.push(s);
  });
}

/** A full session through the balancer: PROXY header, TLS handshake, greeting. */
async function session(clientPort: number): Promise<tls.TLSSocket> {
  const raw = await openRaw(proxyLine(clientPort, "198.51.100.1"));
  const t = tls.connect({ socket: raw, rejectUnauthorized: false });
  t.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    let got = "";
    t.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (/^220 /m.test(got)) resolve();
      if (/^421 /m.test(got)) reject(new Error(`refused: ${got}`));
    });
    t.once("close", () => reject(new Error(`closed before the greeting: ${got}`)));
  });
  return t;
}

// the first bytes of a TLS ClientHello: a handshake that has begun and will never end
const HALF_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

describe("attack: a closing connection releases another connection's early count", () => {
  it(`one client holds no more than maxConnectionsPerIp (${PER_IP}) unfinished handshakes, nor past the deadline`, async () => {
    const N = 8;
    const half: (net.Socket & { gone: boolean })[] = [];
    for (let i = 0; i < N; i++) {
      const port = 30000 + i;
      const a = await session(port); // becomes a session: its early count is adopted
      // the same client address and port through the balancer's other frontend, handshake unfinished
      half.push(await openRaw(Buffer.concat([proxyLine(port, "198.51.100.2"), HALF_HELLO])));
      await new Promise((r) => setTimeout(r, 100));
      a.destroy(); // its close releases the id the unfinished one is now counted under
      await new Promise((r) => setTimeout(r, 100));
    }
    const held = () => half.filter((s) => !s.gone).length;
    const limiter = (f.relay as unknown as { listeners: { limiter: { total: number } } }).listeners.limiter;
    const heldNow = held();
    const counted = limiter.total;
    // the handshake deadline (10 s) should close them all
    const late = await waitFor(
      "the unfinished handshakes closed",
      () => (held() === 0 ? true : undefined),
      15_000,
    )
      .then(() => 0)
      .catch(() => held());
    assert.deepEqual(
      { heldAtMost: Math.min(heldNow, PER_IP + 1), openPastDeadline: late },
      { heldAtMost: Math.min(heldNow, PER_IP), openPastDeadline: 0 },
      `${heldNow} unfinished handshakes from ${CLIENT} held open (maxConnectionsPerIp ${PER_IP}) while the limiter counted ${counted} connections; ${late} of ${N} still open 15 s later (HANDSHAKE_MS 10 s)`,
    );
  });
});
