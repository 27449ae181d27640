// PROXY protocol on the inbound listeners, end to end: a tiny load balancer on loopback (connects
// to the relay from 127.0.0.1, the trusted address, writes a v1 or v2 header claiming another
// loopback address as the client, then pipes bytes both ways). Host rules and relayFrom apply to
// the claimed (real) client, not to the balancer; the session log has both. Untrusted peers and a
// trusted peer without a header are refused.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { V2_SIGNATURE } from "../../relay/inbound/proxy-protocol.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import {
  rawSession,
  startRelay,
  testConfig,
  testPorts,
  writeConfigDir,
  type LogCapture,
  type TestPorts,
} from "../support/relay.js";

const LB = "127.0.0.1"; // the load balancer: trusted, and (as a client) in relayFrom
const TLS_CLIENT = "127.0.0.5"; // a host rule requires TLS of it
const INTERNAL = "127.0.0.6"; // in relayFrom
const STRANGER = "127.0.0.7"; // nobody special

let work: string;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
const balancers: { server: Server; port: number; sockets: Set<Socket> }[] = [];

function v1(client: string, dport: number): Buffer {
  return Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 40001 ${dport}\r\n`, "latin1");
}

function v2(client: string, dport: number): Buffer {
  const b = Buffer.alloc(12);
  client.split(".").forEach((o, i) => (b[i] = Number(o)));
  [127, 0, 0, 1].forEach((o, i) => (b[4 + i] = o));
  b.writeUInt16BE(40002, 8);
  b.writeUInt16BE(dport, 10);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x00, 12]), b]);
}

/** v2 over TCP6 with `client` as an IPv4-mapped address: what a dual-stack balancer sends for IPv4. */
function v2Mapped(client: string, dport: number): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt16BE(0xffff, 10);
  client.split(".").forEach((o, i) => (b[12 + i] = Number(o)));
  b[31] = 1; // destination ::1
  b.writeUInt16BE(40003, 32);
  b.writeUInt16BE(dport, 34);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x21, 0x00, 36]), b]);
}

/** A load balancer in front of `port` that prefixes each connection with `header()`. */
async function balancer(port: number, header: () => Buffer): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect({ host: "127.0.0.1", port, localAddress: LB });
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        up.destroy();
      });
    }
    up.once("connect", () => {
      up.write(header());
      client.pipe(up);
      up.pipe(client);
    });
  });
  const p = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
  balancers.push({ server, port: p, sockets });
  return p;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "ops-proxy-"));
  const ca = await makeCa(join(work, "ca"));
  const cert = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  ports = await testPorts();
  const proxy = { enabled: true, trustedCidrs: [`${LB}/32`] };
  const cfg = testConfig(ports, join(work, "queue"), {
    listeners: {
      smtp: { port: ports.smtp, host: "127.0.0.1", proxyProtocol: proxy },
      smtps: { port: ports.smtps, host: "127.0.0.1", proxyProtocol: proxy },
      submission: { port: ports.submission, host: "127.0.0.1" },
    },
    inbound: { require: "none", relayFrom: [LB, INTERNAL], localDomains: ["local.test"] },
    policies: [
      {
        name: "mail/tls-client",
        domains: ["tlsclient.test"],
        outbound: { tls: { mode: "none" } },
        inbound: { hosts: [TLS_CLIENT], require: "tls" },
      },
    ],
  });
  await writeConfigDir(join(work, "config"), {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(cert.certFile),
    "tls/tls.key": await readFile(cert.keyFile),
  });
  ({ relay, logs } = await startRelay(join(work, "config")));
});

after(async () => {
  for (const b of balancers) {
    for (const s of b.sockets) s.destroy();
    await new Promise((r) => b.server.close(r));
  }
  await relay?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("PROXY protocol listeners", () => {
  it("v1: the host rule of the real client (127.0.0.5: TLS required) applies: 530 until STARTTLS", async () => {
    const port = await balancer(ports.smtp, () => v1(TLS_CLIENT, ports.smtp));
    const s = await rawSession(port);
    assert.match(s.greeting, /^220 relay\.test/);
    await s.cmd("EHLO client.test");
    assert.equal(await s.cmd("MAIL FROM:<a@client.test>"), "530 5.7.0 Must issue a STARTTLS command first");
    assert.match(await s.starttls(), /^220 /);
    await s.cmd("EHLO client.test");
    assert.match(await s.cmd("MAIL FROM:<a@client.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<bob@local.test>"), /^250 /);
    await s.cmd("QUIT").catch(() => "");
    s.close();
    const line = await waitFor("session log", () =>
      logs.find((l) => l.event === "session" && l.peer === TLS_CLIENT),
    );
    assert.equal(line.proxiedBy, LB);
    assert.equal(line.requirement, "tls");
    assert.deepEqual(line.policies, ["mail/tls-client"]);
  });

  it("attack: v2 TCP6 with an IPv4-mapped client (dual-stack balancer): the IPv4 host rule (TLS required) still applies", async () => {
    const s = await rawSession(await balancer(ports.smtp, () => v2Mapped(TLS_CLIENT, ports.smtp)));
    await s.cmd("EHLO client.test");
    assert.equal(await s.cmd("MAIL FROM:<a@client.test>"), "530 5.7.0 Must issue a STARTTLS command first");
    s.close();
    const internal = await rawSession(await balancer(ports.smtp, () => v2Mapped(INTERNAL, ports.smtp)));
    await internal.cmd("EHLO internal.test");
    assert.match(await internal.cmd("MAIL FROM:<app@internal.test>"), /^250 /);
    assert.match(await internal.cmd("RCPT TO:<someone@elsewhere.test>"), /^250 /, "relayFrom applies");
    internal.close();
  });

  it("v2: relayFrom is decided on the real client: 127.0.0.6 may relay, 127.0.0.7 may not (the LB could)", async () => {
    const internal = await rawSession(await balancer(ports.smtp, () => v2(INTERNAL, ports.smtp)));
    await internal.cmd("EHLO internal.test");
    assert.match(await internal.cmd("MAIL FROM:<app@internal.test>"), /^250 /);
    assert.match(await internal.cmd("RCPT TO:<someone@elsewhere.test>"), /^250 /);
    internal.close();
    const stranger = await rawSession(await balancer(ports.smtp, () => v2(STRANGER, ports.smtp)));
    await stranger.cmd("EHLO stranger.test");
    assert.match(await stranger.cmd("MAIL FROM:<x@stranger.test>"), /^250 /);
    assert.equal(await stranger.cmd("RCPT TO:<someone@elsewhere.test>"), "550 5.7.1 Relaying denied");
    stranger.close();
    const line = await waitFor("session log", () =>
      logs.find((l) => l.event === "session" && l.peer === STRANGER),
    );
    assert.equal(line.proxiedBy, LB);
  });

  it("v2 on the implicit-TLS listener (465): the header comes before the TLS handshake", async () => {
    const s = await rawSession(await balancer(ports.smtps, () => v2(TLS_CLIENT, ports.smtps)), {
      implicitTls: true,
    });
    assert.match(s.greeting, /^220 /);
    await s.cmd("EHLO client.test");
    assert.match(await s.cmd("MAIL FROM:<a@client.test>"), /^250 /);
    s.close();
    const line = await waitFor("session log", () =>
      logs.find((l) => l.event === "session" && l.listener === "smtps" && l.peer === TLS_CLIENT),
    );
    assert.equal(line.proxiedBy, LB);
  });

  it("a PROXY header from an untrusted address is refused with 421 and the connection closed", async () => {
    const sock = connect({ host: "127.0.0.1", port: ports.smtp, localAddress: STRANGER });
    sock.write(v1("10.9.9.9", ports.smtp));
    const got = await new Promise<string>((resolve) => {
      let text = "";
      sock.on("data", (d: Buffer) => (text += d.toString()));
      sock.on("close", () => resolve(text));
    });
    assert.match(got, /^421 4\.7\.0 relay\.test connection refused: not from a trusted proxy\r\n$/);
    const plain = await rawSession(ports.smtp, { localAddress: STRANGER });
    assert.match(plain.greeting, /^421 /, "a direct (untrusted) client is refused as well");
    plain.close();
    assert.ok(logs.find((l) => l.event === "proxy-refused" && l.peer === STRANGER));
  });

  it("a trusted balancer that sends no PROXY header is refused", async () => {
    const sock = connect({ host: "127.0.0.1", port: ports.smtp, localAddress: LB });
    sock.write("EHLO lost-its-proxy-setting.test\r\n");
    const got = await new Promise<string>((resolve) => {
      let text = "";
      sock.on("data", (d: Buffer) => (text += d.toString()));
      sock.on("close", () => resolve(text));
    });
    assert.match(got, /^421 4\.7\.0 relay\.test invalid PROXY protocol header/);
  });

  it("the listener without proxyProtocol (587) is unaffected", async () => {
    const s = await rawSession(ports.submission, { localAddress: STRANGER });
    assert.match(s.greeting, /^220 /);
    s.close();
  });
});
