// Issue 22 finding 4: the relay's own connections must not be aimed at the cluster's inside by a
// domain's DNS. Real relay and DNS server on loopback; the relay's allow-list admits only
// 127.0.0.1 (its sink), so every other loopback address stands for "inside": an MX pointing at
// 127.0.0.44 and an mta-sts.<domain> at 127.0.0.45 are never connected to, while an explicitly
// configured next hop at 127.0.0.46 (trusted) still is. The MTA-STS fetch error never reaches a
// TLS-RPT report's additional-information, and an https: rua on an internal address is not POSTed to.
import assert from "node:assert/strict";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { DestinationFilter, addressClass } from "../../relay/net/address-class.js";
import { buildReport, postReport } from "../../relay/outbound/tlsrpt.js";
import type { Dns } from "../../relay/outbound/mx.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let dns: DnsServer;
let sink: Sink;
let trusted: Sink;
let logs: LogCapture;
let port: number;
const inside = { connections: 0, servers: [] as net.Server[] };

async function insideServer(host: string, p: number): Promise<void> {
  const srv = net.createServer((s) => {
    inside.connections++;
    s.on("error", () => undefined);
    s.end("220 internal.svc ESMTP\r\n");
  });
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(p, host, () => resolve());
  });
  inside.servers.push(srv);
}

async function submit(to: string, tag: string): Promise<string> {
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO client.test");
  assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250/);
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250/);
  assert.match(await s.cmd("DATA"), /^354/);
  const reply = await s.data(`Subject: ${tag}\nX-Test-Id: ${tag}\n\nhello\n`);
  s.close();
  const id = /queued as ([0-9A-F]+)/.exec(reply)?.[1];
  assert.ok(id, reply);
  return id;
}

const deliveryOf = (id: string, pred: (l: Record<string, unknown>) => boolean) =>
  waitFor(`delivery line of ${id}`, () =>
    logs.lines.find((l) => l.event === "delivery" && l.queueId === id && pred(l)),
  );

before(async () => {
  f = await relayFixture("relay-ssrf");
  port = await freePort();
  const httpsPort = await freePort();
  sink = await startSink({ host: "127.0.0.1", port });
  trusted = await startSink({ host: "127.0.0.46", port });
  await insideServer("127.0.0.44", port); // an internal SMTP service
  await insideServer("127.0.0.45", httpsPort); // an internal HTTPS service
  dns = await startDnsServer({
    "good.test": { MX: [{ preference: 10, exchange: "mx.good.test" }] },
    "mx.good.test": { A: ["127.0.0.1"] },
    "inside.test": { MX: [{ preference: 10, exchange: "mx.inside.test" }] },
    "mx.inside.test": { A: ["127.0.0.44"] },
    "sts.test": { MX: [{ preference: 10, exchange: "mx.good.test" }] },
    "_mta-sts.sts.test": { TXT: ["v=STSv1; id=1;"] },
    "mta-sts.sts.test": { A: ["127.0.0.45"] },
  });
  await f.configure({
    dns: { servers: [dns.address] },
    delivery: { allowedInternalCidrs: ["127.0.0.1/32"] },
    mtaSts: { httpsPort },
    policies: [
      { name: "p/sts", domains: ["sts.test"], outbound: { tls: { mode: "mta-sts" } } },
      {
        name: "p/explicit",
        domains: ["explicit.test"],
        outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.46", port } },
      },
    ],
  });
  ({ logs } = await f.start({ mxPort: port }));
});

after(async () => {
  await f?.stop(() =>
    Promise.all([
      dns?.stop(),
      sink?.close(),
      trusted?.close(),
      ...inside.servers.map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]),
  );
});

describe("issue 22 finding 4: SSRF through DNS-chosen destinations", () => {
  it("an MX on an internal address is never connected to: deferred MX_ADDRESS_FORBIDDEN", async () => {
    const id = await submit("x@inside.test", "inside");
    const l = await deliveryOf(id, (x) => x.code === "MX_ADDRESS_FORBIDDEN");
    assert.equal(l.result, "deferred");
    assert.equal(inside.connections, 0);
  });

  it("an MX in the allow-list and an explicitly configured internal next hop are used", async () => {
    await submit("y@good.test", "good");
    await submit("z@explicit.test", "explicit");
    await waitFor("good", () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: good")));
    await waitFor("explicit", () =>
      trusted.messages.find((m) => m.data.toString().includes("X-Test-Id: explicit")),
    );
  });

  it("mta-sts.<domain> on an internal address is never fetched from", async () => {
    await submit("w@sts.test", "sts");
    await waitFor("mta-sts decision", () =>
      logs.lines.find((l) => l.event === "mta-sts" && l.domain === "sts.test"),
    );
    assert.equal(inside.connections, 0);
  });

  it("TLS-RPT: an MTA-STS fetch error is reported by its result type only", () => {
    const t = Date.parse("2026-01-01T12:00:00Z");
    const r = buildReport(
      "2026-01-01",
      "sts.test",
      [
        {
          t,
          domain: "sts.test",
          policy: { type: "sts", strings: [] },
          result: "sts-policy-fetch-error",
          reason: "mta-sts.sts.test: connect ECONNREFUSED 10.0.0.5:443",
        },
      ],
      { organizationName: "o", contactInfo: "c", submitter: "relay.test" },
    );
    assert.doesNotMatch(JSON.stringify(r), /ECONNREFUSED|10\.0\.0\.5/);
    assert.equal(r.policies[0]!["failure-details"]![0]!["result-type"], "sts-policy-fetch-error");
  });

  it("TLS-RPT: an https: rua on an internal address (literal or by name) is not POSTed to", async () => {
    let hits = 0;
    const srv = net.createServer((s) => {
      hits++;
      s.destroy();
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.47", r));
    const p = (srv.address() as AddressInfo).port;
    const filter = new DestinationFilter(["127.0.0.1/32"]);
    const resolver = { resolve4: () => Promise.resolve(["127.0.0.47"]), resolve6: () => Promise.resolve([]) };
    try {
      await assert.rejects(
        postReport(`https://127.0.0.47:${p}/r`, Buffer.from("x"), undefined, 1000, 1000, filter),
      );
      await assert.rejects(
        postReport(
          `https://rua.evil.test:${p}/r`,
          Buffer.from("x"),
          undefined,
          1000,
          1000,
          filter,
          resolver as unknown as Dns,
        ),
      );
      assert.equal(hits, 0);
    } finally {
      srv.close();
    }
  });

  it("address classes: loopback, private, link-local, CGNAT, ULA, mapped, NAT64 and SIIT forms are not public", () => {
    for (const [ip, cls] of [
      ["127.0.0.1", "loopback"],
      ["10.1.2.3", "private"],
      ["172.31.0.1", "private"],
      ["192.168.1.1", "private"],
      ["169.254.169.254", "link-local"],
      ["100.64.0.1", "shared"],
      ["0.0.0.0", "unspecified"],
      ["::1", "loopback"],
      ["fd00::1", "private"],
      ["fe80::1", "link-local"],
      ["::ffff:10.0.0.1", "private"],
      ["64:ff9b::a9fe:a9fe", "link-local"],
      // translation prefixes (attack review, session 6): local-use NAT64, SIIT IPv4-translated
      ["64:ff9b:1::a9fe:a9fe", "reserved"],
      ["::ffff:0:7f00:1", "reserved"],
      ["::ffff:0:a00:1", "reserved"],
      ["3fff::1", "documentation"],
      ["93.184.216.34", "public"],
      ["2606:4700::1111", "public"],
    ] as const)
      assert.equal(addressClass(ip), cls, ip);
    const own = new DestinationFilter([], ["203.0.114.9"]);
    assert.equal(own.allowed("203.0.114.9"), false, "the pod's own public address");
    assert.equal(own.allowed("203.0.114.10"), true);
  });
});
