// The relay against a real Postfix as the partner MTA, and swaks as the client: TLS required and
// verified (Postfix's log shows the TLS session), wrong CA / wrong name deferred and not delivered,
// SMTP AUTH (Cyrus SASL) with the credential from the config dir, never before TLS.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf, type Ca, type Leaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];
type Tls = PolicyInput["outbound"]["tls"];

let f: RelayFixture;
let work: string;
let ca: Ca;
let otherCa: Ca;
let mxCert: Leaf;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let tlsPeer: PostfixPeer; // STARTTLS required
let authPeer: PostfixPeer; // STARTTLS required + AUTH required
let oldTlsPeer: PostfixPeer; // STARTTLS offered, TLS 1.2 at most
let ccertPeer: PostfixPeer; // STARTTLS required + a client certificate from our CA required
let clientCert: Leaf;

async function configure(
  policies: PolicyInput[],
  extra: { credentials?: RelayConfigInput["credentials"]; files?: Record<string, string | Buffer> } = {},
): Promise<void> {
  await f.configure(
    {
      credentials: {
        ...extra.credentials,
        "edge-client": {
          type: "clientCertificate",
          usage: "outbound",
          certFile: "secrets/edge-client/tls.crt",
          keyFile: "secrets/edge-client/tls.key",
        },
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
        "secrets/partner-login/password": "relay-secret-pw\n",
        "secrets/edge-client/tls.crt": await readFile(clientCert.certFile),
        "secrets/edge-client/tls.key": await readFile(clientCert.keyFile),
        ...extra.files,
      },
    },
  );
  await relay?.checkConfig();
}

function to(
  peer: PostfixPeer,
  domain: string,
  tls: Tls,
  extra: Partial<PolicyInput["outbound"]> = {},
): PolicyInput {
  return {
    name: `partner/${domain}`,
    domains: [domain],
    outbound: { tls, nextHop: { host: peer.host, port: peer.port }, ...extra },
  };
}

/** swaks -> relay (port 25, from 127.0.0.1 = relayFrom); returns the relay's queue id. */
async function submit(rcpt: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag },
    subject: tag,
  });
  assert.equal(r.code, 0, r.transcript);
  assert.equal(r.queued?.enhanced, "2.0.0");
  return r.queueId!;
}

async function deliveredTo(peer: PostfixPeer, tag: string) {
  return (await peer.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag);
}

function attempt(queueId: string, pred: (l: Record<string, unknown>) => boolean) {
  return () => logs.find((l) => l.event === "delivery" && l.queueId === queueId && pred(l));
}

before(async () => {
  f = await relayFixture("relay-postfix", { caName: "Partner CA" });
  ({ work, ca, ports } = f);
  otherCa = await makeCa(join(work, "other-ca"), "Other CA");
  mxCert = await makeLeaf(ca, {
    cn: "mx.partner.test",
    dnsNames: ["mx.partner.test", "mx.secure.test", "mx.auth.test"],
  });
  clientCert = await makeLeaf(ca, { cn: "relay-client.test", client: true, name: "relay-client" });
  [tlsPeer, authPeer, oldTlsPeer, ccertPeer] = await Promise.all([
    startPostfix({
      domains: ["partner.test", "secure.test"],
      tls: "require",
      cert: mxCert,
      hostname: "mx.partner.test",
    }),
    startPostfix({
      domains: ["auth.test"],
      tls: "require",
      cert: mxCert,
      auth: { username: "relay-edge", password: "relay-secret-pw" },
      hostname: "mx.auth.test",
    }),
    startPostfix({
      domains: ["old.test"],
      tls: "offer",
      cert: mxCert,
      tlsProtocols: "<=TLSv1.2",
      hostname: "mx.old.test",
    }),
    startPostfix({
      domains: ["ccert.test"],
      tls: "require",
      cert: mxCert,
      clientCerts: { caFile: ca.certFile, require: true },
      hostname: "mx.ccert.test",
    }),
  ]);
  await configure([]);
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(() =>
    Promise.all([tlsPeer?.stop(), authPeer?.stop(), oldTlsPeer?.stop(), ccertPeer?.stop()]),
  );
});

describe("relay -> Postfix", () => {
  it("required: delivered over STARTTLS (Postfix logs the TLS session)", async () => {
    await configure([to(tlsPeer, "partner.test", { mode: "required" })]);
    const id = await submit("bob@partner.test", "pf-required");
    const m = await waitFor("delivered", () => deliveredTo(tlsPeer, "pf-required"), 20_000);
    assert.equal(m.recipient, "bob@partner.test");
    assert.match(m.headers.received?.[0] ?? "", /with ESMTPS/);
    await tlsPeer.waitForLog(/TLS connection established from .*127\.0\.0\.1.*TLSv1\.[23]/);
    const l = await waitFor(
      "log",
      attempt(id, (x) => x.result === "delivered"),
    );
    assert.equal(l.mode, "required");
  });

  it("verify: CA file + name match -> delivered encrypted", async () => {
    await configure([
      to(tlsPeer, "secure.test", {
        mode: "verify",
        caFile: "secrets/partner-ca/ca.crt",
        matchNames: ["mx.partner.test"],
      }),
    ]);
    const id = await submit("carol@secure.test", "pf-verify");
    const m = await waitFor("delivered", () => deliveredTo(tlsPeer, "pf-verify"), 20_000);
    assert.match(m.headers.received?.[0] ?? "", /with ESMTPS/);
    const l = await waitFor(
      "log",
      attempt(id, (x) => x.result === "delivered"),
    );
    assert.equal((l.session as { peerVerified: boolean }).peerVerified, true);
  });

  it("verify: wrong CA or wrong name -> deferred, not delivered", async () => {
    await configure([
      to(tlsPeer, "secure.test", {
        mode: "verify",
        caFile: "secrets/other-ca/ca.crt",
        matchNames: ["mx.partner.test"],
      }),
    ]);
    const badCa = await submit("dave@secure.test", "pf-badca");
    const l1 = await waitFor(
      "deferral",
      attempt(badCa, (x) => x.result === "deferred"),
    );
    assert.equal(l1.code, "TLS_VERIFY_FAILED");

    await configure([
      to(tlsPeer, "secure.test", {
        mode: "verify",
        caFile: "secrets/partner-ca/ca.crt",
        matchNames: ["mx.wrong.test"],
      }),
    ]);
    const badName = await submit("erin@secure.test", "pf-badname");
    const l2 = await waitFor(
      "deferral",
      attempt(badName, (x) => x.result === "deferred" && x.code === "TLS_VERIFY_FAILED"),
    );
    assert.match(String(l2.reason), /mx\.wrong\.test/);

    await new Promise((r) => setTimeout(r, 1500)); // several retries under the bad policies
    assert.equal(await deliveredTo(tlsPeer, "pf-badca"), undefined);
    assert.equal(await deliveredTo(tlsPeer, "pf-badname"), undefined);
    assert.ok(relay.status().queue.depth >= 2, "both stay queued");
  });

  it("minimum TLS version: a failed handshake defers even under opportunistic (no fallback to clear)", async () => {
    await configure([to(oldTlsPeer, "old.test", { mode: "opportunistic", minVersion: "TLSv1.3" })]);
    const id = await submit("heidi@old.test", "pf-min13");
    const l = await waitFor(
      "deferral",
      attempt(id, (x) => x.result === "deferred"),
    );
    assert.equal(l.code, "TLS_HANDSHAKE_FAILED");
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await deliveredTo(oldTlsPeer, "pf-min13"), undefined);

    await configure([to(oldTlsPeer, "old.test", { mode: "required", minVersion: "TLSv1.2" })]);
    const m = await waitFor("delivered under TLS 1.2", () => deliveredTo(oldTlsPeer, "pf-min13"), 20_000);
    assert.match(m.headers.received?.[0] ?? "", /TLSv1\.2/);
    const ok = await waitFor(
      "log",
      attempt(id, (x) => x.result === "delivered"),
    );
    assert.equal((ok.session as { tlsVersion: string }).tlsVersion, "TLSv1.2");
  });

  it("client certificate: presented from the config dir; without it the partner refuses", async () => {
    await configure([to(ccertPeer, "ccert.test", { mode: "required" })]);
    const id = await submit("ivan@ccert.test", "pf-ccert");
    await waitFor(
      "deferral without a client certificate",
      attempt(id, (x) => x.result === "deferred"),
    );
    assert.equal(await deliveredTo(ccertPeer, "pf-ccert"), undefined);
    await configure([to(ccertPeer, "ccert.test", { mode: "required", clientCredential: "edge-client" })]);
    await waitFor("delivered with the client certificate", () => deliveredTo(ccertPeer, "pf-ccert"), 20_000);
    await ccertPeer.waitForLog(/Trusted TLS connection established from/);
  });

  it("attack: a client certificate Secret that is not PEM defers only its policy's mail; the rest of the config is enforced", async () => {
    // a namespace user's RelayCredential may name any kubernetes.io/tls Secret, whose content the
    // apiserver does not check: it used to make the relay refuse every new config (CONFIG_INVALID),
    // so that no later change (a revocation, a stricter policy) ever took effect
    const broken = {
      "broken-client": {
        type: "clientCertificate" as const,
        usage: "outbound" as const,
        certFile: "secrets/broken-client/tls.crt",
        keyFile: "secrets/broken-client/tls.key",
      },
    };
    const brokenFiles = {
      "secrets/broken-client/tls.crt": "not a certificate\n",
      "secrets/broken-client/tls.key": await readFile(clientCert.keyFile), // a key, but not the certificate's
    };
    await configure(
      [
        to(ccertPeer, "ccert.test", { mode: "required", clientCredential: "broken-client" }),
        to(tlsPeer, "partner.test", { mode: "required" }),
      ],
      { credentials: broken, files: brokenFiles },
    );
    const st = relay.status();
    assert.equal(st.lastReloadError, undefined, "the config loaded");
    assert.ok(
      logs.find((l) => l.event === "credential-unusable" && l.credential === "broken-client"),
      "the unusable credential is logged",
    );
    const held = await submit("judy@ccert.test", "pf-ccert-broken");
    await waitFor(
      "deferral: the credential does not load",
      attempt(held, (x) => x.result === "deferred" && x.code === "CREDENTIAL_INVALID"),
    );
    assert.equal(
      await deliveredTo(ccertPeer, "pf-ccert-broken"),
      undefined,
      "never sent without its certificate",
    );
    // the rest of the config is enforced: the other policy delivers
    await submit("kim@partner.test", "pf-beside-broken");
    await waitFor("the other policy delivers", () => deliveredTo(tlsPeer, "pf-beside-broken"), 20_000);
    // a certificate and key that do not match are refused the same way (the reload retries at once)
    const refusals = () =>
      logs.lines.filter(
        (l) => l.event === "delivery" && l.queueId === held && l.code === "CREDENTIAL_INVALID",
      ).length;
    const before = refusals();
    await configure([to(ccertPeer, "ccert.test", { mode: "required", clientCredential: "broken-client" })], {
      credentials: broken,
      files: {
        "secrets/broken-client/tls.crt": await readFile(mxCert.certFile),
        "secrets/broken-client/tls.key": await readFile(clientCert.keyFile),
      },
    });
    assert.equal(relay.status().lastReloadError, undefined);
    await waitFor("deferral: the key is not the certificate's", () => refusals() > before || undefined);
    assert.equal(await deliveredTo(ccertPeer, "pf-ccert-broken"), undefined);
    // fixed: the held message goes, with the certificate
    await configure([to(ccertPeer, "ccert.test", { mode: "required", clientCredential: "broken-client" })], {
      credentials: broken,
      files: {
        "secrets/broken-client/tls.crt": await readFile(clientCert.certFile),
        "secrets/broken-client/tls.key": await readFile(clientCert.keyFile),
      },
    });
    await waitFor(
      "delivered once the Secret is fixed",
      () => deliveredTo(ccertPeer, "pf-ccert-broken"),
      20_000,
    );
  });

  it("AUTH with the config dir's credential, inside TLS (Cyrus SASL)", async () => {
    // mode required does not authenticate the peer: the policy accepts that risk explicitly (finding 5)
    await configure([
      to(
        authPeer,
        "auth.test",
        { mode: "required" },
        { authCredential: "partner-login", authUnauthenticatedPeer: true },
      ),
    ]);
    const id = await submit("frank@auth.test", "pf-auth");
    const m = await waitFor("delivered", () => deliveredTo(authPeer, "pf-auth"), 20_000);
    assert.match(m.headers.received?.[0] ?? "", /with ESMTPSA/);
    await authPeer.waitForLog(/sasl_method=PLAIN, sasl_username=relay-edge/);
    const l = await waitFor(
      "log",
      attempt(id, (x) => x.result === "delivered"),
    );
    assert.equal((l.session as { authOutcome: string }).authOutcome, "ok");
    assert.doesNotMatch(JSON.stringify(logs.lines), /relay-secret-pw/);
  });

  it("AUTH is never sent before TLS: under mode none the relay defers without connecting", async () => {
    await configure([to(authPeer, "auth.test", { mode: "none" }, { authCredential: "partner-login" })]);
    // \b: the previous test's pooled session may log its "disconnect from" line only now
    const before = authPeer
      .log()
      .split("\n")
      .filter((x) => /\bconnect from/.test(x)).length;
    const id = await submit("grace@auth.test", "pf-auth-none");
    const l = await waitFor(
      "deferral",
      attempt(id, (x) => x.result === "deferred"),
    );
    assert.equal(l.code, "AUTH_REQUIRES_TLS");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(
      authPeer
        .log()
        .split("\n")
        .filter((x) => /\bconnect from/.test(x)).length,
      before,
    );
    assert.equal(await deliveredTo(authPeer, "pf-auth-none"), undefined);
  });
});
