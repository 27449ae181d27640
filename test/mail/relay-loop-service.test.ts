// Issue 15.4, loops through the relay's own Service address: an MX that resolves to the relay's
// ClusterIP or load-balancer address reaches the relay through kube-proxy, not at one of the pod's own
// listener addresses. Here a TCP forwarder on 127.0.0.3 stands for the Service (kube-proxy; the same
// port number as the relay's smtp listener, as the Service's), the relay listens on 127.0.0.1 only,
// and the operator's selfAddresses lists 127.0.0.3: the mail bounces at once, "mail for X loops back
// to myself" (5.4.6), instead of going round until the hop limit.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startForwarder, type Forwarder } from "../support/forwarder.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

const SERVICE_IP = "127.0.0.3";

let f: RelayFixture;
let logs: LogCapture;
let dns: DnsServer;
let home: Sink;
let service: Forwarder; // kube-proxy in miniature: SERVICE_IP:<port> to the relay's smtp listener

before(async () => {
  f = await relayFixture("relay-loop-service");
  home = await startSink();
  service = await startForwarder(f.ports.smtp, SERVICE_IP, f.ports.smtp);
  dns = await startDnsServer({
    "lb.test": { MX: [{ preference: 10, exchange: "mx.lb.test" }] },
    "mx.lb.test": { A: [SERVICE_IP] },
  });
  await f.configure({
    selfAddresses: [SERVICE_IP],
    inbound: { relayFrom: ["127.0.0.1"], hopLimit: 8 },
    dns: { servers: [dns.address] },
    policies: [
      {
        name: "t/home",
        domains: ["home.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: home.port } },
      },
    ],
    defaultOutbound: { tls: { mode: "none" } },
  });
  // MX next hops go to the Service's port, which is the smtp listener's
  ({ logs } = await f.start({ mxPort: service.port }));
});

after(async () => {
  await f?.stop(async () => {
    await service?.close();
    await dns?.stop();
    await home?.close();
  });
});

describe("mail loops through the relay's Service address (issue 15.4)", () => {
  it("an MX on the Service address bounces with 5.4.6 'loops back to myself', never handed to the relay again", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "sender@home.test",
      to: "someone@lb.test",
      headers: { "X-Test-Id": "mx-service" },
      timeoutSeconds: 10,
    });
    assert.equal(r.queued?.enhanced, "2.0.0", r.transcript);
    const dsn = await waitFor(
      "bounce to the sender",
      () => home.messages.find((m) => m.from === "" && m.data.toString().includes("X-Test-Id: mx-service")),
      30_000,
    );
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.4\.6/);
    assert.match(text, /mail for lb\.test loops back to myself/);
    // swaks's session queued it; no session through the Service address ever did
    const queued = logs.lines.filter(
      (l) => l.event === "session" && Array.isArray(l.queued) && (l.queued as string[]).length > 0,
    );
    assert.equal(queued.length, 1, JSON.stringify(queued));
  });
});
