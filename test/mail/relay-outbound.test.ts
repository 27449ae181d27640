// End to end through the relay against SMTP sinks on loopback: message in (SMTP client) -> fsync'd
// queue -> policy-routed delivery with the policy's TLS mode enforced. The Postfix-based tests
// (relay-postfix.test.ts) cover the same against a real MTA.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf, type Ca, type Leaf } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

let f: RelayFixture;
let work: string;
let ca: Ca;
let otherCa: Ca;
let mxCert: Leaf;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let tlsSink: Sink; // STARTTLS offered, cert for mx.partner.test
let clearSink: Sink; // no STARTTLS
let authSink: Sink; // STARTTLS + AUTH required
let localSink: Sink; // internal next hop (local.test: DSNs land here)
let clearAuthSink: Sink; // AUTH advertised in clear, no STARTTLS

async function writeConfig(
  policies: PolicyInput[],
  extra: Record<string, string | Buffer> = {},
): Promise<void> {
  await f.configure(
    {
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: localSink.port },
      },
      credentials: {
        "partner-login": {
          type: "password",
          usage: "outbound",
          username: "relay-edge",
          passwordFile: "secrets/partner-login/password",
        },
      },
      policies,
    },
    {
      files: {
        "secrets/partner-ca/ca.crt": await readFile(ca.certFile),
        "secrets/other-ca/ca.crt": await readFile(otherCa.certFile),
        "secrets/partner-login/password": "s3cret-pass\n",
        ...extra,
      },
    },
  );
}

function policy(
  name: string,
  domain: string,
  sink: Sink,
  tls: PolicyInput["outbound"]["tls"],
  extra: Partial<PolicyInput["outbound"]> = {},
): PolicyInput {
  return {
    name,
    domains: [domain],
    outbound: { tls, nextHop: { host: sink.host, port: sink.port }, ...extra },
  };
}

/** Sends one message into the relay (port 25, no TLS, from 127.0.0.1 = relayFrom). */
async function submit(from: string, to: string[], tag: string): Promise<string> {
  const conn = new SMTPConnection({
    host: "127.0.0.1",
    port: ports.smtp,
    ignoreTLS: true,
    name: "client.test",
  });
  await new Promise<void>((res, rej) => {
    conn.once("error", rej);
    conn.connect(() => res());
  });
  const body = `From: <${from}>\r\nTo: ${to.map((t) => `<${t}>`).join(", ")}\r\nSubject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nhello ${tag}\r\n`;
  const info = await new Promise<SMTPConnection.SentMessageInfo>((res, rej) =>
    conn.send({ from, to }, body, (e, i) => (e ? rej(e) : res(i))),
  );
  conn.quit();
  const m = /queued as ([0-9A-F]+)/.exec(info.response);
  assert.ok(m, info.response);
  assert.match(info.response, /^250 2\.0\.0 Ok: queued as /);
  return m[1]!;
}

function arrived(sink: Sink, tag: string) {
  return sink.messages.find((m) => m.data.toString().includes(`X-Test-Id: ${tag}`));
}

function deliveryLog(queueId: string, pred: (l: Record<string, unknown>) => boolean = () => true) {
  return logs.find((l) => l.event === "delivery" && l.queueId === queueId && pred(l));
}

before(async () => {
  f = await relayFixture("relay-out", { caName: "Partner CA" });
  ({ work, ca, ports } = f);
  otherCa = await makeCa(join(work, "other-ca"), "Other CA");
  mxCert = await makeLeaf(ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  const tls = { cert: await readFile(mxCert.certFile), key: await readFile(mxCert.keyFile) };
  tlsSink = await startSink({ tls });
  clearSink = await startSink();
  authSink = await startSink({ tls, auth: { user: "relay-edge", pass: "s3cret-pass" } });
  localSink = await startSink();
  clearAuthSink = await startSink({ auth: { user: "relay-edge", pass: "s3cret-pass" } });
  await writeConfig([]);
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(() =>
    Promise.all([tlsSink, clearSink, authSink, localSink, clearAuthSink].map((s) => s?.close())),
  );
});

describe("relay outbound (sinks)", () => {
  it("opportunistic: STARTTLS when offered, delivered encrypted", async () => {
    await writeConfig([policy("p/opp", "opp.test", tlsSink, { mode: "opportunistic" })]);
    await relay.checkConfig();
    const id = await submit("alice@local.test", ["bob@opp.test"], "opp-tls");
    const m = await waitFor("delivery", () => arrived(tlsSink, "opp-tls"), 15_000);
    assert.equal(m.secure, true);
    assert.match(m.tlsVersion ?? "", /^TLSv1\.[23]$/);
    assert.deepEqual(m.to, ["bob@opp.test"]);
    assert.match(m.data.toString(), /^Received: from client\.test \(\[127\.0\.0\.1\]\)/);
    const l = await waitFor("log", () => deliveryLog(id, (x) => x.result === "delivered"));
    assert.equal(l.policy, "p/opp");
    assert.equal((l.session as { tlsVersion?: string }).tlsVersion, m.tlsVersion);
  });

  it("opportunistic: clear only when STARTTLS is not offered", async () => {
    await writeConfig([policy("p/opp", "opp.test", clearSink, { mode: "opportunistic" })]);
    await relay.checkConfig();
    await submit("alice@local.test", ["bob@opp.test"], "opp-clear");
    const m = await waitFor("delivery", () => arrived(clearSink, "opp-clear"), 15_000);
    assert.equal(m.secure, false);
  });

  it("required: no STARTTLS offered -> deferred with TLS_NOT_OFFERED, nothing sent", async () => {
    await writeConfig([policy("p/req", "req.test", clearSink, { mode: "required" })]);
    await relay.checkConfig();
    const before = clearSink.messages.length;
    const id = await submit("alice@local.test", ["bob@req.test"], "req-clear");
    const l = await waitFor("deferral", () => deliveryLog(id, (x) => x.result === "deferred"));
    assert.equal(l.code, "TLS_NOT_OFFERED");
    await new Promise((r) => setTimeout(r, 1500)); // a few retries
    assert.equal(clearSink.messages.length, before);
    assert.ok(relay.status().queue.depth >= 1);
    const metrics = await relay.metrics.registry.metrics();
    assert.match(
      metrics,
      /sealpost_relay_deliveries_deferred_total\{policy="p\/req",reason="TLS_NOT_OFFERED"\} [1-9]/,
    );
  });

  it("required: STARTTLS without verification -> delivered encrypted", async () => {
    await writeConfig([policy("p/req", "req.test", tlsSink, { mode: "required" })]);
    await relay.checkConfig();
    const m = await waitFor(
      "queued message delivered after the policy change",
      () => arrived(tlsSink, "req-clear"),
      15_000,
    );
    assert.equal(m.secure, true);
  });

  it("reuses the connection to the same next hop under the same policy", async () => {
    await writeConfig([policy("p/pool", "pool.test", tlsSink, { mode: "required" })]);
    await relay.checkConfig();
    const first = await submit("alice@local.test", ["a@pool.test"], "pool-1");
    await waitFor("first delivered", () => deliveryLog(first, (x) => x.result === "delivered"));
    const second = await submit("alice@local.test", ["b@pool.test"], "pool-2");
    const l = await waitFor("second delivered", () => deliveryLog(second, (x) => x.result === "delivered"));
    assert.equal(l.reused, true);
    assert.equal(arrived(tlsSink, "pool-2")?.secure, true);
  });

  it("verify: chain to the CA file and a matchNames match -> delivered", async () => {
    await writeConfig([
      policy("p/ver", "ver.test", tlsSink, {
        mode: "verify",
        caFile: "secrets/partner-ca/ca.crt",
        matchNames: ["mx.partner.test"],
      }),
    ]);
    await relay.checkConfig();
    const id = await submit("alice@local.test", ["bob@ver.test"], "verify-ok");
    const m = await waitFor("delivery", () => arrived(tlsSink, "verify-ok"), 15_000);
    assert.equal(m.secure, true);
    const l = await waitFor("log", () => deliveryLog(id, (x) => x.result === "delivered"));
    assert.equal((l.session as { peerVerified?: boolean }).peerVerified, true);
    assert.match(String((l.session as { peerSubject?: string }).peerSubject), /CN=mx\.partner\.test/);
  });

  it("verify: wrong CA -> deferred TLS_VERIFY_FAILED", async () => {
    await writeConfig([
      policy("p/ver", "ver.test", tlsSink, {
        mode: "verify",
        caFile: "secrets/other-ca/ca.crt",
        matchNames: ["mx.partner.test"],
      }),
    ]);
    await relay.checkConfig();
    const id = await submit("alice@local.test", ["bob@ver.test"], "verify-badca");
    const l = await waitFor("deferral", () => deliveryLog(id, (x) => x.result === "deferred"));
    assert.equal(l.code, "TLS_VERIFY_FAILED");
    assert.equal(arrived(tlsSink, "verify-badca"), undefined);
  });

  it("verify: wrong name -> deferred TLS_VERIFY_FAILED", async () => {
    await writeConfig([
      policy("p/ver", "ver.test", tlsSink, {
        mode: "verify",
        caFile: "secrets/partner-ca/ca.crt",
        matchNames: ["mx.elsewhere.test"],
      }),
    ]);
    await relay.checkConfig();
    const id = await submit("alice@local.test", ["bob@ver.test"], "verify-badname");
    const l = await waitFor("deferral", () =>
      deliveryLog(id, (x) => x.result === "deferred" && x.code === "TLS_VERIFY_FAILED"),
    );
    assert.match(String(l.reason), /mx\.elsewhere\.test/);
    assert.equal(arrived(tlsSink, "verify-badname"), undefined);
  });

  // mta-sts is implemented now: test/mail/relay-mta-sts.test.ts
  // dane against real DNSSEC: test/mail/relay-dane.test.ts
  it("dane: a next hop without DNSSEC-validated addresses (an IP literal) is deferred, never downgraded", async () => {
    await writeConfig([policy("p/dane", "dane.test", tlsSink, { mode: "dane" })]);
    await relay.checkConfig();
    const id = await submit("alice@local.test", ["carol@dane.test"], "sts");
    await waitFor("deferral", () =>
      logs.lines.find((l) => l.event === "delivery" && l.queueId === id && l.code === "DANE_REQUIRED"),
    );
    assert.equal(arrived(tlsSink, "sts"), undefined);
    assert.match(String(deliveryLog(id)?.reason), /not DNSSEC-validated/);
  });

  it("finding 5: a fake partner with a self-signed certificate under required never receives the AUTH password", async () => {
    // the attacker's side: an MTA on the path (or a policy author's own nextHop) with a certificate
    // it made itself, STARTTLS and AUTH offered, recording every AUTH attempt
    const selfCa = await makeCa(join(work, "attacker-ca"), "Attacker");
    const fake = await makeLeaf(selfCa, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
    const attacker = await startSink({
      tls: { cert: await readFile(fake.certFile), key: await readFile(fake.keyFile) },
      auth: { user: "relay-edge", pass: "s3cret-pass" },
    });
    try {
      await writeConfig([
        policy("p/auth", "auth.test", attacker, { mode: "required" }, { authCredential: "partner-login" }),
      ]);
      await relay.checkConfig();
      const id = await submit("alice@local.test", ["bob@auth.test"], "auth-mitm");
      const l = await waitFor("deferral", () => deliveryLog(id, (x) => x.result === "deferred"));
      assert.equal(l.code, "AUTH_PEER_UNAUTHENTICATED");
      assert.match(String(l.reason), /allowUnauthenticatedPeer/);
      assert.deepEqual(attacker.authAttempts, [], "the password went to an unauthenticated peer");
      assert.equal(arrived(attacker, "auth-mitm"), undefined);
    } finally {
      await attacker.close();
    }
  });

  it("AUTH with the policy's credential, only inside TLS, to a verified peer", async () => {
    await writeConfig([
      policy(
        "p/auth",
        "auth.test",
        authSink,
        { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.partner.test"] },
        { authCredential: "partner-login" },
      ),
    ]);
    await relay.checkConfig();
    const id = await submit("alice@local.test", ["bob@auth.test"], "auth-ok");
    const m = await waitFor("delivery", () => arrived(authSink, "auth-ok"), 15_000);
    assert.equal(m.authUser, "relay-edge");
    assert.equal(m.secure, true);
    const l = await waitFor("log", () => deliveryLog(id, (x) => x.result === "delivered"));
    assert.deepEqual(
      [
        (l.session as { authOutcome?: string }).authOutcome,
        (l.session as { authMechanism?: string }).authMechanism,
      ],
      ["ok", "PLAIN"],
    );
    assert.doesNotMatch(JSON.stringify(logs.lines), /s3cret-pass/);
  });

  it("AUTH is never sent in clear: opportunistic without STARTTLS defers (even with the risk accepted)", async () => {
    await writeConfig([
      policy(
        "p/auth",
        "auth.test",
        clearAuthSink,
        { mode: "opportunistic" },
        { authCredential: "partner-login", authUnauthenticatedPeer: true },
      ),
    ]);
    await relay.checkConfig();
    const id = await submit("alice@local.test", ["bob@auth.test"], "auth-clear");
    const l = await waitFor("deferral", () => deliveryLog(id, (x) => x.result === "deferred"));
    assert.equal(l.code, "AUTH_REQUIRES_TLS");
    assert.equal(arrived(clearAuthSink, "auth-clear"), undefined);
    assert.deepEqual(clearAuthSink.authAttempts, [], "AUTH was offered in clear; the relay did not use it");
  });

  it("splits recipients by policy, bounces a 5xx recipient with a DSN, keeps the partial success", async () => {
    const rejecting = await startSink({
      rcptReply: (a) => (a.startsWith("nobody@") ? "550 5.1.1 no such user" : undefined),
    });
    try {
      await writeConfig([
        policy("p/a", "a.test", rejecting, { mode: "opportunistic" }),
        policy("p/b", "b.test", clearSink, { mode: "none" }),
      ]);
      await relay.checkConfig();
      const id = await submit("alice@local.test", ["x@a.test", "nobody@a.test", "y@b.test"], "split");
      const ma = await waitFor("a.test delivery", () => arrived(rejecting, "split"), 15_000);
      const mb = await waitFor("b.test delivery", () => arrived(clearSink, "split"), 15_000);
      assert.deepEqual(ma.to, ["x@a.test"]);
      assert.deepEqual(mb.to, ["y@b.test"]);
      const dsn = await waitFor(
        "DSN",
        () => localSink.messages.find((m) => m.data.toString().includes(`X-Queue-ID: ${id}`)),
        15_000,
      );
      assert.equal(dsn.from, "");
      assert.deepEqual(dsn.to, ["alice@local.test"]);
      const text = dsn.data.toString();
      assert.match(text, /Content-Type: multipart\/report; report-type=delivery-status/);
      assert.match(text, /Final-Recipient: rfc822; nobody@a\.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
      assert.match(text, /Diagnostic-Code: smtp; 550 5\.1\.1 no such user/);
      assert.doesNotMatch(text, /Final-Recipient: rfc822; x@a\.test/);
      await waitFor("queue empty", () => (relay.status().queue.depth <= 2 ? true : undefined)); // earlier tests leave deferred ones
      assert.equal(
        rejecting.messages.filter((m) => m.data.toString().includes("X-Test-Id: split")).length,
        1,
      );
    } finally {
      await rejecting.close();
    }
  });
});
