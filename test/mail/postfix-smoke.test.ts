// Issue 2's acceptance for the mail peers: a private Postfix on loopback takes mail from swaks over
// STARTTLS, logs the TLS session, enforces AUTH inside TLS and refuses MAIL in clear when TLS is
// required. The relay's tests stand on these peers, so they must behave like a real partner MTA.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeCa, makeLeaf, type Ca, type Leaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { swaks } from "../support/swaks.js";

let work: string;
let ca: Ca;
let mxCert: Leaf;
const peers: PostfixPeer[] = [];

async function postfix(...a: Parameters<typeof startPostfix>): Promise<PostfixPeer> {
  const pf = await startPostfix(...a);
  peers.push(pf); // stopped in after() even when the test fails half-way
  return pf;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "postfix-smoke-"));
  ca = await makeCa(join(work, "ca"), "Partner CA");
  mxCert = await makeLeaf(ca, { cn: "mx.partner.example", dnsNames: ["mx.partner.example"] });
});

after(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  await rm(work, { recursive: true, force: true });
});

describe("postfix partner MTA", () => {
  it("takes a message over STARTTLS, delivers it to the Maildir and logs the TLS session", async () => {
    const pf = await postfix({ domains: ["partner.example"], tls: "offer", cert: mxCert });
    const r = await swaks({
      server: pf.host,
      port: pf.port,
      from: "alice@sender.test",
      to: "bob@partner.example",
      tls: true,
      tlsCaFile: ca.certFile,
      subject: "smoke",
      headers: { "X-Test-Id": "smoke-tls" },
      body: "hello over TLS",
    });
    assert.equal(r.code, 0, r.transcript);
    assert.ok(r.queueId, r.transcript);
    assert.equal(r.queued?.tls, true);

    const [m] = await pf.waitForMessages(1);
    assert.ok(m);
    assert.equal(m.recipient, "bob@partner.example");
    assert.equal(m.sender, "alice@sender.test");
    assert.deepEqual(m.headers["x-test-id"], ["smoke-tls"]);
    assert.match(m.body, /hello over TLS/);
    // Postfix's own Received header records the TLS session of the hop
    assert.match(m.headers.received?.[0] ?? "", /using TLSv1\.[23] with cipher \S+/);
    assert.match(m.headers.received?.[0] ?? "", new RegExp(`id ${r.queueId}`));

    const line = await pf.waitForLog(/TLS connection established from/);
    assert.match(
      line,
      /Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: TLSv1\.3 with cipher \S+/,
    );
    await pf.waitForLog(new RegExp(`${r.queueId}: to=<bob@partner\\.example>.*status=sent`));
  });

  it("offer: a client that does not ask for TLS is served in clear", async () => {
    const pf = await postfix({ domains: ["partner.example"], tls: "offer", cert: mxCert });
    const r = await swaks({ server: pf.host, port: pf.port, to: "carol@partner.example" });
    assert.equal(r.code, 0, r.transcript);
    assert.equal(r.queued?.tls, false);
    const [m] = await pf.waitForMessages(1);
    assert.doesNotMatch(m?.headers.received?.[0] ?? "", /using TLS/);
  });

  it("require: MAIL before STARTTLS gets 530, nothing is delivered", async () => {
    const pf = await postfix({ domains: ["partner.example"], tls: "require", cert: mxCert });
    const r = await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example" });
    assert.equal(r.code, 23, r.transcript); // swaks: error in MAIL transaction
    assert.equal(r.replyTo("MAIL")?.code, 530);
    assert.equal(r.failure?.code, 530);
    assert.match(r.failure?.lines[0] ?? "", /5\.7\.0 Must issue a STARTTLS command first/);
    const ok = await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example", tls: true });
    assert.equal(ok.code, 0, ok.transcript);
    assert.equal((await pf.waitForMessages(1)).length, 1);
  });

  it("none: no STARTTLS offered", async () => {
    const pf = await postfix({ domains: ["partner.example"], tls: "none" });
    const r = await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example", tls: true });
    assert.equal(r.code, 29, r.transcript); // swaks: TLS required but not offered
    assert.doesNotMatch(r.replyTo("EHLO")?.lines.join("\n") ?? "", /STARTTLS/);
  });

  describe("AUTH", () => {
    const account = { username: "relay-edge", password: "s3cret-pass" };
    let pf: PostfixPeer;
    before(async () => {
      pf = await postfix({ domains: ["partner.example"], tls: "offer", cert: mxCert, auth: account });
    });

    it("accepts the right password inside TLS", async () => {
      const r = await swaks({
        server: pf.host,
        port: pf.port,
        to: "bob@partner.example",
        tls: true,
        auth: account,
      });
      assert.equal(r.code, 0, r.transcript);
      assert.equal(r.replyTo("AUTH")?.code, 235);
      assert.equal(r.replyTo("AUTH")?.tls, true);
      const [m] = await pf.waitForMessages(1);
      assert.match(m?.headers.received?.[0] ?? "", /with ESMTPSA/); // S = TLS, A = authenticated
      await pf.waitForLog(/sasl_method=PLAIN, sasl_username=relay-edge/);
    });

    it("rejects a wrong password with 535", async () => {
      const r = await swaks({
        server: pf.host,
        port: pf.port,
        to: "bob@partner.example",
        tls: true,
        auth: { ...account, password: "wrong" },
      });
      assert.equal(r.code, 28, r.transcript);
      assert.equal(r.replyTo("AUTH")?.code, 535);
    });

    it("does not offer AUTH in clear, and refuses MAIL without it (530)", async () => {
      const r = await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example" });
      assert.doesNotMatch(r.replyTo("EHLO")?.lines.join("\n") ?? "", /AUTH/);
      assert.equal(r.replyTo("MAIL")?.code, 530);
      assert.match(r.transcript, /Authentication required/);
    });

    it("LOGIN works too, with a user@realm name", async () => {
      const other = await postfix({
        domains: ["partner.example"],
        tls: "require",
        cert: mxCert,
        auth: { username: "relay@sender.test", password: "pw" },
      });
      const r = await swaks({
        server: other.host,
        port: other.port,
        to: "bob@partner.example",
        tls: true,
        auth: { username: "relay@sender.test", password: "pw", mechanism: "LOGIN" },
      });
      assert.equal(r.code, 0, r.transcript);
    });
  });

  it("recipients: unknown addresses get 550, known ones land in their own Maildir", async () => {
    const pf = await postfix({ domains: ["partner.example"], recipients: ["bob@partner.example"] });
    const bad = await swaks({ server: pf.host, port: pf.port, to: "nobody@partner.example" });
    assert.equal(bad.code, 24, bad.transcript);
    assert.equal(bad.replyTo("RCPT")?.code, 550);
    assert.equal(bad.replyTo("RCPT")?.enhanced, "5.1.1");
    const relay = await swaks({ server: pf.host, port: pf.port, to: "someone@elsewhere.test" });
    assert.equal(relay.replyTo("RCPT")?.code, 554); // not an open relay, not even for loopback
    const ok = await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example" });
    assert.equal(ok.code, 0, ok.transcript);
    const [m] = await pf.waitForMessages(1);
    assert.match(m?.path ?? "", /\/partner\.example\/bob\/new\//);
  });

  it("tlsProtocols: a peer limited to TLS 1.2", async () => {
    const pf = await postfix({
      domains: ["partner.example"],
      tls: "require",
      cert: mxCert,
      tlsProtocols: "<=TLSv1.2",
    });
    const r = await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example", tls: true });
    assert.equal(r.code, 0, r.transcript);
    assert.match(await pf.waitForLog(/TLS connection established/), /: TLSv1\.2 with cipher/);
  });

  it("clientCerts: a trusted client certificate is logged as Trusted, none is refused when required", async () => {
    const client = await makeLeaf(ca, { cn: "relay.sender.test", client: true });
    const pf = await postfix({
      domains: ["partner.example"],
      tls: "require",
      cert: mxCert,
      clientCerts: { caFile: ca.certFile, require: true },
    });
    const without = await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example", tls: true });
    assert.notEqual(without.code, 0, without.transcript);
    const r = await swaks({
      server: pf.host,
      port: pf.port,
      to: "bob@partner.example",
      tls: true,
      tlsClientCert: client,
    });
    assert.equal(r.code, 0, r.transcript);
    await pf.waitForLog(/Trusted TLS connection established from unknown\[127\.0\.0\.1\]: TLSv1\.3/);
  });

  it("stop() ends master and every Postfix daemon of the instance", async () => {
    const pf = await postfix({ domains: ["partner.example"] });
    await swaks({ server: pf.host, port: pf.port, to: "bob@partner.example" }); // wakes smtpd, cleanup, virtual
    await pf.waitForMessages(1);
    const queue = join(pf.dir, "queue");
    const daemons = instanceProcesses(queue);
    assert.ok(daemons.length >= 4, `master and its daemons: ${daemons.join(",")}`);
    await pf.stop();
    // the daemons notice their master is gone and exit on their own
    await waitFor(
      "Postfix daemons to exit",
      () => (daemons.every((pid) => !running(pid)) ? true : undefined),
      10_000,
    );
    await pf.stop(); // twice is fine
  });
});

/** Live processes whose working directory is this queue folder: Postfix's master and daemons chdir there. */
function instanceProcesses(queue: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/cwd`) === queue;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Not gone and not a zombie waiting for its (re-)parent to reap it. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
