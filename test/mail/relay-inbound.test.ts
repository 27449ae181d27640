// Inbound rules against the real listeners, from different loopback source addresses acting as
// different hosts: TLS/AUTH requirements per host (strictest wins), AUTH only after TLS, no open
// relay, enhanced status codes; implicit TLS (465) and submission (587); certificate reload.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect as tlsConnect, type PeerCertificate } from "node:tls";
import { after, before, describe, it } from "node:test";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf, type Ca, type Leaf } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import {
  plainToken,
  rawSession,
  relayFixture,
  writeConfigDir,
  type LogCapture,
  type RelayFixture,
  type TestPorts,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let ca: Ca;
let cert1: Leaf;
let cert2: Leaf;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let sink: Sink;
let configDir: string;

const STRANGER = "127.0.0.2"; // default rule: none
const PARTNER = "127.0.0.3"; // partner rule: tls+auth
const TLS_HOST = "127.0.0.4"; // host rule: tls

async function writeConfig(cert: Leaf, generation = 1): Promise<void> {
  await f.configure(
    {
      generation,
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: sink.port },
      },
      credentials: {
        "partner-in": {
          type: "password",
          usage: "inbound",
          username: "partner",
          passwordFile: "secrets/partner-in/password",
        },
        "other-in": {
          type: "password",
          usage: "inbound",
          username: "other",
          passwordFile: "secrets/other-in/password",
        },
      },
      policies: [
        {
          name: "mail/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
          inbound: { hosts: ["127.0.0.3/32"], require: "tls+auth", credentials: ["partner-in"] },
        },
        {
          name: "mail/tls-host",
          domains: ["tlshost.test"],
          outbound: { tls: { mode: "none" } },
          inbound: { hosts: ["127.0.0.4"], require: "tls" },
        },
      ],
    },
    {
      cert,
      files: {
        "secrets/partner-in/password": "partner-pw\n",
        "secrets/other-in/password": "other-pw",
      },
    },
  );
}

before(async () => {
  f = await relayFixture("relay-in");
  ({ configDir, ca, ports } = f);
  cert1 = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"], name: "relay1" });
  cert2 = await makeLeaf(ca, {
    cn: "relay.test",
    dnsNames: ["relay.test", "renewed.relay.test"],
    name: "relay2",
  });
  sink = await startSink();
  await writeConfig(cert1);
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(() => sink?.close());
});

describe("relay inbound rules", () => {
  it("a host whose rule requires TLS gets 530 without STARTTLS; AUTH is not advertised in clear", async () => {
    const s = await rawSession(ports.smtp, { localAddress: TLS_HOST });
    const ehlo = await s.cmd("EHLO tls-host.test");
    assert.match(ehlo, /STARTTLS/);
    assert.doesNotMatch(ehlo, /AUTH/);
    assert.equal(await s.cmd("MAIL FROM:<a@tlshost.test>"), "530 5.7.0 Must issue a STARTTLS command first");
    assert.match(await s.starttls(), /^220 /);
    assert.match(await s.cmd("EHLO tls-host.test"), /AUTH PLAIN LOGIN/);
    assert.match(await s.cmd("MAIL FROM:<a@tlshost.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<bob@local.test>"), /^250 /);
    s.close();
  });

  it("AUTH over plaintext is refused", async () => {
    const s = await rawSession(ports.smtp, { localAddress: PARTNER });
    await s.cmd("EHLO partner.test");
    assert.equal(
      await s.cmd(`AUTH PLAIN ${plainToken("partner", "partner-pw")}`),
      "538 5.7.11 Encryption required for requested authentication mechanism",
    );
    assert.equal(await s.cmd("MAIL FROM:<a@partner.test>"), "530 5.7.0 Must issue a STARTTLS command first");
    s.close();
  });

  it("an unauthenticated stranger relaying to a foreign domain gets 550 5.7.1; local domains are fine", async () => {
    const s = await rawSession(ports.smtp, { localAddress: STRANGER });
    await s.cmd("EHLO stranger.test");
    assert.match(await s.cmd("MAIL FROM:<x@stranger.test>"), /^250 /);
    assert.equal(await s.cmd("RCPT TO:<victim@elsewhere.test>"), "550 5.7.1 Relaying denied");
    assert.match(await s.cmd("RCPT TO:<bob@local.test>"), /^250 /);
    assert.match(await s.cmd("DATA"), /^354 /);
    const reply = await s.data("Subject: hi\r\nX-Test-Id: stranger-local\r\n\r\nhello");
    assert.match(reply, /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/);
    s.close();
    await waitFor(
      "local delivery",
      () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: stranger-local")),
      15_000,
    );
  });

  it("the partner CIDR needs TLS+AUTH, with its own credential or a relay-wide account; then gets through", async () => {
    const s = await rawSession(ports.smtp, { localAddress: PARTNER });
    await s.cmd("EHLO partner.test");
    await s.starttls();
    await s.cmd("EHLO partner.test");
    assert.equal(await s.cmd("MAIL FROM:<a@partner.test>"), "530 5.7.0 Authentication required");
    assert.equal(
      await s.cmd(`AUTH PLAIN ${plainToken("partner", "wrong")}`),
      "535 5.7.8 Authentication credentials invalid",
    );
    assert.match(await s.cmd(`AUTH PLAIN ${plainToken("partner", "partner-pw")}`), /^235 /);
    assert.match(await s.cmd("MAIL FROM:<a@partner.test>"), /^250 /);
    // a partner's login sends to the local domains only (issue 15 finding 3), not through us elsewhere
    assert.equal(await s.cmd("RCPT TO:<someone@partner.test>"), "550 5.7.1 Relaying denied");
    assert.match(await s.cmd("RCPT TO:<bob@local.test>"), /^250 /);
    await s.cmd("DATA");
    assert.match(
      await s.data("Subject: p\r\nX-Test-Id: partner-auth\r\n\r\nhi"),
      /^250 2\.0\.0 Ok: queued as /,
    );
    await s.cmd("QUIT");
    s.close();
    await waitFor(
      "delivery",
      () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: partner-auth")),
      15_000,
    );
    const session = await waitFor("session log", () =>
      logs.find((l) => l.event === "session" && l.peer === PARTNER && (l.queued as string[]).length > 0),
    );
    assert.equal((session.auth as { mechanism: string; outcome: string }).outcome, "ok");
    assert.equal((session.tls as { version: string }).version.startsWith("TLSv1."), true);
    assert.equal(session.requirement, "tls+auth");
    // a relay-wide account logs in from the partner's hosts too: a policy's rule binds the partner's
    // login, never the administrator's accounts (attack review, session 10)
    const o = await rawSession(ports.smtp, { localAddress: PARTNER });
    await o.cmd("EHLO partner.test");
    await o.starttls();
    await o.cmd("EHLO partner.test");
    assert.match(await o.cmd(`AUTH PLAIN ${plainToken("other", "other-pw")}`), /^235 /);
    await o.cmd("QUIT");
    o.close();
    assert.doesNotMatch(JSON.stringify(logs.lines), /partner-pw|other-pw/);
    assert.doesNotMatch(JSON.stringify(logs.lines), new RegExp(plainToken("partner", "partner-pw")));
  });

  it("swaks: 530 without TLS for a TLS host; 550 relaying for a stranger; the partner with TLS+AUTH gets through", async () => {
    const base = { server: "127.0.0.1", port: ports.smtp, from: "x@client.test", timeoutSeconds: 10 };
    const noTls = await swaks({ ...base, to: "bob@local.test", extraArgs: ["--local-interface", TLS_HOST] });
    assert.equal(noTls.replyTo("MAIL")?.code, 530);
    assert.equal(noTls.replyTo("MAIL")?.enhanced, "5.7.0");
    const plainAuth = await swaks({
      ...base,
      to: "bob@local.test",
      auth: { username: "partner", password: "partner-pw" },
      extraArgs: ["--local-interface", PARTNER],
    });
    assert.notEqual(plainAuth.code, 0, "AUTH without TLS fails");
    assert.equal(plainAuth.queued, undefined);
    const stranger = await swaks({
      ...base,
      to: "victim@elsewhere.test",
      extraArgs: ["--local-interface", STRANGER],
    });
    assert.equal(stranger.replyTo("RCPT")?.code, 550);
    assert.equal(stranger.replyTo("RCPT")?.enhanced, "5.7.1");
    const partner = await swaks({
      ...base,
      from: "x@partner.test",
      to: "bob@local.test",
      tls: true,
      auth: { username: "partner", password: "partner-pw" },
      headers: { "X-Test-Id": "swaks-partner" },
      extraArgs: ["--local-interface", PARTNER],
    });
    assert.equal(partner.code, 0, partner.transcript);
    assert.equal(partner.replyTo("AUTH")?.tls, true);
    assert.equal(partner.queued?.enhanced, "2.0.0");
    await waitFor(
      "delivery",
      () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: swaks-partner")),
      15_000,
    );
  });

  it("AUTH LOGIN works too (after TLS)", async () => {
    const s = await rawSession(ports.smtp, { localAddress: STRANGER });
    await s.cmd("EHLO x.test");
    await s.starttls();
    await s.cmd("EHLO x.test");
    assert.match(await s.cmd("AUTH LOGIN"), /^334 /);
    assert.match(await s.cmd(Buffer.from("other").toString("base64")), /^334 /);
    assert.match(await s.cmd(Buffer.from("other-pw").toString("base64")), /^235 /);
    assert.match(await s.cmd("MAIL FROM:<a@local.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<b@local.test>"), /^250 /);
    s.close();
  });

  it("submission (587) requires AUTH; 465 is implicit TLS", async () => {
    const sub = await rawSession(ports.submission, { localAddress: "127.0.0.1" });
    await sub.cmd("EHLO x.test");
    assert.equal(await sub.cmd("MAIL FROM:<a@x.test>"), "530 5.7.0 Must issue a STARTTLS command first");
    await sub.starttls();
    await sub.cmd("EHLO x.test");
    assert.equal(await sub.cmd("MAIL FROM:<a@x.test>"), "530 5.7.0 Authentication required");
    sub.close();
    const smtps = await rawSession(ports.smtps, { implicitTls: true });
    assert.match(smtps.greeting, /^220 relay\.test ESMTP/);
    const ehlo = await smtps.cmd("EHLO x.test");
    assert.match(ehlo, /AUTH PLAIN LOGIN/);
    assert.doesNotMatch(ehlo, /STARTTLS/);
    smtps.close();
  });

  it("a renewed server certificate is used by new sessions; an open session keeps working", async () => {
    const serial = (): Promise<PeerCertificate> =>
      new Promise((resolve, reject) => {
        const s = tlsConnect({ host: "127.0.0.1", port: ports.smtps, rejectUnauthorized: false }, () => {
          resolve(s.getPeerCertificate());
          s.destroy();
        });
        s.on("error", reject);
      });
    const before = await serial();
    const open = await rawSession(ports.smtp, { localAddress: STRANGER });
    await open.cmd("EHLO x.test");
    await open.starttls();
    await writeConfig(cert2, 2);
    await relay.checkConfig();
    const afterCert = await waitFor("new certificate served", async () => {
      const c = await serial();
      return c.serialNumber !== before.serialNumber ? c : undefined;
    });
    assert.match(afterCert.subjectaltname ?? "", /renewed\.relay\.test/);
    assert.match(await open.cmd("EHLO x.test"), /^250/);
    assert.match(await open.cmd("MAIL FROM:<a@x.test>"), /^250 /);
    open.close();
    assert.equal(relay.status().generation, 2);
  });

  it("an invalid new config is rejected; the last good one stays (logged, counted)", async () => {
    const goodHash = relay.status().configHash;
    await writeConfigDir(configDir, {
      "config.json": JSON.stringify({ version: 1, relay: "broken" }),
      "tls/tls.crt": await readFile(cert2.certFile),
      "tls/tls.key": await readFile(cert2.keyFile),
    });
    await relay.checkConfig();
    assert.equal(relay.status().configHash, goodHash);
    assert.match(relay.status().lastReloadError ?? "", /CONFIG_INVALID/);
    assert.match(
      await relay.metrics.registry.metrics(),
      /sealpost_relay_config_reloads_total\{result="failed"\} [1-9]/,
    );
    const s = await rawSession(ports.smtp, { localAddress: STRANGER });
    assert.match(s.greeting, /^220 /);
    s.close();
    await writeConfig(cert2, 3);
    await relay.checkConfig();
    assert.equal(relay.status().generation, 3);
    assert.equal(relay.status().lastReloadError, undefined);
  });

  it("admin: /healthz, /readyz, /status (hash of config.json), /metrics", async () => {
    const base = `http://127.0.0.1:${ports.admin}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const status = (await (await fetch(`${base}/status`)).json()) as {
      configHash: string;
      relay: string;
      generation: number;
    };
    const { createHash } = await import("node:crypto");
    const bytes = await readFile(join(configDir, "config.json"));
    assert.equal(status.configHash, createHash("sha256").update(bytes).digest("hex"));
    assert.equal(status.relay, "test/edge");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      "messages_accepted_total",
      "recipients_delivered_total",
      "queue_depth",
      "queue_oldest_age_seconds",
      "config_reloads_total",
      "tls_sessions_total",
    ])
      assert.match(metrics, new RegExp(`sealpost_relay_${name}`));
    assert.match(
      metrics,
      /sealpost_relay_tls_sessions_total\{direction="inbound",version="TLSv1\.3"\} [1-9]/,
    );
  });
});
