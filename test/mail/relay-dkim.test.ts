// DKIM signing end to end (issue 20 item 3): swaks -> relay -> a real Postfix, and dkimpy (Debian's
// python3-dkim, an independent implementation) verifies the bytes Postfix stored: plain mail, and
// mail S/MIME- or OpenPGP-encrypted before it was signed (the signature covers what is sent), the
// TLS fallback's S/MIME encryption included (signed again after it). A changed body fails. From the
// attacker's side: a partner's mail with our From: is not signed with our key, nor a trusted sender's
// mail for a domain the relay does not list, nor a relay-wide account's mail whose From: is a parent
// of the one domain it may send as, and a broken key defers the mail instead of sending it unsigned.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { generateKey } from "openpgp";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf, type Leaf } from "../support/certs.js";
import { dkimVerify, makeDkimKey, rawBytes, type DkimKey } from "../support/dkim.js";
import { startPostfix, type Message, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { readReceipts } from "../support/receipts.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let postfix: PostfixPeer;
let key: DkimKey;
let bob: Leaf;
/** fay@fallback.test's S/MIME certificate: the TLS fallback encrypts to it. */
let fay: Leaf;
let records: Record<string, string>;
/** pat@pgp.test's OpenPGP public key (armored), made at test time. */
let patKey: string;

const run = promisify(execFile);
const PARTNER = "127.0.0.3";
/** A relay-wide account limited to a subdomain of the DKIM domain. */
const SUB = { from: "127.0.0.1", username: "sub", password: "sub-pw" };
const KEY_FILE = "secrets/dkim-local/private.key";
type Dkim = NonNullable<RelayConfigInput["dkim"]>;

async function configure(dkim: Dkim, files: Record<string, string | Buffer> = {}): Promise<void> {
  await f.configure(
    {
      dkim,
      inbound: { require: "none", relayFrom: ["127.0.0.1"], localDomains: ["local.test", "sub.local.test"] },
      credentials: {
        // a relay-wide account (no policy names it) that may send only as sub.local.test
        "sub-in": {
          type: "password",
          usage: "inbound",
          username: "sub",
          passwordFile: "secrets/sub-in/password",
          allowRelay: true,
          senderDomains: ["sub.local.test"],
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
          outbound: {
            tls: { mode: "required" },
            nextHop: { host: postfix.host, port: postfix.port },
            smime: { certificateFiles: ["secrets/partner-smime/certs.pem"] },
          },
          inbound: { hosts: [`${PARTNER}/32`], require: "tls+auth", credentials: ["partner-in"] },
        },
        {
          name: "pgp/pgp",
          domains: ["pgp.test"],
          outbound: {
            tls: { mode: "required" },
            nextHop: { host: postfix.host, port: postfix.port },
            openpgp: { keyringFiles: ["secrets/pgp/keys.asc"] },
          },
        },
        {
          // the partner's certificate does not carry the name the policy expects: TLS_VERIFY_FAILED,
          // then the S/MIME fallback (its session required: the same Postfix, over TLS)
          name: "fallback/smime",
          domains: ["fallback.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/ca/ca.crt", matchNames: ["other.partner.test"] },
            nextHop: { host: postfix.host, port: postfix.port },
            tlsFallback: {
              action: "smime",
              smime: { certificateFiles: ["secrets/fallback-smime/certs.pem"] },
            },
          },
        },
        {
          name: "plain/plain",
          domains: ["plain.test"],
          outbound: { tls: { mode: "required" }, nextHop: { host: postfix.host, port: postfix.port } },
        },
      ],
    },
    {
      files: {
        "secrets/partner-smime/certs.pem": await readFile(bob.certFile),
        "secrets/fallback-smime/certs.pem": await readFile(fay.certFile),
        "secrets/ca/ca.crt": await readFile(f.ca.certFile),
        "secrets/partner-in/password": "partner-pw",
        "secrets/sub-in/password": SUB.password,
        "secrets/pgp/keys.asc": patKey,
        [KEY_FILE]: await readFile(key.keyFile),
        ...files,
      },
    },
  );
  await relay?.checkConfig();
}

const signing: Dkim = [{ domain: "local.test", selector: "sel1", keyFile: KEY_FILE, credential: "t/dkim" }];

/** A message whose body has what dot-stuffing and relaxed canonicalisation must survive. */
function message(tag: string, to: string, from = "alice@local.test"): string {
  return (
    `From: Alice <${from}>\r\nTo: ${to}\r\nSubject: report   ${tag}\r\n` +
    `Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <${tag}@local.test>\r\nX-Test-Id: ${tag}\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n` +
    `Line with trailing spaces   \r\n.a line that starts with a dot\r\n..two dots\r\n\r\nGrüße\r\n\r\n`
  );
}

async function submit(
  to: string,
  tag: string,
  o: { from?: string; envelope?: string; as?: { from: string; username: string; password: string } } = {},
): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: o.envelope ?? "alice@local.test",
    to: [to],
    data: message(tag, to, o.from).replace(/\r\n$/, ""),
    ...(o.as
      ? {
          tls: true,
          auth: { username: o.as.username, password: o.as.password },
          extraArgs: ["--local-interface", o.as.from],
        }
      : {}),
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

async function delivered(tag: string): Promise<Message> {
  return waitFor(
    `${tag} delivered`,
    async () => (await postfix.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag),
    20_000,
  );
}

/** sealpost_relay_dkim_recipients_total{domain="local.test",result="signed"}. */
async function dkimSigned(): Promise<number> {
  const m = await relay.metrics.dkim.get();
  return m.values
    .filter((v) => v.labels.domain === "local.test" && v.labels.result === "signed")
    .reduce((s, v) => s + v.value, 0);
}

function dkimLog(queueId: string, result: string) {
  return () => logs.find((l) => l.event === "dkim" && l.queueId === queueId && l.result === result);
}

before(async () => {
  f = await relayFixture("relay-dkim", { caName: "DKIM Test CA" });
  ports = f.ports;
  const mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  bob = await makeLeaf(f.ca, { cn: "Bob", emails: ["bob@partner.test"], rsa: true });
  fay = await makeLeaf(f.ca, { cn: "Fay", emails: ["fay@fallback.test"], rsa: true });
  key = await makeDkimKey(f.work, "local");
  records = { "sel1._domainkey.local.test": key.txt };
  patKey = (await generateKey({ userIDs: [{ name: "Pat", email: "pat@pgp.test" }], format: "armored" }))
    .publicKey;
  postfix = await startPostfix({
    domains: ["partner.test", "plain.test", "pgp.test", "fallback.test"],
    tls: "require",
    cert: mx,
    hostname: "mx.partner.test",
  });
  await configure(signing);
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(() => postfix?.stop());
});

describe("DKIM signing", () => {
  it("signs a trusted sender's mail from a listed domain: dkimpy verifies what Postfix stored", async () => {
    const id = await submit("carol@plain.test", "dk-plain");
    const m = await delivered("dk-plain");
    assert.match(
      m.headers["dkim-signature"]?.[0] ?? "",
      /a=rsa-sha256; c=relaxed\/relaxed; d=local\.test;.*s=sel1;/,
    );
    const v = await dkimVerify(await rawBytes(m.path), records);
    assert.equal(v.ok, true);
    assert.equal(v.domain, "local.test");
    assert.equal(v.selector, "sel1");
    assert.deepEqual(v.signed, [
      "from",
      "to",
      "subject",
      "date",
      "message-id",
      "mime-version",
      "content-type",
    ]);
    // the dot-stuffed line arrived as written (the signature is over the unstuffed bytes)
    assert.match(m.body, /^\.a line that starts with a dot$/m);
    await waitFor("dkim log", dkimLog(id, "signed"));
    const r = await waitFor("receipt", async () =>
      (await readReceipts(join(f.work, "queue"))).find((x) => x.queueId === id),
    );
    assert.deepEqual(r.dkim, { domain: "local.test", selector: "sel1" });
    assert.match(
      await relay.metrics.registry.metrics(),
      /sealpost_relay_dkim_recipients_total\{domain="local\.test",result="signed"\} 1/,
    );
  });

  it("signs after S/MIME encryption: the signature covers the encrypted entity and verifies", async () => {
    const id = await submit("bob@partner.test", "dk-smime");
    const m = await delivered("dk-smime");
    assert.match(m.headers["content-type"]?.[0] ?? "", /^application\/pkcs7-mime; smime-type=enveloped-data/);
    assert.doesNotMatch(m.raw, /trailing spaces/);
    const v = await dkimVerify(await rawBytes(m.path), records);
    assert.equal(v.ok, true);
    assert.ok(v.signed.includes("content-type"));
    await waitFor("smime log", () => logs.find((l) => l.event === "smime" && l.queueId === id));
    await waitFor("dkim log", dkimLog(id, "signed"));
  });

  it("signs after OpenPGP encryption: the signature covers the PGP/MIME entity and verifies", async () => {
    const id = await submit("pat@pgp.test", "dk-pgp");
    const m = await delivered("dk-pgp");
    assert.match(m.headers["content-type"]?.[0] ?? "", /^multipart\/encrypted;/);
    assert.match(m.raw, /-----BEGIN PGP MESSAGE-----/);
    assert.doesNotMatch(m.raw, /trailing spaces/);
    const v = await dkimVerify(await rawBytes(m.path), records);
    assert.equal(v.ok, true);
    assert.ok(v.signed.includes("content-type"));
    await waitFor("openpgp log", () => logs.find((l) => l.event === "openpgp" && l.queueId === id));
    await waitFor("dkim log", dkimLog(id, "signed"));
  });

  it("attacker: the TLS fallback's S/MIME encryption is signed again: dkimpy verifies, openssl decrypts", async () => {
    // an active attacker (here: a certificate that does not verify) pushes the mail onto the
    // fallback; what it re-encrypts must not leave with a signature over the bytes it replaced
    const signedBefore = await dkimSigned();
    const id = await submit("fay@fallback.test", "dk-fallback");
    const m = await delivered("dk-fallback");
    assert.match(m.headers["content-type"]?.[0] ?? "", /^application\/pkcs7-mime; smime-type=enveloped-data/);
    assert.doesNotMatch(m.raw, /trailing spaces/);
    assert.equal(m.headers["dkim-signature"]?.length, 1, "one signature, over what is sent");
    const raw = await rawBytes(m.path);
    const v = await dkimVerify(raw, records);
    assert.equal(v.ok, true, v.why);
    assert.equal(v.domain, "local.test");
    assert.ok(v.signed.includes("content-type"));
    const inFile = join(f.work, "dk-fallback.eml");
    await writeFile(inFile, raw);
    const out = await run("openssl", [
      "cms", "-decrypt", "-in", inFile, "-recip", fay.certFile, "-inkey", fay.keyFile,
    ]); // prettier-ignore
    assert.match(out.stdout, /Line with trailing spaces/);
    // the clear inner message carries no signature of its own (signed once, outside)
    assert.doesNotMatch(out.stdout, /^DKIM-Signature:/im);
    // one delivery, one signature: logged and counted once for the recipient, although the first
    // signature (over the bytes the failed attempt would have sent) was made again
    const signedLines = () => logs.lines.filter((x) => x.event === "dkim" && x.queueId === id);
    const l = await waitFor("delivery line", () =>
      logs.find((x) => x.event === "recipient" && x.queueId === id && x.status === "sent"),
    );
    assert.deepEqual(l.fallback, { action: "smime", trigger: "TLS_VERIFY_FAILED" });
    const r = await waitFor("receipt", async () =>
      (await readReceipts(join(f.work, "queue"))).find((x) => x.queueId === id),
    );
    assert.deepEqual(r.dkim, { domain: "local.test", selector: "sel1" });
    assert.deepEqual(
      signedLines().map((x) => [x.result, x.recipients]),
      [["signed", ["fay@fallback.test"]]],
    );
    assert.equal(
      (await dkimSigned()) - signedBefore,
      1,
      "sealpost_relay_dkim_recipients_total counts it once",
    );
  });

  it("sanity: a body changed after signing fails verification (plain and encrypted)", async () => {
    for (const tag of ["dk-plain", "dk-smime", "dk-pgp", "dk-fallback"]) {
      const raw = (await rawBytes((await delivered(tag)).path)).toString("latin1");
      const cut = raw.indexOf("\n\n") + 2;
      const changed = raw.slice(0, cut) + raw.slice(cut).replace(/[A-Za-z]/, (c) => (c === "A" ? "B" : "A"));
      assert.notEqual(changed, raw);
      const v = await dkimVerify(Buffer.from(changed, "latin1"), records);
      assert.equal(v.ok, false, tag);
      assert.match(v.why, /body hash mismatch/, tag);
    }
  });

  // a partner's login never relays nor sends as our domain (session 9: authority.ts clamps it even in
  // a config that says otherwise, as this one does), so its mail with our From: never reaches the
  // signer at all; entitledToSign refusing a partner is the unit tests' (relay-authority)
  it("attacker: a partner's mail with our From: is not relayed to be signed (no signing oracle)", async () => {
    const as = (envelope: string) =>
      swaks({
        server: "127.0.0.1",
        port: ports.smtp,
        from: envelope,
        to: ["dave@plain.test"],
        data: message("dk-partner", "dave@plain.test").replace(/\r\n$/, ""),
        tls: true,
        auth: { username: "partner", password: "partner-pw" },
        extraArgs: ["--local-interface", PARTNER],
      });
    const ours = await as("alice@local.test");
    assert.equal(ours.replyTo("MAIL")?.code, 553, ours.transcript);
    const theirs = await as("bob@partner.test");
    assert.equal(theirs.replyTo("MAIL")?.code, 250, theirs.transcript);
    assert.equal(theirs.replyTo("RCPT")?.code, 550, theirs.transcript);
  });

  it("attacker: a trusted sender's From: in a domain the relay does not list is not signed", async () => {
    await submit("erin@plain.test", "dk-other", { from: "ceo@bank.test" });
    const m = await delivered("dk-other");
    assert.equal(m.headers["dkim-signature"], undefined);
  });

  it("attacker: an account limited to sub.local.test gets no local.test signature for From: ceo@local.test", async () => {
    // MAIL FROM in its own subdomain passes the sender check; the header From: is the parent domain
    const id = await submit("gina@plain.test", "dk-sub", {
      from: "ceo@local.test",
      envelope: "news@sub.local.test",
      as: SUB,
    });
    const m = await delivered("dk-sub");
    assert.equal(m.headers.from?.[0], "Alice <ceo@local.test>");
    assert.equal(m.headers["dkim-signature"], undefined);
    assert.equal(dkimLog(id, "signed")(), undefined);
  });

  it("a missing key defers (never sent unsigned); once the key is there the mail leaves signed", async () => {
    await configure([{ domain: "local.test", selector: "sel1", unavailable: "Secret t/dkim-key not found" }]);
    const id = await submit("frank@plain.test", "dk-missing");
    const d = await waitFor("deferral", dkimLog(id, "deferred"));
    assert.equal(d.code, "DKIM_KEY_UNAVAILABLE");
    assert.match(String(d.reason), /Secret t\/dkim-key not found/);
    // an invalid key (not a PEM private key) defers too
    await configure(signing, { [KEY_FILE]: "not a key\n" });
    await waitFor("invalid key deferral", () =>
      logs.find((l) => l.event === "dkim" && l.queueId === id && l.code === "DKIM_KEY_INVALID"),
    );
    assert.equal(
      (await postfix.messages()).find((m) => m.headers["x-test-id"]?.[0] === "dk-missing"),
      undefined,
    );
    await configure(signing);
    const m = await delivered("dk-missing");
    assert.equal((await dkimVerify(await rawBytes(m.path), records)).ok, true);
  });
});
