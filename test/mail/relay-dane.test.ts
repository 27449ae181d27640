// DANE (RFC 7672) end to end with real DNSSEC: zones signed at test time (ldns-keygen,
// ldns-signzone), served by NSD, validated by unbound (trust anchors = the zones' DS records), and
// the relay's dns.servers pointing at unbound, whose AD bit it reads. The partner is a real Postfix
// whose certificate chain (leaf + test CA) the TLSA records describe. TLSA names use Postfix's
// port (_<port>._tcp.<mx>), since the relay's MX port is that port in tests.
//
//   good.signed.test      secure MX, TLSA 3 1 1 of Postfix's key        -> delivered (DANE-EE)
//   ta.signed.test        secure MX, TLSA 2 0 1 of the CA certificate   -> delivered (DANE-TA)
//   bad.signed.test       secure MX, TLSA 3 1 1 of another key          -> deferred, nothing sent
//   unusable.signed.test  secure MX, only a PKIX-EE (1 1 1) record      -> delivered, TLS required
//   plainmx.signed.test   secure MX, MX host in the unsigned plain.test -> delivered (DANE n/a)
//   plain.test            unsigned zone: insecure MX                    -> deferred (dane-required)
//   bogus.test            signed, wrong trust anchor: SERVFAIL          -> deferred (dnssec-invalid)
//   rt.signed.test        nextHop mx-rt (a sink offering REQUIRETLS), TLSA 3 1 1 of its key: a
//                         REQUIRETLS message is delivered (dane authenticates: RFC 8689 is met)
import assert from "node:assert/strict";
import { X509Certificate, createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Receipt } from "../../relay/contract/receipt.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { buildZone, startNsd, type Nsd } from "../support/signed-zone.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";
import { startUnbound, type Unbound } from "../support/unbound.js";

let f: RelayFixture;
let logs: LogCapture;
let postfix: PostfixPeer;
let nsd: Nsd;
let unbound: Unbound;
let leafSpki: string;
let otherSpki: string;
let rtSink: Sink; // STARTTLS + REQUIRETLS, the leaf's key: the DANE next hop of rt.signed.test

const domains = [
  "good.signed.test",
  "ta.signed.test",
  "bad.signed.test",
  "unusable.signed.test",
  "plainmx.signed.test",
  "plain.test",
  "bogus.test",
];

const spkiSha256 = (pem: Buffer): string =>
  createHash("sha256")
    .update(new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" }))
    .digest("hex");
const certSha256 = (pem: Buffer): string =>
  createHash("sha256").update(new X509Certificate(pem).raw).digest("hex");

before(async () => {
  f = await relayFixture("relay-dane");
  const mxNames = ["good", "ta", "bad", "unusable"].map((n) => `mx-${n}.signed.test`);
  const leaf = await makeLeaf(f.ca, { cn: "mx-good.signed.test", dnsNames: [...mxNames, "mx.plain.test"] });
  // Postfix sends leaf + CA: DANE-TA needs the trust anchor's certificate in the chain
  const chainFile = join(f.work, "postfix-chain.pem");
  const leafPem = await readFile(leaf.certFile);
  const caPem = await readFile(f.ca.certFile);
  await writeFile(chainFile, Buffer.concat([leafPem, caPem]));
  postfix = await startPostfix({
    domains,
    cert: { certFile: chainFile, keyFile: leaf.keyFile },
    hostname: "mx-good.signed.test",
  });
  const other = await makeLeaf(await makeCa(join(f.work, "other-ca"), "Other CA"), { cn: "other" });
  leafSpki = spkiSha256(leafPem);
  otherSpki = spkiSha256(await readFile(other.certFile));
  const tlsa = (host: string, rr: string) => `_${postfix.port}._tcp.${host} IN TLSA ${rr}`;
  rtSink = await startSink({
    tls: { cert: Buffer.concat([leafPem, caPem]), key: await readFile(leaf.keyFile) },
    requireTls: true,
  });
  const zones = [
    await buildZone(f.work, {
      origin: "signed.test",
      sign: true,
      records: [
        ...["good", "ta", "bad", "unusable"].flatMap((n) => [
          `${n} IN MX 10 mx-${n}.signed.test.`,
          `mx-${n} IN A 127.0.0.1`,
        ]),
        "plainmx IN MX 10 mx.plain.test.",
        tlsa("mx-good", `3 1 1 ${leafSpki}`),
        tlsa("mx-ta", `2 0 1 ${certSha256(caPem)}`),
        tlsa("mx-bad", `3 1 1 ${otherSpki}`),
        tlsa("mx-unusable", `1 1 1 ${spkiSha256(leafPem)}`),
        "mx-rt IN A 127.0.0.1",
        `_${rtSink.port}._tcp.mx-rt IN TLSA 3 1 1 ${leafSpki}`,
      ],
    }),
    await buildZone(f.work, {
      origin: "plain.test",
      sign: false,
      records: [
        "@ IN MX 10 mx.plain.test.",
        "mx IN A 127.0.0.1",
        // never used: an insecure TLSA RRset is not DANE (it would not match anyway)
        tlsa("mx", `3 1 1 ${"00".repeat(32)}`),
      ],
    }),
    await buildZone(f.work, {
      origin: "bogus.test",
      sign: true,
      wrongAnchor: true,
      records: ["@ IN MX 10 mx.bogus.test.", "mx IN A 127.0.0.1"],
    }),
  ];
  nsd = await startNsd(f.work, zones);
  unbound = await startUnbound(f.work, {
    stubs: zones.map((z) => ({ name: z.origin, addr: nsd.stubAddr })),
    trustAnchors: zones.flatMap((z) => (z.ds ? [z.ds] : [])),
    probe: "mx-good.signed.test",
  });
  await f.configure({
    dns: { servers: [unbound.address] },
    policies: [
      { name: "p/dane", domains, outbound: { tls: { mode: "dane" } } },
      {
        name: "p/dane-rt",
        domains: ["rt.signed.test"],
        outbound: { tls: { mode: "dane" }, nextHop: { host: "mx-rt.signed.test", port: rtSink.port } },
      },
    ],
  });
  ({ logs } = await f.start({ mxPort: postfix.port }));
});

after(async () => {
  await f?.stop(() => Promise.all([postfix?.stop(), unbound?.stop(), nsd?.stop(), rtSink?.close()]));
});

async function submit(rcpt: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const delivery = (id: string, pred: (l: Record<string, unknown>) => boolean = () => true) =>
  waitFor(
    `delivery log of ${id}`,
    () => logs.find((l) => l.event === "delivery" && l.queueId === id && pred(l)),
    20_000,
  );

async function arrived(tag: string) {
  return (await postfix.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag);
}

/** Postfix's 250 comes before its local delivery writes the maildir file: wait for it. */
const arrives = (tag: string) => waitFor(`${tag} in Postfix's maildir`, () => arrived(tag), 20_000);

describe("DANE against a DNSSEC-signed zone (nsd + unbound)", () => {
  // first, while Postfix's log holds no other session: proves no MAIL FROM was sent
  it("TLSA 3 1 1 of another key: deferred after the handshake, before MAIL FROM; nothing delivered", async () => {
    const id = await submit("bob@bad.signed.test", "dane-bad");
    const l = await delivery(id, (x) => x.code === "DANE_TLSA_MISMATCH");
    assert.equal(l.result, "deferred");
    assert.equal(l.nextHop, "mx-bad.signed.test");
    assert.match(String(l.reason), /no TLSA record matches the peer's certificate chain/);
    assert.deepEqual(l.tlsPolicy, { type: "tlsa", strings: [`3 1 1 ${otherSpki}`] });
    await waitFor("a second attempt", () =>
      logs.lines.filter((x) => x.queueId === id && x.code === "DANE_TLSA_MISMATCH").length >= 2
        ? true
        : undefined,
    );
    await postfix.waitForLog(/TLS connection established from/);
    const disconnect = await postfix.waitForLog(/disconnect from .*starttls=1/);
    assert.doesNotMatch(disconnect, /mail=/);
    assert.doesNotMatch(postfix.log(), /\bmail=|from=</);
    assert.equal(await arrived("dane-bad"), undefined);
    assert.equal((await postfix.messages()).length, 0);
    assert.ok(f.relay!.status().queue.depth >= 1);
  });

  it("TLSA 3 1 1 of Postfix's key (DANE-EE): delivered over TLS", async () => {
    const id = await submit("carol@good.signed.test", "dane-good");
    const l = await delivery(id, (x) => x.result === "delivered");
    assert.equal(l.nextHop, "mx-good.signed.test");
    assert.ok((l.session as { tlsVersion?: string }).tlsVersion);
    assert.deepEqual(l.tlsPolicy, { type: "tlsa", strings: [`3 1 1 ${leafSpki}`] });
    await arrives("dane-good");
  });

  it("issue 20 item 5: REQUIRETLS over a dane-authenticated hop: delivered with REQUIRETLS on MAIL FROM", async () => {
    const s = await rawSession(f.ports.smtp);
    let id: string;
    try {
      await s.cmd("EHLO client.test");
      assert.match(await s.starttls(), /^220/);
      assert.match(await s.cmd("EHLO client.test"), /250[ -]REQUIRETLS/);
      assert.match(await s.cmd("MAIL FROM:<alice@local.test> REQUIRETLS"), /^250/);
      assert.match(await s.cmd("RCPT TO:<rita@rt.signed.test>"), /^250/);
      assert.match(await s.cmd("DATA"), /^354/);
      const reply = await s.data("From: alice@local.test\nSubject: rt\nX-Test-Id: dane-rt\n\nconfidential\n");
      id = /queued as ([0-9A-F]+)/.exec(reply)![1]!;
    } finally {
      s.close();
    }
    const l = await delivery(id, (x) => x.result === "delivered");
    assert.equal(l.level, "dane");
    assert.deepEqual(l.tlsPolicy, { type: "tlsa", strings: [`3 1 1 ${leafSpki}`] });
    const m = await waitFor("at the REQUIRETLS sink", () =>
      rtSink.messages.find((x) => x.data.toString().includes("X-Test-Id: dane-rt")),
    );
    assert.equal(m.requireTls, true);
    assert.equal(m.secure, true);
    // its encryption receipt names the TLSA record that authenticated the hop
    let receipt: Receipt | undefined;
    await waitFor("the receipt", async () => {
      for await (const line of f.relay!.receipts!.export({})) {
        const e = JSON.parse(line) as { kind: string; receipt?: Receipt };
        if (e.kind === "receipt" && e.receipt?.queueId === id) receipt = e.receipt;
      }
      return receipt;
    });
    assert.equal(receipt?.tls.authenticated, "dane");
    assert.equal(receipt?.tls.daneRecord, `3 1 1 ${leafSpki}`);
    assert.equal(receipt?.requireTls, true);
  });

  it("TLSA 2 0 1 of the CA (DANE-TA), name checked against the MX host: delivered", async () => {
    const id = await submit("dave@ta.signed.test", "dane-ta");
    const l = await delivery(id, (x) => x.result === "delivered");
    assert.match((l.tlsPolicy as { strings: string[] }).strings[0]!, /^2 0 1 /);
    await arrives("dane-ta");
  });

  it("secure TLSA RRset with only a PKIX-EE record: no usable record, TLS still required: delivered", async () => {
    const id = await submit("erin@unusable.signed.test", "dane-unusable");
    const l = await delivery(id, (x) => x.result === "delivered");
    assert.ok((l.session as { tlsVersion?: string }).tlsVersion);
    await arrives("dane-unusable");
  });

  it("secure MX, MX host in an unsigned zone: DANE does not apply to it (RFC 7672 2.2): delivered", async () => {
    const id = await submit("frank@plainmx.signed.test", "dane-plainmx");
    const l = await delivery(id, (x) => x.result === "delivered");
    assert.equal(l.nextHop, "mx.plain.test");
    assert.equal((l.tlsPolicy as { type: string }).type, "no-policy-found");
    await arrives("dane-plainmx");
  });

  it("unsigned recipient domain (insecure MX): deferred, dane-required, no connection", async () => {
    const id = await submit("gina@plain.test", "dane-plain");
    const l = await delivery(id, (x) => x.code === "DANE_REQUIRED");
    assert.equal(l.result, "deferred");
    assert.equal(l.nextHop, undefined);
    await new Promise((r) => setTimeout(r, 600)); // a few retries
    assert.equal(await arrived("dane-plain"), undefined);
  });

  it("signed zone that does not validate (wrong trust anchor): SERVFAIL, deferred, dnssec-invalid", async () => {
    const id = await submit("hank@bogus.test", "dane-bogus");
    const l = await delivery(id, (x) => x.code === "DANE_DNSSEC_INVALID");
    assert.equal(l.result, "deferred");
    assert.equal(await arrived("dane-bogus"), undefined);
  });
});
