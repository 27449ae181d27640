// Mode verify (and mta-sts, which checks the MX's name the same way) promises a peer whose certificate
// names the expected host. RFC 6125 (6.4.4) and RFC 8461 (4.2: "the certificate presented by the
// receiving MX MUST ... have a subject alternative name with a DNS-ID") name a server in the
// subjectAltName; Node's checkServerIdentity, which the relay used, falls back to the subject's CN
// when the certificate has no subjectAltName. So a hostile MX with a certificate whose only name is a
// CN (a private CA's, or a mis-issuing CA's: the public ones stopped issuing them) was taken as the
// partner: mail sent, and a policy's SMTP AUTH credential with it. From the MX's side: which
// certificate the relay accepts as mx.partner.test.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { X509Certificate } from "node:crypto";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { serverNameChecker as identityChecker } from "../../relay/outbound/server-names.js";
import { makeLeaf } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

let f: RelayFixture;
let cnOnly: Sink; // a certificate from the partner's CA whose only name is CN=mx.partner.test
let proper: Sink; // the same name as a subjectAltName
let local: Sink;
let logs: Awaited<ReturnType<RelayFixture["start"]>>["logs"];
let relay: Awaited<ReturnType<RelayFixture["start"]>>["relay"];
let cnOnlyPem: Buffer;

const verify = (sink: Sink, domain: string): PolicyInput => ({
  name: `p/${domain}`,
  domains: [domain],
  outbound: {
    tls: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.partner.test"] },
    nextHop: { host: sink.host, port: sink.port },
  },
});

async function submit(to: string, tag: string): Promise<string> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port: f.ports.smtp, ignoreTLS: true, name: "c.test" });
  await new Promise<void>((res, rej) => {
    conn.once("error", rej);
    conn.connect(() => res());
  });
  const body = `From: <alice@local.test>\r\nTo: <${to}>\r\nSubject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nhi\r\n`;
  const info = await new Promise<SMTPConnection.SentMessageInfo>((res, rej) =>
    conn.send({ from: "alice@local.test", to: [to] }, body, (e, i) => (e ? rej(e) : res(i))),
  );
  conn.quit();
  const m = /queued as ([0-9A-F]+)/.exec(info.response);
  assert.ok(m, info.response);
  return m[1]!;
}

const arrived = (sink: Sink, tag: string) =>
  sink.messages.find((m) => m.data.toString().includes(`X-Test-Id: ${tag}`));
const deliveryLog = (id: string, pred: (l: Record<string, unknown>) => boolean) =>
  logs.find((l) => l.event === "delivery" && l.queueId === id && pred(l));

before(async () => {
  f = await relayFixture("attack-cn-only", { caName: "Partner CA" });
  const bare = await makeLeaf(f.ca, { cn: "mx.partner.test", name: "cn-only" });
  const named = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  cnOnlyPem = await readFile(bare.certFile);
  cnOnly = await startSink({ tls: { cert: cnOnlyPem, key: await readFile(bare.keyFile) } });
  proper = await startSink({
    tls: { cert: await readFile(named.certFile), key: await readFile(named.keyFile) },
  });
  local = await startSink();
  await f.configure(
    {
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: local.port },
      },
      policies: [verify(cnOnly, "cn.test"), verify(proper, "san.test")],
    },
    { files: { "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ relay, logs } = await f.start());
  await relay.checkConfig();
});

after(async () => {
  await f?.stop(() => Promise.all([cnOnly, proper, local].map((s) => s?.close())));
});

describe("a certificate whose only name is its CN", () => {
  it("is not the partner's MX under mode verify: deferred, nothing sent", async () => {
    const id = await submit("bob@cn.test", "cn-only");
    const l = await waitFor("deferral", () => deliveryLog(id, (x) => x.result !== undefined), 15_000);
    assert.equal(l.result, "deferred", `the relay delivered to a CN-only certificate: ${JSON.stringify(l)}`);
    assert.equal(l.code, "TLS_VERIFY_FAILED");
    assert.equal(arrived(cnOnly, "cn-only"), undefined);
  });

  it("the same name as a subjectAltName is delivered (the control)", async () => {
    const id = await submit("bob@san.test", "san");
    await waitFor("delivery", () => deliveryLog(id, (x) => x.result === "delivered"), 15_000);
    assert.ok(arrived(proper, "san"));
  });

  it("the relay's name check (verify, mta-sts's MX check) refuses it for every expected name", () => {
    const cert = new X509Certificate(cnOnlyPem).toLegacyObject();
    assert.ok(identityChecker(["mx.partner.test"])("mx.partner.test", cert));
    assert.ok(identityChecker([".partner.test"])("mx.partner.test", cert));
  });
});
