// REQUIRETLS (RFC 8689) end to end: advertised only inside TLS, MAIL FROM ... REQUIRETLS refused in
// clear; such a message goes out only over verified TLS to a next hop offering REQUIRETLS (with the
// option on MAIL FROM), else it bounces at once with a DSN (5.7.10, or 5.7.30 for a next hop
// without the extension), never deferred and never downgraded. The DSN itself is sent with
// REQUIRETLS (section 4.3): to a sender whose route cannot carry it, it is not sent at all.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import {
  rawSession,
  relayFixture,
  type LogCapture,
  type RelayFixture,
  type TestPorts,
} from "../support/relay.js";
import { submitRequireTls } from "../support/requiretls-client.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let ports: TestPorts;
let logs: LogCapture;
let secure: Sink; // STARTTLS + REQUIRETLS
let noExt: Sink; // STARTTLS, no REQUIRETLS
let local: Sink; // STARTTLS + REQUIRETLS: where DSNs to local senders go

before(async () => {
  f = await relayFixture("relay-requiretls");
  ports = f.ports;
  const mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  const tls = { cert: await readFile(mx.certFile), key: await readFile(mx.keyFile) };
  [secure, noExt, local] = await Promise.all([
    startSink({ tls, requireTls: true }),
    startSink({ tls }),
    startSink({ tls, requireTls: true }),
  ]);
  const verify = { mode: "verify" as const, caFile: "ca.crt", matchNames: ["mx.partner.test"] };
  await f.configure(
    {
      inbound: {
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: local.port },
      },
      policies: [
        {
          // the local domain's own policy: its senders' DSNs go over verified TLS (REQUIRETLS ones too)
          name: "p/local",
          domains: ["local.test"],
          outbound: { tls: verify, nextHop: { host: "127.0.0.1", port: local.port } },
        },
        {
          name: "p/verified",
          domains: ["verified.test"],
          outbound: { tls: verify, nextHop: { host: "127.0.0.1", port: secure.port } },
        },
        {
          name: "p/plain",
          domains: ["plain.test"],
          outbound: { tls: { mode: "required" }, nextHop: { host: "127.0.0.1", port: secure.port } },
        },
        {
          name: "p/noext",
          domains: ["noext.test"],
          outbound: { tls: verify, nextHop: { host: "127.0.0.1", port: noExt.port } },
        },
      ],
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ logs } = await f.start());
});

after(async () => {
  await f?.stop(() => Promise.all([secure?.close(), noExt?.close(), local?.close()]));
});

const tagged = (sink: Sink, tag: string) =>
  sink.messages.find((m) => m.data.toString().includes(`X-Test-Id: ${tag}`));

describe("REQUIRETLS", () => {
  it("is advertised only inside TLS; MAIL FROM ... REQUIRETLS in clear is refused", async () => {
    const s = await rawSession(ports.smtp);
    try {
      assert.doesNotMatch(await s.cmd("EHLO client.test"), /REQUIRETLS/);
      assert.match(await s.cmd("MAIL FROM:<alice@local.test> REQUIRETLS"), /^530 /);
    } finally {
      s.close();
    }
  });

  it("verified TLS to a next hop with REQUIRETLS: delivered with the option on MAIL FROM", async () => {
    const id = await submitRequireTls(ports.smtp, "bob@verified.test", "rt-ok");
    const m = await waitFor("delivered", () => tagged(secure, "rt-ok"), 20_000);
    assert.equal(m.requireTls, true);
    assert.equal(m.secure, true);
    const session = await waitFor("session log", () =>
      logs.find((l) => l.event === "session" && (l.queued as string[]).includes(id)),
    );
    assert.equal(session.requireTls, true);
  });

  it("unverified TLS (mode required): bounced at once with a 5.7.10 DSN, never sent", async () => {
    const id = await submitRequireTls(ports.smtp, "carol@plain.test", "rt-unverified");
    const l = await waitFor("failed attempt", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "failed"),
    );
    assert.equal(l.code, "REQUIRETLS_UNMET");
    const dsn = await waitFor(
      "DSN",
      () => local.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
      20_000,
    );
    assert.equal(dsn.from, "");
    assert.equal(dsn.requireTls, true, "the DSN of a REQUIRETLS message is sent with REQUIRETLS");
    assert.match(dsn.data.toString(), /Status: 5\.7\.10/);
    assert.doesNotMatch(dsn.data.toString(), /confidential/);
    assert.equal(tagged(secure, "rt-unverified"), undefined);
  });

  it("attack: the DSN of a REQUIRETLS message carries none of its headers", async () => {
    // the DSN goes to the sender's domain with REQUIRETLS; the message's Subject, To and other
    // headers stay out all the same
    const id = await submitRequireTls(ports.smtp, "erin@plain.test", "rt-hdrs");
    const dsn = await waitFor(
      "DSN",
      () => local.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
      20_000,
    );
    const text = dsn.data.toString();
    assert.match(text, /Status: 5\.7\.10/);
    assert.doesNotMatch(text, /Subject: rt-hdrs/);
    assert.doesNotMatch(text, /X-Test-Id: rt-hdrs/);
    assert.doesNotMatch(text, /confidential/);
  });

  it("RFC 8689 4.3: a DSN to a sender whose route cannot carry REQUIRETLS is not sent (never in clear)", async () => {
    // ops@plain.test: its route (mode required) never authenticates the peer, so the DSN of its
    // REQUIRETLS message fails itself (REQUIRETLS_UNMET) and, a DSN's failure being never reported,
    // is dropped: the partner that would have read the bounce unverified gets nothing
    const id = await submitRequireTls(ports.smtp, "dan@plain.test", "rt-dsn-unmet", "ops@plain.test");
    const queued = await waitFor("DSN queued", () => logs.find((x) => x.event === "dsn" && x.queueId === id));
    const dsnId = String(queued.dsnId);
    const l = await waitFor("the DSN's attempt", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === dsnId && x.result === "failed"),
    );
    assert.equal(l.code, "REQUIRETLS_UNMET");
    await waitFor("the DSN done", () => logs.find((x) => x.event === "queue-done" && x.queueId === dsnId));
    assert.equal(
      secure.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
      undefined,
    );
  });

  it("next hop without REQUIRETLS: bounced with 5.7.30", async () => {
    const id = await submitRequireTls(ports.smtp, "dan@noext.test", "rt-noext");
    const l = await waitFor("failed attempt", () =>
      logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "failed"),
    );
    assert.equal(l.code, "REQUIRETLS_NOT_SUPPORTED");
    const dsn = await waitFor(
      "DSN",
      () => local.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
      20_000,
    );
    assert.match(dsn.data.toString(), /Status: 5\.7\.30/);
    assert.equal(tagged(noExt, "rt-noext"), undefined);
  });
});
