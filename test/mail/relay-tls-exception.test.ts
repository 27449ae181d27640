// Time-limited policy exceptions (issue 19 item 5) against a real Postfix whose certificate does not
// verify (it comes from a CA the policy does not trust): under mode verify the mail is deferred; with
// an active exception to `required` for that domain it is delivered, and the delivery log line, the
// encryption receipt and the metric name the exception; an exception naming another host relaxes
// nothing; once the relay's clock passes the exception's until, the same policy defers again with no
// config reload (the relay judges the window itself: a dead operator cannot extend an exception).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { DELIVERY_EVENT } from "../../relay/delivery-log.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import type { Receipt } from "../../relay/contract/receipt.js";
import { readReceipts } from "../support/receipts.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

let f: RelayFixture;
let relay: Relay;
let logs: LogCapture;
let peer: PostfixPeer;
/** The relay's exception clock runs this far ahead of the real one. */
let offset = 0;
const HOUR = 3_600_000;

function policy(domain: string, exceptions?: PolicyInput["outbound"]["tls"]["exceptions"]): PolicyInput {
  return {
    name: `partners/${domain.split(".")[0]!}`,
    domains: [domain],
    outbound: {
      tls: {
        mode: "verify",
        caFile: "secrets/partner-ca/ca.crt",
        matchNames: ["mx.partner.test"],
        ...(exceptions ? { exceptions } : {}),
      },
      nextHop: { host: peer.host, port: peer.port },
    },
  };
}

async function submit(rcpt: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag },
    subject: tag,
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const deliveredTo = async (tag: string) =>
  (await peer.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag);

const attempt = (queueId: string, result: string) => () =>
  logs.find((l) => l.event === "delivery" && l.queueId === queueId && l.result === result);

/** The delivery log line (relay/delivery-log.ts) of a recipient's result. */
const line = (queueId: string, status: string) => () =>
  logs.find((l) => l.event === DELIVERY_EVENT && l.queueId === queueId && l.status === status);

const receipts = (): Promise<Receipt[]> => readReceipts(join(f.work, "queue"));

before(async () => {
  f = await relayFixture("relay-tls-exception", { caName: "Partner CA" });
  // the partner's server presents a certificate from a CA the policy does not trust
  const other = await makeCa(join(f.work, "other-ca"), "Someone Else's CA");
  const cert = await makeLeaf(other, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  peer = await startPostfix({
    domains: ["strict.test", "partner.test", "hosted.test"],
    tls: "require",
    cert,
    hostname: "mx.partner.test",
  });
  const now = Date.now();
  const window = { from: new Date(now - HOUR).toISOString(), until: new Date(now + HOUR).toISOString() };
  await f.configure(
    {
      policies: [
        policy("strict.test"),
        policy("partner.test", [
          { name: "cert-expired", domain: "partner.test", mode: "required", ...window },
          // another policy's domain, named here: relaxes nothing for it
          { name: "stray", domain: "strict.test", mode: "opportunistic", ...window },
        ]),
        policy("hosted.test", [
          { name: "other-host", domain: "hosted.test", host: "mx9.hosted.test", mode: "required", ...window },
        ]),
      ],
    },
    { files: { "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ relay, logs } = await f.start({ exceptionClock: () => new Date(Date.now() + offset) }));
});

after(async () => {
  await f?.stop(() => peer?.stop());
});

describe("policy exceptions against a real Postfix (issue 19 item 5)", () => {
  /** The message is deferred under verify, as if no exception existed, and never reaches the server. */
  async function deferredUnrelaxed(rcpt: string, tag: string): Promise<void> {
    const id = await submit(rcpt, tag);
    const l = await waitFor("deferral", attempt(id, "deferred"), 20_000);
    assert.equal(l.code, "TLS_VERIFY_FAILED");
    assert.equal(l.exception, undefined);
    assert.equal(l.level, "verify");
    assert.equal(await deliveredTo(tag), undefined);
  }

  it("mode verify defers a partner whose certificate does not verify; an exception for another policy's domain changes nothing", async () => {
    await deferredUnrelaxed("bob@strict.test", "exc-strict");
  });

  it("attacker: an exception naming another host does not relax the hop the mail goes to", async () => {
    await deferredUnrelaxed("bob@hosted.test", "exc-hosted");
  });

  it("with an active exception to required it delivers; the log line, the receipt and the metric name the exception", async () => {
    const id = await submit("bob@partner.test", "exc-granted");
    await waitFor("delivered under the exception", () => deliveredTo("exc-granted"), 20_000);
    const a = await waitFor("attempt", attempt(id, "delivered"));
    assert.equal(a.exception, "cert-expired");
    assert.equal(a.level, "encrypt");
    assert.match(String(a.why), /exception cert-expired \(mode required\) until /);
    assert.ok((a.session as { tlsVersion?: string }).tlsVersion, "still over TLS");
    const delivered = await waitFor("delivery line", line(id, "sent"));
    assert.equal((delivered.tls as { exception?: string }).exception, "cert-expired");
    const r = await waitFor("receipt", async () => (await receipts()).find((e) => e.queueId === id));
    assert.equal(r.policy.exception, "cert-expired");
    assert.equal(r.tls.authenticated, "none");
    const metrics = await relay.metrics.registry.metrics();
    assert.match(
      metrics,
      /sealpost_relay_tls_exception_attempts_total\{policy="partners\/partner",exception="cert-expired",result="delivered"\} 1/,
    );
  });

  it("after until (the relay's clock), the same config defers again, without a reload", async () => {
    const hash = relay.status().configHash;
    offset = 2 * HOUR;
    await deferredUnrelaxed("carol@partner.test", "exc-expired");
    assert.equal(relay.status().configHash, hash, "no config reload happened");
  });
});
