// Attack (review, session 6): under DANE-TA, a chain through a certificate that is not a CA. Anyone
// holding any end-entity certificate the partner's trust anchor issued (a user's client
// certificate, another server's) signs a leaf for the partner's MX name with its key; matchChain
// used to check only that each link was signed and within its dates, so a mode `dane` delivery
// (and its AUTH password) went to that man in the middle, although `openssl verify` refuses the
// chain. From the attacker's side: the chain matched directly, then a real Deliverer against a
// STARTTLS sink presenting the forged chain, behind a scripted validating resolver that publishes
// `2 0 1 <trust anchor>`. Controls: a real intermediate CA is accepted; a pathlen:0 CA above an
// intermediate is not. The shadow mode's hand-made chain check (tls-audit.ts) is held to the same.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import type * as packet from "dns-packet";
import { associationData, matchChain, type Tlsa } from "../../relay/outbound/dane.js";
import type { SecureAnswer, SecureDns } from "../../relay/outbound/dnssec.js";
import { Deliverer } from "../../relay/outbound/deliver.js";
import { ConnectionPool } from "../../relay/outbound/pool.js";
import { bufferBody } from "../../relay/queue/message-body.js";
import type { AttemptRecord } from "../../relay/outbound/attempt-record.js";
import { chainVerifies } from "../../relay/outbound/tls-audit.js";
import { makeCa, type Ca } from "../support/certs.js";
import { startSink, type Sink } from "../support/sink.js";

const sh = promisify(execFile);
let dir: string;
let ca: Ca;
const der: Record<string, Buffer> = {};
const pem: Record<string, string> = {};
let forgedKey: Buffer;
let sink: Sink;
let authSink: Sink;

const openssl = (args: string[]) => sh("openssl", args);

/** A certificate `name` for `subject`, with its own EC key, signed by `issuer` (name) with `ext`. */
async function issue(name: string, subject: string, issuer: { cert: string; key: string }, ext: string) {
  const key = join(dir, `${name}.key`);
  await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
  await openssl(["req", "-new", "-key", key, "-out", join(dir, `${name}.csr`), "-subj", `/CN=${subject}`]);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl([
    "x509", "-req", "-in", join(dir, `${name}.csr`), "-CA", issuer.cert, "-CAkey", issuer.key,
    "-CAcreateserial", "-out", join(dir, `${name}.crt`), "-extfile", join(dir, `${name}.ext`), "-days", "30",
  ]); // prettier-ignore
  pem[name] = await readFile(join(dir, `${name}.crt`), "utf8");
  der[name] = Buffer.from(new X509Certificate(pem[name]).raw);
  return { cert: join(dir, `${name}.crt`), key };
}

const LEAF_EXT =
  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:mx.partner.test\n";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "relay-dane-ta-issuer-"));
  // the partner's CA: the DANE-TA trust anchor it publishes
  ca = await makeCa(join(dir, "ca"), "Partner CA");
  pem.ca = await readFile(ca.certFile, "utf8");
  der.ca = Buffer.from(new X509Certificate(pem.ca).raw);
  const root = { cert: ca.certFile, key: ca.keyFile };
  // an ordinary end-entity certificate the CA issued to someone else: CA:FALSE, no keyUsage
  const ee = await issue(
    "ee",
    "some-user",
    root,
    "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n",
  );
  // the attacker, holding the EE's key, signs a leaf for the partner's MX
  await issue("forged", "mx.partner.test", ee, LEAF_EXT);
  forgedKey = await readFile(join(dir, "forged.key"));
  // controls: a real intermediate CA with a leaf under it; a pathlen:0 CA with an intermediate below it
  const inter = await issue(
    "inter",
    "Partner Issuing CA",
    root,
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
  );
  await issue("good", "mx.partner.test", inter, LEAF_EXT);
  const tight = await issue(
    "tight",
    "Partner Tight CA",
    root,
    "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n",
  );
  const sub = await issue(
    "sub",
    "Below Tight CA",
    tight,
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
  );
  await issue("deep", "mx.partner.test", sub, LEAF_EXT);
  // openssl itself refuses the forged chain (the EE is not a CA)
  const v = await openssl([
    "verify",
    "-CAfile",
    ca.certFile,
    "-untrusted",
    ee.cert,
    join(dir, "forged.crt"),
  ]).then(
    () => "ok",
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ""}${e.stderr ?? ""}`,
  );
  assert.notEqual(v, "ok", "openssl verify refuses a chain through an end-entity certificate");
  // the man in the middle: STARTTLS with the forged leaf, the EE and the CA; a second one offering AUTH
  const tls = { cert: pem.forged! + pem.ee! + pem.ca, key: forgedKey };
  sink = await startSink({ tls });
  authSink = await startSink({ tls, auth: { user: "relay-edge", pass: "s3cret-pass" } });
});

after(async () => {
  await sink?.close();
  await authSink?.close();
  await rm(dir, { recursive: true, force: true });
});

const ta = (): Tlsa => ({ usage: 2, selector: 0, matchingType: 1, data: associationData(der.ca!, 0, 1) });
const taKey = (): Tlsa => ({ usage: 2, selector: 1, matchingType: 0, data: associationData(der.ca!, 1, 0) });
const NAMES = ["mx.partner.test", "partner.test"];

describe("attack: DANE-TA through a certificate that is not a CA", () => {
  it("matchChain refuses [forged leaf, EE (CA:FALSE), CA] under 2 0 1 <CA>", () => {
    const m = matchChain([der.forged!, der.ee!, der.ca!], [ta()], NAMES, new Date());
    assert.equal(m.ok, false, JSON.stringify(m));
  });

  it("matchChain refuses [forged leaf, EE (CA:FALSE)] under 2 1 0 <CA key>", () => {
    const m = matchChain([der.forged!, der.ee!], [taKey()], NAMES, new Date());
    assert.equal(m.ok, false, JSON.stringify(m));
  });

  it("controls: a real intermediate CA is accepted; a pathlen:0 CA above an intermediate is not", () => {
    const good = matchChain([der.good!, der.inter!, der.ca!], [ta()], NAMES, new Date());
    assert.equal(good.ok, true, JSON.stringify(good));
    assert.equal(matchChain([der.good!, der.inter!], [taKey()], NAMES, new Date()).ok, true);
    const deep = matchChain([der.deep!, der.sub!, der.tight!, der.ca!], [ta()], NAMES, new Date());
    assert.equal(deep.ok, false, JSON.stringify(deep));
  });

  it("the shadow mode's chain check (tls-audit.ts) keeps the same rules: CAs only, within their path length", () => {
    const root = [new X509Certificate(der.ca!)];
    const now = new Date();
    assert.equal(chainVerifies([der.good!, der.inter!], root, now), true);
    assert.equal(chainVerifies([der.forged!, der.ee!], root, now), false);
    // openssl verify: path length constraint exceeded
    assert.equal(chainVerifies([der.deep!, der.sub!, der.tight!], root, now), false);
  });

  for (const withAuth of [false, true])
    it(`end to end${withAuth ? ", with an AUTH credential" : ""}: a mode dane delivery never reaches the man in the middle`, async () => {
      const mitm = withAuth ? authSink : sink;
      const before = mitm.messages.length;
      const ans = (answers: packet.Answer[], name: string): SecureAnswer => ({
        rcode: "NOERROR",
        secure: true,
        answers,
        finalName: name,
      });
      const tlsaName = `_${mitm.port}._tcp.mx.partner.test`;
      const table: Record<string, SecureAnswer> = {
        "partner.test MX": ans(
          [{ type: "MX", name: "partner.test", data: { preference: 10, exchange: "mx.partner.test" } }],
          "partner.test",
        ),
        "mx.partner.test A": ans(
          [{ type: "A", name: "mx.partner.test", data: mitm.host }],
          "mx.partner.test",
        ),
        [`${tlsaName} TLSA`]: ans(
          [
            {
              type: "TLSA",
              name: tlsaName,
              data: { usage: 2, selector: 0, matchingType: 1, certificate: ta().data },
            },
          ],
          tlsaName,
        ),
      };
      const secureDns: SecureDns = {
        query: (name, type) => Promise.resolve(table[`${name} ${type}`] ?? ans([], name)),
      };
      const attempts: AttemptRecord[] = [];
      const d = new Deliverer({
        pool: new ConnectionPool(100, 1),
        dns: () => undefined,
        secureDns: () => secureDns,
        material: () => (withAuth ? { auth: { user: "relay-edge", pass: "s3cret-pass" } } : {}),
        ehloName: () => "relay.test",
        timeouts: { connectionMs: 5000, greetingMs: 5000, socketMs: 5000 },
        mxPort: mitm.port,
        onAttempt: (r) => attempts.push(r),
      });
      const results = await d.deliver({
        queueId: "Q1",
        from: "alice@local.test",
        recipients: ["bob@partner.test"],
        message: bufferBody(Buffer.from("Subject: secret\r\n\r\nconfidential\r\n")),
        route: {
          policy: "ns/partner",
          outbound: {
            tls: { mode: "dane", minVersion: "TLSv1.2" },
            ...(withAuth ? { authCredential: "partner-login" } : {}),
          },
          domain: "partner.test",
        },
      });
      assert.equal(mitm.messages.length - before, 0, "the man in the middle got the message");
      assert.equal(results[0]?.outcome, "deferred");
      assert.equal(results[0]?.code, "DANE_TLSA_MISMATCH");
      assert.equal(attempts.at(-1)?.result, "deferred");
    });
});
