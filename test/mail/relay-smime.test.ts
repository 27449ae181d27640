// S/MIME gateway encryption end to end: swaks -> relay -> Postfix, and OpenSSL (an independent CMS
// implementation) decrypts what Postfix stored with each recipient's key and gets back the exact
// inner entity (Content-* headers, body, attachment); the signed variant verifies against the CA.
// Recipients without a certificate get the policy's choice: defer, bounce (DSN 5.7.5), send clear.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf, type Ca, type Leaf } from "../support/certs.js";
import { startPostfix, type Message, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { sampleMessage } from "../support/sample-mime.js";
import { swaks } from "../support/swaks.js";

const run = promisify(execFile);
type Smime = NonNullable<NonNullable<RelayConfigInput["policies"]>[number]["outbound"]["smime"]>;

let f: RelayFixture;
let work: string;
let ca: Ca;
let bob: Leaf; // RSA: key transport (RSA-OAEP)
let carol: Leaf; // EC P-256 with keyAgreement: ECDH
let signing: Leaf;
let expiredDave: Leaf;
let weakFrank: Leaf; // RSA-1024: factorable, never encrypted to
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let postfix: PostfixPeer;

/** An EC recipient certificate with keyUsage keyAgreement (certs.ts makes keyEncipherment ones). */
async function ecRecipient(c: Ca, name: string, email: string): Promise<Leaf> {
  const keyFile = join(c.dir, `${name}.key`);
  const certFile = join(c.dir, `${name}.crt`);
  const csr = join(c.dir, `${name}.csr`);
  const ext = join(c.dir, `${name}.ext`);
  await run("openssl", [
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    keyFile,
  ]);
  await run("openssl", ["req", "-new", "-key", keyFile, "-out", csr, "-subj", `/CN=${name}`]);
  await writeFile(
    ext,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n" +
      `extendedKeyUsage=emailProtection\nsubjectAltName=email:${email}\n`,
  );
  await run("openssl", [
    "x509", "-req", "-in", csr, "-CA", c.certFile, "-CAkey", c.keyFile, "-CAcreateserial",
    "-out", certFile, "-extfile", ext, "-days", "30",
  ]); // prettier-ignore
  return { certFile, keyFile, caFile: c.certFile };
}

async function configure(smime: Smime): Promise<void> {
  const certs = Buffer.concat(
    await Promise.all([bob, carol, expiredDave, weakFrank].map((l) => readFile(l.certFile))),
  );
  await f.configure(
    {
      credentials: {
        "smime-signer": {
          type: "clientCertificate",
          usage: "outbound",
          certFile: "secrets/smime-signer/tls.crt",
          keyFile: "secrets/smime-signer/tls.key",
        },
        // a partner's account (named on the host rule below) whose credential says it may even relay and
        // use our domain, which the relay never grants a partner
        "partner-in": {
          type: "password",
          usage: "inbound",
          username: "partner",
          passwordFile: "secrets/partner-in/password",
          allowRelay: true,
          senderDomains: ["local.test", "partner.test"],
        },
      },
      policies: [
        {
          name: "partner/smime",
          domains: ["partner.test"],
          outbound: { tls: { mode: "required" }, nextHop: { host: postfix.host, port: postfix.port }, smime },
          inbound: { hosts: [`${PARTNER}/32`], require: "tls+auth", credentials: ["partner-in"] },
        },
      ],
    },
    {
      files: {
        "secrets/partner-smime/certs.pem": certs,
        "secrets/smime-signer/tls.crt": await readFile(signing.certFile),
        "secrets/smime-signer/tls.key": await readFile(signing.keyFile),
        "secrets/partner-in/password": "partner-pw",
      },
    },
  );
  await relay?.checkConfig();
}

function original(tag: string, to: string): { data: string; inner: Buffer } {
  const m = sampleMessage(tag, to);
  return { data: m.data, inner: m.entity };
}

const PARTNER = "127.0.0.3";

async function submit(
  to: string[],
  tag: string,
  as?: { from: string; username: string; password: string },
  /** The message's To: field (default: every recipient; the others are then Bcc). */
  headerTo = to.join(", "),
): Promise<{ id: string; inner: Buffer }> {
  const o = original(tag, headerTo);
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: "alice@local.test",
    to,
    data: o.data,
    ...(as
      ? {
          tls: true,
          auth: { username: as.username, password: as.password },
          extraArgs: ["--local-interface", as.from],
        }
      : {}),
  });
  assert.equal(r.code, 0, r.transcript);
  return { id: r.queueId!, inner: o.inner };
}

async function delivered(tag: string, rcpt: string): Promise<Message> {
  return waitFor(
    `${tag} delivered to ${rcpt}`,
    async () =>
      (await postfix.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag && m.recipient === rcpt),
    20_000,
  );
}

/** openssl cms -decrypt of a stored message with a recipient's key: the inner entity's bytes. */
async function decrypt(m: Message, who: Leaf): Promise<Buffer> {
  const inFile = join(work, `in-${Math.random().toString(16).slice(2)}.eml`);
  const outFile = `${inFile}.out`;
  await writeFile(inFile, m.raw);
  await run("openssl", [
    "cms",
    "-decrypt",
    "-in",
    inFile,
    "-recip",
    who.certFile,
    "-inkey",
    who.keyFile,
    "-out",
    outFile,
  ]);
  return readFile(outFile);
}

function smimeLog(queueId: string, result: string) {
  return () => logs.find((l) => l.event === "smime" && l.queueId === queueId && l.result === result);
}

before(async () => {
  f = await relayFixture("relay-smime", { caName: "Partner CA" });
  ({ work, ca, ports } = f);
  const mx = await makeLeaf(ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  bob = await makeLeaf(ca, { cn: "Bob", emails: ["bob@partner.test"], rsa: true });
  carol = await ecRecipient(ca, "carol", "carol@partner.test");
  expiredDave = await makeLeaf(ca, { cn: "Dave", emails: ["dave@partner.test"], rsa: true, expired: true });
  weakFrank = await makeLeaf(ca, { cn: "Frank", emails: ["frank@partner.test"], rsa: true, rsaBits: 1024 });
  signing = await makeLeaf(ca, { cn: "Relay Signing", emails: ["postmaster@relay.test"], name: "signer" });
  postfix = await startPostfix({
    domains: ["partner.test"],
    tls: "require",
    cert: mx,
    hostname: "mx.partner.test",
  });
  await configure({ certificateFiles: ["secrets/partner-smime/certs.pem"], missingCertificate: "defer" });
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(() => postfix?.stop());
});

describe("S/MIME gateway encryption", () => {
  it("encrypts once to every recipient's certificate (RSA-OAEP and ECDH); openssl recovers the exact entity", async () => {
    const { id, inner } = await submit(["bob@partner.test", "carol@partner.test"], "sm-enc");
    const forBob = await delivered("sm-enc", "bob@partner.test");
    const forCarol = await delivered("sm-enc", "carol@partner.test");
    // routing headers outside, content headers inside
    assert.match(
      forBob.headers["content-type"]?.[0] ?? "",
      /^application\/pkcs7-mime; smime-type=enveloped-data; name=smime\.p7m/,
    );
    assert.equal(forBob.headers["content-transfer-encoding"]?.[0], "base64");
    assert.equal(forBob.headers.subject?.[0], "quarterly sm-enc");
    assert.equal(forBob.headers["message-id"]?.[0], "<sm-enc@local.test>");
    assert.equal(forBob.headers["content-language"], undefined);
    assert.ok(forBob.headers.received?.some((r) => /by relay\.test \(Sealpost\)/.test(r)));
    assert.doesNotMatch(forBob.raw, /secret number|data\.bin/);
    // one encryption for both: the same ciphertext reached both mailboxes
    assert.equal(forBob.body, forCarol.body);
    assert.deepEqual(await decrypt(forBob, bob), inner);
    assert.deepEqual(await decrypt(forCarol, carol), inner);
    const l = await waitFor("smime log", smimeLog(id, "encrypted"));
    assert.equal((l.certificates as unknown[]).length, 2);
    const metrics = await relay.metrics.registry.metrics();
    assert.match(
      metrics,
      /sealpost_relay_smime_recipients_total\{policy="partner\/smime",result="encrypted"\} 2/,
    );
  });

  it("attack (session 15): a Bcc recipient gets its own message; no copy names another recipient's certificate", async () => {
    // an encrypted message names every certificate it is encrypted to (RecipientInfo): one message for
    // both showed bob that carol had a copy, though the sender put her in Bcc
    const { inner } = await submit(
      ["bob@partner.test", "carol@partner.test"],
      "sm-bcc",
      undefined,
      "bob@partner.test",
    );
    const forBob = await delivered("sm-bcc", "bob@partner.test");
    const forCarol = await delivered("sm-bcc", "carol@partner.test");
    assert.notEqual(forBob.body, forCarol.body, "one ciphertext for both: each copy names both certificates");
    assert.deepEqual(await decrypt(forBob, bob), inner);
    assert.deepEqual(await decrypt(forCarol, carol), inner);
    await assert.rejects(decrypt(forBob, carol), "bob's copy is encrypted to carol's certificate too");
    await assert.rejects(decrypt(forCarol, bob), "carol's copy is encrypted to bob's certificate too");
  });

  it("aes-256-gcm: AuthEnvelopedData (RFC 5083/5084) that openssl recovers exactly; a changed byte is refused", async () => {
    await configure({
      certificateFiles: ["secrets/partner-smime/certs.pem"],
      contentEncryption: "aes-256-gcm",
    });
    const { id, inner } = await submit(["bob@partner.test", "carol@partner.test"], "sm-gcm");
    const forBob = await delivered("sm-gcm", "bob@partner.test");
    const forCarol = await delivered("sm-gcm", "carol@partner.test");
    assert.match(
      forBob.headers["content-type"]?.[0] ?? "",
      /^application\/pkcs7-mime; smime-type=authEnveloped-data; name=smime\.p7m/,
    );
    assert.doesNotMatch(forBob.raw, /secret number|data\.bin/);
    assert.deepEqual(await decrypt(forBob, bob), inner);
    assert.deepEqual(await decrypt(forCarol, carol), inner);
    // what OpenSSL parsed: AuthEnvelopedData with AES-256-GCM, not EnvelopedData
    const der = Buffer.from(forBob.body.replace(/\s+/g, ""), "base64");
    const derFile = join(work, "gcm.der");
    await writeFile(derFile, der);
    const printed = await run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", derFile]);
    assert.match(printed.stdout, /id-smime-ct-authEnvelopedData/);
    assert.match(printed.stdout, /aes-256-gcm/);
    // an attacker on the path flips one ciphertext byte (before the 18-byte mac): GCM refuses it,
    // where CBC would decrypt to altered text
    const changed = Buffer.from(der);
    const at = changed.length - 40;
    changed[at] = changed[at]! ^ 0x01;
    const changedFile = join(work, "gcm-changed.der");
    await writeFile(changedFile, changed);
    await assert.rejects(
      run("openssl", [
        "cms", "-decrypt", "-inform", "DER", "-in", changedFile, "-recip", bob.certFile, "-inkey", bob.keyFile,
      ]), // prettier-ignore
    );
    const l = await waitFor("smime log", smimeLog(id, "encrypted"));
    assert.equal(l.algorithm, "aes-256-gcm");
  });

  it("signs first (opaque SignedData), then encrypts; openssl cms -verify -CAfile accepts it", async () => {
    await configure({
      certificateFiles: ["secrets/partner-smime/certs.pem"],
      sign: true,
      signingCredential: "smime-signer",
    });
    const { id, inner } = await submit(["bob@partner.test"], "sm-sign");
    const m = await delivered("sm-sign", "bob@partner.test");
    const signed = await decrypt(m, bob);
    assert.match(signed.toString("latin1"), /^Content-Type: application\/pkcs7-mime; smime-type=signed-data/);
    const signedFile = join(work, "signed.eml");
    const content = join(work, "verified.out");
    await writeFile(signedFile, signed);
    const v = await run("openssl", [
      "cms",
      "-verify",
      "-CAfile",
      ca.certFile,
      "-in",
      signedFile,
      "-out",
      content,
    ]);
    assert.match(v.stderr, /Verification successful/);
    assert.deepEqual(await readFile(content), inner);
    await waitFor("smime log", smimeLog(id, "signed-encrypted"));
  });

  it("attack: a From: the envelope sender's domain does not vouch for is encrypted, not signed with the relay's key", async () => {
    // an own sender (here relayFrom) writes a bank's CEO in From: over its own envelope domain: a
    // signature by the relay's certificate would vouch for that From: (DKIM's rule: relay-dkim)
    await configure({
      certificateFiles: ["secrets/partner-smime/certs.pem"],
      sign: true,
      signingCredential: "smime-signer",
    });
    const o = sampleMessage("sm-forged", "bob@partner.test", "Bank CEO <ceo@bank.test>");
    const r = await swaks({
      server: "127.0.0.1",
      port: ports.smtp,
      from: "alice@local.test",
      to: ["bob@partner.test"],
      data: o.data,
    });
    assert.equal(r.code, 0, r.transcript);
    const m = await delivered("sm-forged", "bob@partner.test");
    assert.deepEqual(
      await decrypt(m, bob),
      o.entity,
      "signed by the relay for a From: it does not vouch for",
    );
    const l = await waitFor("smime log", smimeLog(r.queueId!, "encrypted"));
    assert.match(String(l.notSigned), /envelope sender domain local\.test is not bank\.test/);
  });

  // a partner's login never relays (session 9: authority.ts clamps it even in a config that says
  // otherwise, as this one does), so its mail never reaches the signer; entitledToSign refusing a
  // partner is the unit tests' (relay-authority)
  it("finding 3 (issue 15): a partner's mail is not relayed through the relay, so never signed with the relay's key", async () => {
    await configure({
      certificateFiles: ["secrets/partner-smime/certs.pem"],
      sign: true,
      signingCredential: "smime-signer",
    });
    const r = await swaks({
      server: "127.0.0.1",
      port: ports.smtp,
      from: "carol@partner.test",
      to: ["bob@partner.test"],
      tls: true,
      auth: { username: "partner", password: "partner-pw" },
      extraArgs: ["--local-interface", PARTNER],
    });
    assert.equal(r.replyTo("MAIL")?.code, 250, r.transcript);
    assert.equal(r.replyTo("RCPT")?.code, 550, r.transcript);
  });

  it("no usable certificate: defer keeps it queued, bounce sends a 5.7.5 DSN, sendClear logs the reason", async () => {
    await configure({ certificateFiles: ["secrets/partner-smime/certs.pem"], missingCertificate: "defer" });
    const deferred = await submit(["dave@partner.test"], "sm-defer"); // only an expired certificate
    const d = await waitFor("deferral", smimeLog(deferred.id, "deferred"));
    assert.equal(d.code, "SMIME_NO_CERTIFICATE");
    assert.match(String(d.reason), /expired/);

    await configure({ certificateFiles: ["secrets/partner-smime/certs.pem"], missingCertificate: "bounce" });
    const b = await waitFor("bounce", smimeLog(deferred.id, "bounced"));
    assert.match(String(b.reason), /expired/);
    await waitFor("DSN queued", () => logs.find((l) => l.event === "dsn" && l.queueId === deferred.id));

    await configure({
      certificateFiles: ["secrets/partner-smime/certs.pem"],
      missingCertificate: "sendClear",
    });
    const mixed = await submit(["erin@partner.test", "bob@partner.test"], "sm-clear");
    const clear = await delivered("sm-clear", "erin@partner.test");
    assert.match(clear.raw, /secret number is 4711/);
    const enc = await delivered("sm-clear", "bob@partner.test");
    assert.deepEqual(await decrypt(enc, bob), mixed.inner);
    const c = await waitFor("sent-clear log", smimeLog(mixed.id, "sent-clear"));
    assert.deepEqual(c.recipients, ["erin@partner.test"]);
    assert.match(String(c.reason), /erin@partner\.test: no certificate/);
    assert.equal(
      await postfix.messages().then((ms) => ms.some((m) => m.headers["x-test-id"]?.[0] === "sm-defer")),
      false,
    );
  });

  it("a recipient whose only certificate has an RSA-1024 key is deferred, never encrypted to that key", async () => {
    await configure({ certificateFiles: ["secrets/partner-smime/certs.pem"], missingCertificate: "defer" });
    const weak = await submit(["frank@partner.test"], "sm-weak");
    const d = await waitFor("deferral", smimeLog(weak.id, "deferred"));
    assert.equal(d.code, "SMIME_NO_CERTIFICATE");
    assert.match(String(d.reason), /RSA key of 1024 bits \(at least 2048\)/);
    assert.equal(
      await postfix.messages().then((ms) => ms.some((m) => m.headers["x-test-id"]?.[0] === "sm-weak")),
      false,
    );
  });
});
