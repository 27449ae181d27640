// The secure fallback route (issue 20 item 2) against a partner whose STARTTLS is stripped by a man in
// the middle in front of a real Postfix, each policy (mode verify) on a domain of its own so that one
// scenario's queued mail never meets another's policy:
// - smime (session opportunistic, explicitly allowed): the message goes out S/MIME-encrypted over the
//   clear session and `openssl cms -decrypt` opens it with the recipient's key; the delivery line, the
//   metric and the encryption receipt say fallback=smime and what failed;
// - smime with its default session (required): a partner whose certificate fails verification gets
//   the message encrypted over TLS; the stripped partner gets nothing, in clear or not;
// - smime without a certificate for the recipient: deferred, never clear;
// - no fallback (defer): nothing leaves, the queue holds it;
// - route: the message arrives at the alternate Postfix over verified TLS, not at the partner;
// - route whose alternate hop is stripped too: deferred, never clear.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Receipt } from "../../relay/contract/receipt.js";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf, type Leaf } from "../support/certs.js";
import type { Message } from "../support/mailbox.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { readReceipts } from "../support/receipts.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { startStripProxy, type StripProxy } from "../support/strip-proxy.js";
import { swaks } from "../support/swaks.js";

const run = promisify(execFile);
type Policy = NonNullable<RelayConfigInput["policies"]>[number];
type Fallback = NonNullable<Policy["outbound"]["tlsFallback"]>;

let f: RelayFixture;
let relay: Relay;
let logs: LogCapture;
let partner: PostfixPeer;
let portal: PostfixPeer;
let proxy: StripProxy; // strips the partner's STARTTLS
let portalProxy: StripProxy; // strips the portal's too
let bobClear: Leaf;
let bobTls: Leaf;
let bobVerify: Leaf;

const DOMAINS = [
  "smime-clear.test",
  "smime-tls.test",
  "smime-nocert.test",
  "defer.test",
  "smime-verify.test",
];
const ROUTED = ["route.test", "route-strip.test"];
const CERTS = "secrets/partner-smime/certs.pem";

function policy(domain: string, tlsFallback?: Fallback): Policy {
  return {
    name: `partner/${domain.split(".")[0]}`,
    domains: [domain],
    outbound: {
      tls: { mode: "verify", caFile: "secrets/ca/ca.crt", matchNames: ["mx.partner.test"] },
      nextHop: { host: proxy.host, port: proxy.port },
      ...(tlsFallback ? { tlsFallback } : {}),
    },
  };
}

const smime = { certificateFiles: [CERTS] };
const routeTls: { mode: "verify"; caFile: string; matchNames: string[] } = {
  mode: "verify",
  caFile: "secrets/ca/ca.crt",
  matchNames: ["portal.test"],
};

async function submit(to: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to,
    headers: { "X-Test-Id": tag, "Message-Id": `<${tag}@local.test>` },
    body: `the secret number of ${tag} is 4711`,
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const line = (id: string, to: string, status: string) => () =>
  logs.find((l) => l.event === "recipient" && l.queueId === id && l.to === to && l.status === status);

/** Whether the stripping proxy saw a command in clear naming the domain (RCPT TO, MAIL...). */
const clearFor = (p: StripProxy, domain: string): boolean =>
  p.transcript.some((l) => l.from === "client" && l.line.includes(`@${domain}>`));

async function arrived(peer: PostfixPeer, tag: string): Promise<Message> {
  return waitFor(
    `${tag} at ${peer.hostname}`,
    async () => (await peer.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag),
    20_000,
  );
}

const receipts = (): Promise<Receipt[]> => readReceipts(join(f.work, "queue"));

/** Two more attempts for the message than when called (retry 0.2 s .. 1 s in tests). */
async function retried(id: string): Promise<void> {
  const attempts = () =>
    logs.lines.filter((l) => l.event === "recipient" && l.queueId === id && l.status === "deferred").length;
  await waitFor("two deferrals", () => (attempts() >= 2 ? true : undefined), 20_000);
}

before(async () => {
  f = await relayFixture("relay-tls-fallback");
  const mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  const portalCert = await makeLeaf(f.ca, { cn: "portal.test", dnsNames: ["portal.test"] });
  bobClear = await makeLeaf(f.ca, { cn: "Bob", emails: ["bob@smime-clear.test"], rsa: true });
  bobTls = await makeLeaf(f.ca, { cn: "Bob TLS", emails: ["bob@smime-tls.test"], rsa: true });
  bobVerify = await makeLeaf(f.ca, { cn: "Bob Verify", emails: ["bob@smime-verify.test"], rsa: true });
  partner = await startPostfix({
    domains: [...DOMAINS, ...ROUTED],
    tls: "offer",
    cert: mx,
    hostname: "mx.partner.test",
  });
  portal = await startPostfix({ domains: ROUTED, tls: "offer", cert: portalCert, hostname: "portal.test" });
  proxy = await startStripProxy({ upstream: { host: partner.host, port: partner.port }, mode: "strip" });
  portalProxy = await startStripProxy({ upstream: { host: portal.host, port: portal.port }, mode: "strip" });
  await f.configure(
    {
      policies: [
        policy("smime-clear.test", { action: "smime", session: "opportunistic", smime }),
        policy("smime-tls.test", { action: "smime", smime }),
        policy("smime-nocert.test", { action: "smime", session: "opportunistic", smime }),
        policy("defer.test"),
        // no man in the middle: the partner's certificate does not carry the name the policy expects
        {
          name: "partner/smime-verify",
          domains: ["smime-verify.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/ca/ca.crt", matchNames: ["other.partner.test"] },
            nextHop: { host: partner.host, port: partner.port },
            tlsFallback: { action: "smime", smime },
          },
        },
        policy("route.test", {
          action: "route",
          nextHop: { host: portal.host, port: portal.port },
          tls: routeTls,
        }),
        policy("route-strip.test", {
          action: "route",
          nextHop: { host: portalProxy.host, port: portalProxy.port },
          tls: routeTls,
        }),
      ],
    },
    {
      files: {
        "secrets/ca/ca.crt": await readFile(f.ca.certFile),
        [CERTS]: Buffer.concat(
          await Promise.all([bobClear, bobTls, bobVerify].map((l) => readFile(l.certFile))),
        ),
      },
    },
  );
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(async () => {
    await proxy?.stop();
    await portalProxy?.stop();
    await partner?.stop();
    await portal?.stop();
  });
});

describe("a policy's TLS fallback behind a STARTTLS-stripping partner", () => {
  it("smime (session opportunistic): S/MIME-encrypted over the clear session, openssl decrypts it; log, metric and receipt say fallback=smime", async () => {
    const id = await submit("bob@smime-clear.test", "fb-smime");
    const m = await arrived(partner, "fb-smime");
    // the session was clear (stripped), the message is not: only the recipient's key opens it
    assert.equal(proxy.tlsStarted, false);
    assert.match(m.headers["content-type"]?.[0] ?? "", /^application\/pkcs7-mime; smime-type=enveloped-data/);
    assert.doesNotMatch(m.raw, /secret number/);
    const inFile = join(f.work, "fb-smime.eml");
    await writeFile(inFile, m.raw);
    const out = await run("openssl", [
      "cms", "-decrypt", "-in", inFile, "-recip", bobClear.certFile, "-inkey", bobClear.keyFile,
    ]); // prettier-ignore
    assert.match(out.stdout, /the secret number of fb-smime is 4711/);

    const sent = await waitFor("delivery line", line(id, "bob@smime-clear.test", "sent"));
    assert.deepEqual(sent.fallback, { action: "smime", trigger: "TLS_NOT_OFFERED" });
    const ev = logs.find((l) => l.event === "tls-fallback" && l.queueId === id && l.result === "delivered");
    assert.ok(ev, "a tls-fallback log line");
    const metrics = await relay.metrics.registry.metrics();
    assert.match(
      metrics,
      /sealpost_relay_tls_fallback_recipients_total\{policy="partner\/smime-clear",action="smime",trigger="TLS_NOT_OFFERED",result="delivered"\} 1/,
    );

    const r = await waitFor("receipt", async () =>
      (await receipts()).find((x) => x.queueId === id && x.to === "bob@smime-clear.test"),
    );
    assert.equal(r.fallback?.action, "smime");
    assert.equal(r.fallback?.failed, "TLS_NOT_OFFERED");
    assert.match(r.fallback?.reason ?? "", /STARTTLS not offered/);
    assert.equal(r.smime?.algorithm, "aes-256-cbc");
    const fp = await run("openssl", ["x509", "-in", bobClear.certFile, "-noout", "-fingerprint", "-sha256"]);
    assert.equal(r.smime?.recipientCertificateSha256, fp.stdout.trim().split("=")[1]);
    assert.equal(r.tls.protocol, undefined); // the session, as it was: clear
    assert.equal(r.tls.authenticated, "none");
  });

  it("smime (default session required): a certificate that fails verification -> encrypted over TLS", async () => {
    const id = await submit("bob@smime-verify.test", "fb-smime-verify");
    const m = await arrived(partner, "fb-smime-verify");
    assert.match(m.headers.received?.[0] ?? "", /ESMTPS/);
    assert.match(m.headers["content-type"]?.[0] ?? "", /^application\/pkcs7-mime; smime-type=enveloped-data/);
    assert.doesNotMatch(m.raw, /secret number/);
    const inFile = join(f.work, "fb-smime-verify.eml");
    await writeFile(inFile, m.raw);
    const out = await run("openssl", [
      "cms", "-decrypt", "-in", inFile, "-recip", bobVerify.certFile, "-inkey", bobVerify.keyFile,
    ]); // prettier-ignore
    assert.match(out.stdout, /the secret number of fb-smime-verify is 4711/);
    const r = await waitFor("receipt", async () =>
      (await receipts()).find((x) => x.queueId === id && x.to === "bob@smime-verify.test"),
    );
    assert.equal(r.fallback?.failed, "TLS_VERIFY_FAILED");
    assert.equal(r.tls.level, "encrypt");
    assert.match(r.tls.protocol ?? "", /^TLSv1\.[23]$/);
    assert.equal(r.tls.authenticated, "none");
  });

  it("attacker: smime with its default session (required) -> the stripped partner gets nothing, deferred", async () => {
    const id = await submit("bob@smime-tls.test", "fb-smime-tls");
    await retried(id);
    const l = await waitFor("deferral line", line(id, "bob@smime-tls.test", "deferred"));
    assert.equal(l.code, "TLS_NOT_OFFERED");
    assert.deepEqual(l.fallback, { action: "smime", trigger: "TLS_NOT_OFFERED" });
    assert.equal(clearFor(proxy, "smime-tls.test"), false, "no MAIL/RCPT in clear for it");
    assert.equal(
      (await partner.messages()).some((m) => m.headers["x-test-id"]?.[0] === "fb-smime-tls"),
      false,
    );
  });

  it("attacker: smime without a certificate for the recipient -> deferred (4.7.5), never clear", async () => {
    const id = await submit("erin@smime-nocert.test", "fb-nocert");
    await retried(id);
    const l = await waitFor("deferral line", line(id, "erin@smime-nocert.test", "deferred"));
    assert.equal(l.code, "SMIME_NO_CERTIFICATE");
    assert.equal(l.dsn, "4.7.5");
    assert.match(String(l.response), /never sent in clear/);
    assert.equal(clearFor(proxy, "smime-nocert.test"), false);
    assert.equal(
      (await partner.messages()).some((m) => m.headers["x-test-id"]?.[0] === "fb-nocert"),
      false,
    );
  });

  it("defer (no fallback): nothing leaves, the queue holds it", async () => {
    const id = await submit("bob@defer.test", "fb-defer");
    await retried(id);
    const l = await waitFor("deferral line", line(id, "bob@defer.test", "deferred"));
    assert.equal(l.code, "TLS_NOT_OFFERED");
    assert.equal(l.fallback, undefined);
    assert.equal(clearFor(proxy, "defer.test"), false);
    assert.equal(
      (await partner.messages()).some((m) => m.headers["x-test-id"]?.[0] === "fb-defer"),
      false,
    );
    assert.ok(relay.status().queue.depth >= 1);
    assert.equal(
      logs.find((x) => x.event === "tls-fallback" && x.queueId === id),
      undefined,
      "no fallback logged",
    );
  });

  it("route: arrives at the alternate Postfix over verified TLS, not at the partner", async () => {
    const id = await submit("bob@route.test", "fb-route");
    const m = await arrived(portal, "fb-route");
    assert.match(m.raw, /the secret number of fb-route is 4711/);
    assert.match(m.headers.received?.[0] ?? "", /ESMTPS/);
    const sent = await waitFor("delivery line", line(id, "bob@route.test", "sent"));
    assert.deepEqual(sent.fallback, { action: "route", trigger: "TLS_NOT_OFFERED" });
    assert.equal((sent.tls as { verified: boolean }).verified, true);
    assert.equal((sent.tls as { level: string }).level, "verify");
    const r = await waitFor("receipt", async () =>
      (await receipts()).find((x) => x.queueId === id && x.to === "bob@route.test"),
    );
    assert.equal(r.fallback?.action, "route");
    assert.equal(r.nextHop.port, portal.port);
    assert.equal(r.tls.authenticated, "ca-chain");
    assert.deepEqual(r.tls.names, ["portal.test"]);
    assert.equal(r.tls.ca, "secrets/ca/ca.crt");
    assert.equal(clearFor(proxy, "route.test"), false);
    assert.equal(
      (await partner.messages()).some((x) => x.headers["x-test-id"]?.[0] === "fb-route"),
      false,
    );
  });

  it("attacker: route whose alternate hop strips STARTTLS too -> deferred, never clear", async () => {
    const id = await submit("bob@route-strip.test", "fb-route-strip");
    await retried(id);
    const l = await waitFor("deferral line", line(id, "bob@route-strip.test", "deferred"));
    assert.equal(l.code, "TLS_NOT_OFFERED");
    assert.deepEqual(l.fallback, { action: "route", trigger: "TLS_NOT_OFFERED" });
    assert.ok(portalProxy.sessions >= 1, "the alternate hop was tried");
    assert.equal(portalProxy.sawMailFrom, false);
    assert.equal(portalProxy.sawData, false);
    assert.equal(clearFor(proxy, "route-strip.test"), false);
    for (const peer of [partner, portal])
      assert.equal(
        (await peer.messages()).some((x) => x.headers["x-test-id"]?.[0] === "fb-route-strip"),
        false,
      );
  });
});
