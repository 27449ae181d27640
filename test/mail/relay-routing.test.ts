// Issue 14 findings 2 and 4 from the wire: a real relay, swaks and a raw SMTP client on the inbound
// side, a real Postfix that offers no STARTTLS as the partners' MX (found through a DNS server on
// loopback) and as a catch-all smarthost, and a sink as the internal mail server.
// - Finding 2: a `verify`-protected domain spelled as its U-label (bücher.test for
//   xn--bcher-kva.test), as its A-label, or as a lookalike the resolver maps onto the protected name
//   (full-width letters, the ideographic full stop) must be routed by that domain's policy: deferred
//   (the MX offers no STARTTLS), never delivered in clear. A domain without a canonical form is
//   refused at RCPT (553 5.1.3).
// - Finding 4: a catch-all with a nextHop must not capture a local domain: it goes to the internal
//   next hop.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { hostileConnect, type HostileClient } from "../support/hostile-client.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let postfix: PostfixPeer;
let dns: DnsServer;
let internal: Sink;
const open: HostileClient[] = [];

const base = (): Partial<RelayConfigInput> => ({
  inbound: {
    relayFrom: ["127.0.0.1"],
    localDomains: ["local.test"],
    internalNextHop: { host: "127.0.0.1", port: internal.port },
  },
  dns: { servers: [dns.address] },
});

before(async () => {
  f = await relayFixture("relay-routing");
  ports = f.ports;
  // the partners' MX, without STARTTLS; it accepts every spelling the old code could have sent
  postfix = await startPostfix({
    domains: ["xn--bcher-kva.test", "partner.test", "local.test"],
    tls: "none",
  });
  internal = await startSink();
  dns = await startDnsServer({
    "xn--bcher-kva.test": { MX: [{ preference: 10, exchange: "mx.partner.test" }] },
    "partner.test": { MX: [{ preference: 10, exchange: "mx.partner.test" }] },
    "mx.partner.test": { A: ["127.0.0.1"] },
  });
  await f.configure(
    {
      ...base(),
      policies: [
        {
          name: "mail/buecher",
          domains: ["xn--bcher-kva.test"],
          outbound: { tls: { mode: "verify", caFile: "ca.crt" } },
        },
        {
          name: "mail/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "verify", caFile: "ca.crt" } },
        },
      ],
      defaultOutbound: { tls: { mode: "opportunistic" } },
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  ({ relay, logs } = await f.start({ mxPort: postfix.port }));
});

after(async () => {
  for (const c of open) c.close();
  await f?.stop(() => Promise.all([postfix?.stop(), dns?.stop(), internal?.close()]));
});

/**
 * One message over a raw connection with MAIL FROM ... SMTPUTF8 (the recipient written as UTF-8
 * bytes); the queue id, or the RCPT reply when the relay refuses the recipient.
 */
async function sendUtf8(rcpt: string, tag: string): Promise<{ id?: string; rcptReply: string }> {
  const c = await hostileConnect(ports.smtp);
  open.push(c);
  assert.match(await c.cmd("EHLO client.test"), /SMTPUTF8/);
  c.write(Buffer.from("MAIL FROM:<alice@local.test> SMTPUTF8\r\n", "utf8"));
  assert.match((await c.replies(1))[0]!, /^250/);
  c.write(Buffer.from(`RCPT TO:<${rcpt}>\r\n`, "utf8"));
  const rcptReply = (await c.replies(1))[0]!;
  if (!rcptReply.startsWith("250")) {
    c.close();
    return { rcptReply };
  }
  assert.match(await c.cmd("DATA"), /^354/);
  c.write(`Subject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nhello\r\n.\r\n`);
  const done = (await c.replies(1))[0]!;
  c.close();
  const m = /queued as ([0-9A-F]+)/.exec(done);
  assert.ok(m, done);
  return { id: m[1]!, rcptReply };
}

/** Waits for the relay's first delivery attempt of `id` to end, and returns its log record. */
function attempt(id: string): Promise<Record<string, unknown>> {
  return waitFor(`delivery attempt of ${id}`, () =>
    logs.find((l) => l.event === "delivery" && l.queueId === id && l.result !== undefined),
  );
}

async function neverInClear(id: string, tag: string, policy: string): Promise<void> {
  const l = await attempt(id);
  assert.equal(l.result, "deferred", JSON.stringify(l));
  assert.equal(l.policy, policy);
  assert.equal(l.code, "TLS_NOT_OFFERED");
  // retries stay deferred: the partner's MX never sees the message
  await waitFor(`a retry of ${id}`, () =>
    logs.lines.filter((x) => x.event === "delivery" && x.queueId === id).length >= 2 ? true : undefined,
  );
  const got = await postfix.messages();
  assert.ok(!got.some((m) => m.headers["x-test-id"]?.[0] === tag), `${tag} was delivered in clear`);
}

describe("issue 14 finding 2: every spelling of a protected domain meets its policy (wire)", () => {
  it("the U-label (SMTPUTF8) of a verify domain whose MX offers no STARTTLS: deferred, never in clear", async () => {
    const { id } = await sendUtf8("bob@bücher.test", "idn-ulabel");
    assert.ok(id);
    await neverInClear(id, "idn-ulabel", "mail/buecher");
    // the canonical address is what is queued and logged
    const l = await attempt(id);
    assert.equal(l.domain, "xn--bcher-kva.test");
  });

  it("the A-label from swaks (no SMTPUTF8 needed): accepted and deferred the same way", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: ports.smtp,
      from: "alice@local.test",
      to: "bob@xn--bcher-kva.test",
      headers: { "X-Test-Id": "idn-alabel" },
    });
    assert.equal(r.code, 0, r.transcript);
    await neverInClear(r.queueId!, "idn-alabel", "mail/buecher");
  });

  for (const [label, rcpt] of [
    ["full-width letters", "bob@ｐａｒｔｎｅｒ.test"],
    ["the ideographic full stop", "bob@partner。test"],
    ["upper-case full-width letters and full stop", "bob@ＰＡＲＴＮＥＲ．test"],
  ] as const)
    it(`a lookalike spelling (${label}) of a verify domain: routed by its policy, deferred`, async () => {
      const tag = `lookalike-${label.replace(/\W+/g, "-")}`;
      const { id } = await sendUtf8(rcpt, tag);
      assert.ok(id);
      await neverInClear(id, tag, "mail/partner");
    });

  it("a domain without a canonical form is refused at RCPT (553 5.1.3), never routed", async () => {
    // an address literal passes smtp-server's syntax check and reaches the relay's own rule
    assert.match((await sendUtf8("bob@[127.0.0.1]", "literal")).rcptReply, /^553 5\.1\.3 /);
    // these smtp-server already refuses (501): refused either way, never routed
    for (const rcpt of ["bob@xn--zz.test", "bob@under_score.test", "bob@part\u200bner.test"])
      assert.match((await sendUtf8(rcpt, "invalid")).rcptReply, /^5\d\d /, rcpt);
    // attack: URL syntax a host parser would cut off or decode (was partner.test's mail)
    for (const rcpt of [
      "bob@partner.test/x",
      "bob@partner%2Etest",
      "bob@partner.test?x",
      "bob@partner.test#x",
    ])
      assert.match((await sendUtf8(rcpt, "url-syntax")).rcptReply, /^5\d\d /, rcpt);
  });
});

describe("issue 14 finding 4: a catch-all with a nextHop does not capture local domains (wire)", () => {
  it("local mail goes to the internal next hop, the rest to the catch-all's smarthost", async () => {
    await f.configure({
      ...base(),
      // what the operator compiles a "*" policy with a nextHop into
      defaultOutbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: postfix.port } },
    });
    await relay.checkConfig();
    for (const [to, tag] of [
      ["carol@local.test", "local-mail"],
      ["dave@partner.test", "smarthost-mail"],
    ] as const) {
      const r = await swaks({
        server: "127.0.0.1",
        port: ports.smtp,
        from: "alice@local.test",
        to,
        headers: { "X-Test-Id": tag },
      });
      assert.equal(r.code, 0, r.transcript);
    }
    const local = await waitFor("local mail at the internal server", () =>
      internal.messages.find((m) => m.data.toString().includes("X-Test-Id: local-mail")),
    );
    assert.deepEqual(local.to, ["carol@local.test"]);
    const smart = await waitFor("the rest at the smarthost", async () =>
      (await postfix.messages()).find((m) => m.headers["x-test-id"]?.[0] === "smarthost-mail"),
    );
    assert.ok(smart);
    const atSmarthost = await postfix.messages();
    assert.ok(!atSmarthost.some((m) => m.headers["x-test-id"]?.[0] === "local-mail"));
  });
});
