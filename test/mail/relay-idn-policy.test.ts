// Attack on the outbound policy (and the local-domain check) through IDN spellings, on the wire: a
// recipient domain written as an A-label (xn--...) reaches the relay as a U-label (smtp-server
// decodes it), while policies, localDomains and senderDomains are A-labels (the API allows only
// lower-case ASCII). Compared as strings, mail to a partner's IDN domain matched no policy and left
// by the default route (here: another next hop; in production a smarthost or opportunistic TLS)
// instead of the way the partner's policy says.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let partner: Sink;
let fallback: Sink;
let internal: Sink;

before(async () => {
  f = await relayFixture("relay-idn-policy");
  [partner, fallback, internal] = await Promise.all([startSink(), startSink(), startSink()]);
  await f.configure({
    inbound: {
      relayFrom: ["127.0.0.1"],
      localDomains: ["xn--mnchen-3ya.test"],
      internalNextHop: { host: "127.0.0.1", port: internal.port },
      localRecipients: { addresses: ["bob@xn--mnchen-3ya.test"], files: [] },
    },
    policies: [
      {
        name: "t/partner",
        domains: ["xn--bcher-kva.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: partner.port } },
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: fallback.port } },
  });
  await f.start();
});

after(async () => {
  await f?.stop(async () => {
    await Promise.all([partner?.close(), fallback?.close(), internal?.close()]);
  });
});

async function send(rcpt: string, id: string, localAddress = "127.0.0.1"): Promise<string[]> {
  const s = await rawSession(f.ports.smtp, { localAddress });
  const replies: string[] = [];
  try {
    replies.push(await s.cmd("EHLO client.test"));
    replies.push(await s.cmd("MAIL FROM:<a@client.test> SMTPUTF8"));
    replies.push(await s.cmd(`RCPT TO:<${rcpt}>`));
    if (!replies.at(-1)!.startsWith("250")) return replies;
    replies.push(await s.cmd("DATA"));
    replies.push(await s.data(`Subject: idn\r\nX-Test-Id: ${id}\r\n\r\nbody`));
    return replies;
  } finally {
    s.close();
  }
}

const arrived = (sink: Sink, id: string) =>
  sink.messages.some((m) => m.data.toString().includes(`X-Test-Id: ${id}`));

describe("attack: IDN spellings of a policy's domain", () => {
  for (const [label, rcpt] of [
    ["A-label", "someone@xn--bcher-kva.test"],
    ["U-label", "someone@bücher.test"],
    ["upper-case A-label", "someone@XN--BCHER-KVA.TEST"],
  ] as const)
    it(`attack: mail to a partner's IDN domain (${label}) goes the partner policy's way, not the default route`, async () => {
      const id = `idn-${label.replace(/\W+/g, "-")}`;
      const r = await send(rcpt, id);
      assert.match(r.at(-1)!, /^250 /, r.join("\n"));
      await waitFor("delivery", () => arrived(partner, id) || arrived(fallback, id) || undefined);
      assert.equal(arrived(fallback, id), false, "left by the default route");
      assert.equal(arrived(partner, id), true);
    });

  it("attack: an A-label local domain is local when written so (a host that may not relay may send to it)", async () => {
    const r = await send("bob@xn--mnchen-3ya.test", "idn-local", "127.0.0.2");
    assert.match(r.at(-1)!, /^250 /, r.join("\n"));
  });

  it("attack: the local recipient table finds an address of an IDN local domain in either spelling", async () => {
    for (const rcpt of ["bob@münchen.test", "Bob@XN--MNCHEN-3YA.test"]) {
      const r = await send(rcpt, `idn-table-${rcpt.length}`, "127.0.0.2");
      assert.match(r.at(-1)!, /^250 /, r.join("\n"));
    }
    const r = await send("nobody@münchen.test", "idn-table-unknown", "127.0.0.2");
    assert.match(r.at(-1)!, /^550 5\.1\.1 /, r.join("\n"));
  });
});
