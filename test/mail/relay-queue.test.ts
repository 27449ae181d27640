// Queue lifetime and bounces: a message whose next hop stays unreachable past queue.maxAge bounces
// with a DSN (Status 4.4.7) to its sender; a bounce itself (null sender) never gets a DSN. A UTF-8
// sender's DSN is RFC 6533's kind, and reaches it over SMTPUTF8.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { Relay } from "../../relay/relay.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import {
  rawSession,
  relayFixture,
  type LogCapture,
  type RelayFixture,
  type TestPorts,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let local: Sink;

before(async () => {
  f = await relayFixture("relay-queue");
  ports = f.ports;
  local = await startSink();
  const dead = await freePort(); // nothing listens there
  await f.configure({
    inbound: {
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: local.port },
    },
    queue: { dir: join(f.work, "queue"), maxAge: 2, retry: { initial: 0.3, max: 0.5 } },
    policies: [
      {
        name: "t/dead",
        domains: ["dead.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: dead } },
      },
    ],
  });
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(() => local?.close());
});

async function send(from: string, to: string, tag: string, subject = tag): Promise<string> {
  const s = await rawSession(ports.smtp);
  await s.cmd("EHLO client.test");
  const utf8 = /[\u0080-\uffff]/.test(from + to) ? " SMTPUTF8" : "";
  assert.match(await s.cmd(`MAIL FROM:<${from}>${utf8}`), /^250 /);
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250 /);
  await s.cmd("DATA");
  const r = await s.data(`Subject: ${subject}\r\nX-Test-Id: ${tag}\r\n\r\nbody`);
  s.close();
  return r.split(" ").pop()!;
}

it("expires after queue.maxAge with a 4.4.7 DSN; none for the null sender", async () => {
  const id = await send("alice@local.test", "bob@dead.test", "expire-me");
  const nullId = await send("", "carol@dead.test", "null-sender");
  const dsn = await waitFor(
    "DSN",
    () => local.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
    20_000,
  );
  const text = dsn.data.toString();
  assert.equal(dsn.from, "");
  assert.match(text, /Final-Recipient: rfc822; bob@dead\.test\r\nAction: failed\r\nStatus: 4\.4\.7\r\n/);
  assert.match(text, /delivery time expired; last error: .*/);
  await waitFor(
    "both done",
    () => (logs.find((l) => l.event === "queue-done" && l.queueId === nullId) ? true : undefined),
    20_000,
  );
  assert.equal(
    local.messages.some((m) => m.data.toString().includes(`X-Queue-ID: ${nullId}`)),
    false,
  );
  assert.ok(logs.find((l) => l.event === "delivery" && l.queueId === id && l.code === "CONNECT_FAILED"));
  assert.match(
    await relay.metrics.registry.metrics(),
    /sealpost_relay_recipients_bounced_total\{policy="n\/a",reason="EXPIRED"\} 2/,
  );
});

it("a UTF-8 sender's DSN: RFC 6533's global parts, delivered with SMTPUTF8", async () => {
  const id = await send("jürgen@local.test", "bob@dead.test", "expire-utf8", "Grüße");
  const dsn = await waitFor(
    "DSN to the UTF-8 sender",
    () => local.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
    20_000,
  );
  assert.deepEqual([dsn.from, dsn.to, dsn.smtpUtf8], ["", ["jürgen@local.test"], true]);
  const text = dsn.data.toString("utf8");
  assert.match(text, /^Content-Type: message\/global-delivery-status\r\n/m);
  assert.match(text, /Final-Recipient: rfc822; bob@dead\.test\r\nAction: failed\r\nStatus: 4\.4\.7\r\n/);
  assert.match(text, /^Content-Type: message\/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n/m);
  assert.match(text, /^Subject: Grüße\r\n/m);
});
