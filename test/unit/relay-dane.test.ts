// DANE (RFC 7672) pure logic: usable records, association data (checked against digests the
// openssl CLI computes), chain matching for DANE-EE and DANE-TA, the per-host decisions of
// resolveDane over a scripted resolver, reading AD/CNAMEs from a response, TLS-RPT result types.
import assert from "node:assert/strict";
import dns from "node:dns";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import * as packet from "dns-packet";
import {
  associationData,
  matchChain,
  resolveDane,
  usableTlsa,
  type Tlsa,
} from "../../relay/outbound/dane.js";
import { readAnswer, type SecureAnswer, type SecureDns } from "../../relay/outbound/dnssec.js";
import { parseDnsServer } from "../../relay/contract/dns-server.js";
import { resultTypeOf } from "../../relay/outbound/tlsrpt.js";
import { resolveTlsPolicy } from "../../relay/outbound/tls-policy.js";
import { makeCa, makeLeaf } from "../support/certs.js";

const sh = promisify(execFile);
let dir: string;
let leafDer: Buffer;
let caDer: Buffer;
let expiredDer: Buffer;
let otherCaDer: Buffer;
let leafSpkiSha256: string;
let leafCertSha256: string;

async function der(pemFile: string): Promise<Buffer> {
  return Buffer.from(new X509Certificate(await readFile(pemFile)).raw);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "relay-dane-unit-"));
  const ca = await makeCa(join(dir, "ca"));
  const leaf = await makeLeaf(ca, { cn: "mx.example.test", dnsNames: ["mx.example.test"] });
  const expired = await makeLeaf(ca, {
    cn: "old.example.test",
    dnsNames: ["old.example.test"],
    expired: true,
  });
  const other = await makeCa(join(dir, "other"), "Other CA");
  leafDer = await der(leaf.certFile);
  caDer = await der(ca.certFile);
  expiredDer = await der(expired.certFile);
  otherCaDer = await der(other.certFile);
  // the digests the way an operator publishing TLSA records computes them
  const spki = await sh("sh", [
    "-c",
    `openssl x509 -in ${leaf.certFile} -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r`,
  ]);
  leafSpkiSha256 = spki.stdout.split(" ")[0]!;
  const full = await sh("sh", [
    "-c",
    `openssl x509 -in ${leaf.certFile} -outform DER | openssl dgst -sha256 -r`,
  ]);
  leafCertSha256 = full.stdout.split(" ")[0]!;
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rr = (usage: number, selector: number, matchingType: number, data: Buffer | string): Tlsa => ({
  usage,
  selector,
  matchingType,
  data: typeof data === "string" ? Buffer.from(data, "hex") : data,
});
// taken at each check, after before() made the certificates: they are valid from the second they
// were signed, which a date taken when this module loaded can precede
const now = () => new Date();

describe("DANE records and certificate matching", () => {
  it("association data matches openssl's digests (selector 0/1, matching type 0/1/2)", () => {
    assert.equal(associationData(leafDer, 1, 1).toString("hex"), leafSpkiSha256);
    assert.equal(associationData(leafDer, 0, 1).toString("hex"), leafCertSha256);
    assert.deepEqual(associationData(leafDer, 0, 0), leafDer);
    assert.equal(associationData(leafDer, 1, 2).length, 64);
  });

  it("usable records: DANE-TA(2)/DANE-EE(3) only, known selectors, digests of the right length", () => {
    const d32 = "ab".repeat(32);
    const records = [
      rr(3, 1, 1, d32),
      rr(2, 0, 2, "cd".repeat(64)),
      rr(0, 0, 1, d32), // PKIX-TA: unusable for SMTP (section 3.1.3)
      rr(1, 1, 1, d32), // PKIX-EE: unusable
      rr(3, 2, 1, d32), // unknown selector
      rr(3, 1, 3, d32), // unknown matching type
      rr(3, 1, 1, "ab".repeat(20)), // wrong digest length
      rr(3, 0, 0, ""),
    ];
    assert.deepEqual(usableTlsa(records), records.slice(0, 2));
  });

  it("DANE-EE: the leaf matches; no name and no date checks (section 3.1.1)", () => {
    for (const r of [rr(3, 1, 1, leafSpkiSha256), rr(3, 0, 1, leafCertSha256), rr(3, 0, 0, leafDer)]) {
      const m = matchChain([leafDer, caDer], [r], ["unrelated.example"], now());
      assert.equal(m.ok && m.usage, 3);
    }
    const sha512 = rr(3, 1, 2, associationData(leafDer, 1, 2));
    assert.equal(matchChain([leafDer], [sha512], [], now()).ok, true);
    const expired = rr(3, 1, 1, associationData(expiredDer, 1, 1));
    assert.equal(matchChain([expiredDer], [expired], [], now()).ok, true);
  });

  it("mismatches and unusable records fail", () => {
    const wrong = matchChain([leafDer], [rr(3, 1, 1, "00".repeat(32))], [], now());
    assert.equal(wrong.ok, false);
    assert.match(!wrong.ok ? wrong.reason : "", /no TLSA record matches/);
    const pkix = matchChain([leafDer], [rr(1, 1, 1, leafSpkiSha256)], ["mx.example.test"], now());
    assert.equal(!pkix.ok && pkix.reason, "no usable TLSA records");
    assert.equal(matchChain([], [rr(3, 1, 1, leafSpkiSha256)], [], now()).ok, false);
    // a leaf digest published as a trust anchor does not authenticate the leaf
    assert.equal(
      matchChain([leafDer, caDer], [rr(2, 1, 1, leafSpkiSha256)], ["mx.example.test"], now()).ok,
      false,
    );
  });

  it("DANE-TA: the CA in the chain, the leaf signed by it, the name checked (section 3.2.2)", () => {
    const ta = rr(2, 0, 1, associationData(caDer, 0, 1));
    const m = matchChain([leafDer, caDer], [ta], ["mx.example.test", "example.test"], now());
    assert.equal(m.ok && m.usage, 2);
    assert.equal(m.ok && m.depth, 1);
    const named = matchChain([leafDer, caDer], [ta], ["mail.elsewhere.test"], now());
    assert.match(!named.ok ? named.reason : "", /does not match mail\.elsewhere\.test/);
    // the TA certificate not sent: a certificate digest cannot be checked
    assert.equal(matchChain([leafDer], [ta], ["mx.example.test"], now()).ok, false);
    // 2 1 0: the full public key authenticates without the certificate
    const key = rr(2, 1, 0, associationData(caDer, 1, 0));
    assert.equal(matchChain([leafDer], [key], ["mx.example.test"], now()).ok, true);
    // another CA's certificate in the chain: not the leaf's issuer
    const otherTa = rr(2, 0, 1, associationData(otherCaDer, 0, 1));
    assert.equal(matchChain([leafDer, otherCaDer], [otherTa], ["mx.example.test"], now()).ok, false);
    // an expired leaf under DANE-TA fails (dates apply below the trust anchor)
    assert.equal(matchChain([expiredDer, caDer], [ta], ["old.example.test"], now()).ok, false);
  });
});

function answer(rcode: string, secure: boolean, answers: packet.Answer[] = [], finalName = ""): SecureAnswer {
  return { rcode, secure, answers, finalName };
}

/** A resolver answering from a table "<name> <type>" -> answer; anything else: secure NXDOMAIN. */
function scripted(table: Record<string, SecureAnswer>): SecureDns & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    query(name, type) {
      asked.push(`${name} ${type}`);
      const a = table[`${name} ${type}`] ?? answer("NXDOMAIN", true);
      return Promise.resolve({ ...a, finalName: a.finalName || name });
    },
  };
}

const mx = (name: string, exchange: string): packet.Answer => ({
  type: "MX",
  name,
  data: { preference: 10, exchange },
});
const a = (name: string): packet.Answer => ({ type: "A", name, data: "127.0.0.1" });
const tlsaAnswer = (name: string, t: Tlsa): packet.Answer => ({
  type: "TLSA",
  name,
  data: { usage: t.usage, selector: t.selector, matchingType: t.matchingType, certificate: t.data },
});

describe("resolveDane decisions", () => {
  const good = rr(3, 1, 1, "ab".repeat(32));

  // the decision on an insecure answer is the policy engine's (tls-policy.ts): DANE_REQUIRED
  const decide = (secure: boolean, nextHop?: string) =>
    resolveTlsPolicy({
      mode: "dane",
      domain: "d.test",
      policyOwned: true,
      dnssec: secure ? "secure" : "insecure",
      ...(nextHop ? { nextHop } : {}),
    });

  it("insecure MX RRset: fails closed with DANE_REQUIRED; SERVFAIL: DANE_DNSSEC_INVALID", async () => {
    const insecure = await resolveDane(
      "d.test",
      undefined,
      scripted({ "d.test MX": answer("NOERROR", false, [mx("d.test", "mx.d.test")]) }),
      25,
    );
    assert.ok(insecure.ok);
    assert.deepEqual(insecure.value, { secure: false, hops: [] });
    const refused = decide(insecure.value.secure);
    assert.equal(!refused.ok && refused.failure.code, "DANE_REQUIRED");
    assert.equal(!refused.ok && refused.failure.temporary, true);
    const bogus = await resolveDane(
      "d.test",
      undefined,
      scripted({ "d.test MX": answer("SERVFAIL", false) }),
      25,
    );
    assert.equal(!bogus.ok && bogus.code, "DANE_DNSSEC_INVALID");
  });

  it("per host: usable -> dane, unusable -> encrypt, insecure or none -> none, SERVFAIL -> skip", async () => {
    const dns = scripted({
      "d.test MX": answer(
        "NOERROR",
        true,
        ["mx1", "mx2", "mx3", "mx4", "mx5"].map((h) => mx("d.test", `${h}.d.test`)),
      ),
      ...Object.fromEntries(
        ["mx1", "mx2", "mx3", "mx4", "mx5"].map((h) => [
          `${h}.d.test A`,
          answer("NOERROR", h !== "mx5", [a(`${h}.d.test`)]),
        ]),
      ),
      "_25._tcp.mx1.d.test TLSA": answer("NOERROR", true, [tlsaAnswer("_25._tcp.mx1.d.test", good)]),
      "_25._tcp.mx2.d.test TLSA": answer("NOERROR", true, [
        tlsaAnswer("_25._tcp.mx2.d.test", rr(1, 1, 1, "ab".repeat(32))),
      ]),
      "_25._tcp.mx3.d.test TLSA": answer("NOERROR", false, [tlsaAnswer("_25._tcp.mx3.d.test", good)]),
      "_25._tcp.mx4.d.test TLSA": answer("SERVFAIL", false),
    });
    const r = await resolveDane("d.test", undefined, dns, 25);
    assert.ok(r.ok);
    assert.equal(r.value.secure, true);
    const kinds = r.value.hops.map((h) => [h.hop.name, h.dane.kind]);
    assert.deepEqual(kinds, [
      ["mx1.d.test", "dane"],
      ["mx2.d.test", "encrypt"],
      ["mx3.d.test", "none"],
      ["mx4.d.test", "skip"],
      ["mx5.d.test", "none"], // insecure address RRset: its TLSA is not even asked
    ]);
    const d1 = r.value.hops[0]!.dane;
    assert.deepEqual(d1.kind === "dane" && d1.names, ["mx1.d.test", "d.test"]);
    const d4 = r.value.hops[3]!.dane;
    assert.equal(d4.kind === "skip" && d4.failure.code, "DANE_DNSSEC_INVALID");
    assert.ok(!dns.asked.includes("_25._tcp.mx5.d.test TLSA"));
  });

  it("a CNAME'd MX host: an insecure TLSA RRset at the target passes on to the original name; a failure stops", async () => {
    // mx.d.test is a secure CNAME to a host in an unsigned hosting zone; the domain's own zone
    // publishes TLSA at the original name (RFC 7672 section 2.2.3, as Postfix)
    const table = (target: SecureAnswer) =>
      scripted({
        "d.test MX": answer("NOERROR", true, [mx("d.test", "mx.d.test")]),
        "mx.d.test A": answer("NOERROR", true, [a("host.hoster.test")], "host.hoster.test"),
        "_25._tcp.host.hoster.test TLSA": target,
        "_25._tcp.mx.d.test TLSA": answer("NOERROR", true, [tlsaAnswer("_25._tcp.mx.d.test", good)]),
      });
    const kind = async (target: SecureAnswer) => {
      const r = await resolveDane("d.test", undefined, table(target), 25);
      assert.ok(r.ok);
      const d = r.value.hops[0]!.dane;
      return d.kind === "dane" ? `dane at ${d.base}` : d.kind;
    };
    assert.equal(await kind(answer("NOERROR", false)), "dane at mx.d.test", "insecure target: the original");
    assert.equal(
      await kind(answer("NXDOMAIN", true)),
      "dane at mx.d.test",
      "none at the target: the original",
    );
    assert.equal(await kind(answer("SERVFAIL", false)), "skip", "a failure stops");
    const own = rr(3, 1, 1, "cd".repeat(32));
    assert.equal(
      await kind(answer("NOERROR", true, [tlsaAnswer("_25._tcp.host.hoster.test", own)])),
      "dane at host.hoster.test",
      "a secure RRset at the target decides",
    );
  });

  it("no MX: the domain itself; null MX: permanent; explicit next hop with insecure address: DANE_REQUIRED", async () => {
    const implicit = await resolveDane(
      "d.test",
      undefined,
      scripted({
        "d.test MX": answer("NOERROR", true),
        "d.test A": answer("NOERROR", true, [a("d.test")]),
      }),
      2525,
    );
    assert.ok(implicit.ok);
    assert.deepEqual(
      implicit.value.hops.map((h) => [h.hop.name, h.hop.port, h.dane.kind]),
      [["d.test", 2525, "none"]],
    );
    const nullMx = await resolveDane(
      "d.test",
      undefined,
      scripted({ "d.test MX": answer("NOERROR", true, [mx("d.test", ".")]) }),
    );
    assert.equal(!nullMx.ok && nullMx.code, "NULL_MX");
    const hop = await resolveDane(
      "d.test",
      { host: "relay.d.test", port: 587 },
      scripted({ "relay.d.test A": answer("NOERROR", false, [a("relay.d.test")]) }),
    );
    assert.ok(hop.ok && !hop.value.secure);
    const refused = decide(false, "relay.d.test");
    assert.equal(!refused.ok && refused.failure.code, "DANE_REQUIRED");
  });
});

describe("DNSSEC answers and TLS-RPT", () => {
  it("readAnswer: rcode, AD bit, records at the end of a CNAME chain", () => {
    const decoded = packet.decode(
      packet.encode({
        type: "response",
        id: 1,
        flags: packet.AUTHENTIC_DATA | packet.RECURSION_DESIRED,
        questions: [{ type: "A", name: "mx.d.test" }],
        answers: [
          { type: "CNAME", name: "mx.d.test", data: "host.d.test" },
          { type: "A", name: "host.d.test", data: "192.0.2.1" },
        ],
      }),
    );
    const r = readAnswer(decoded, "mx.d.test", "A");
    assert.equal(r.rcode, "NOERROR");
    assert.equal(r.secure, true);
    assert.equal(r.finalName, "host.d.test");
    assert.deepEqual(
      r.answers.map((x) => x.type === "A" && x.data),
      ["192.0.2.1"],
    );
    const servfail = readAnswer({ ...decoded, flags: 2, answers: [] }, "mx.d.test", "A");
    assert.deepEqual([servfail.rcode, servfail.secure], ["SERVFAIL", false]);
  });

  it("parseDnsServer takes the dns.servers forms, and nothing node:dns's setServers refuses", () => {
    assert.deepEqual(parseDnsServer("127.0.0.1"), { host: "127.0.0.1", port: 53 });
    assert.deepEqual(parseDnsServer("127.0.0.1:5353"), { host: "127.0.0.1", port: 5353 });
    assert.deepEqual(parseDnsServer("[::1]:53"), { host: "::1", port: 53 });
    assert.deepEqual(parseDnsServer("[::1]"), { host: "::1", port: 53 });
    assert.deepEqual(parseDnsServer("::1"), { host: "::1", port: 53 });
    for (const bad of [
      "resolver.local",
      "10.0.0.300",
      "10.0.0.1:99999",
      "10.0.0.1:0",
      "[::1]:0",
      ":::",
      "1:2",
      "[10.0.0.1]x",
    ])
      assert.equal(parseDnsServer(bad), undefined, bad);
    // what it takes, node:dns takes (the relay builds its resolver from the same list: mx.ts)
    for (const good of ["127.0.0.1", "127.0.0.1:5353", "[::1]:53", "[::1]", "::1", "10.0.0.1:65535"]) {
      assert.ok(parseDnsServer(good), good);
      assert.doesNotThrow(() => new dns.Resolver().setServers([good]), good);
    }
  });

  it("DANE failure codes map to RFC 8460 result types", () => {
    assert.equal(resultTypeOf("DANE_TLSA_MISMATCH"), "tlsa-invalid");
    assert.equal(resultTypeOf("DANE_DNSSEC_INVALID"), "dnssec-invalid");
    assert.equal(resultTypeOf("DANE_REQUIRED"), "dane-required");
  });
});
