// Two recipients that differ only in the case of their local part (attack review, session 8).
// RFC 5321 2.4: a local part is case sensitive, and the relay keeps such recipients apart; but
// smtp-server, under it, keeps one entry per address compared in lower case (a later spelling
// replaces the earlier one after both were answered 250), so the earlier recipient, accepted with
// 250, was neither queued nor delivered nor bounced. The relay now answers the second spelling
// 452 4.5.3 (send it in another transaction): every recipient answered 250 arrives.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let internal: Sink;
let partner: Sink;

before(async () => {
  f = await relayFixture("relay-rcpt-case");
  internal = await startSink();
  partner = await startSink();
  await f.configure({
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: internal.port },
    },
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: partner.port } },
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: internal.port } },
  });
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([internal?.close(), partner?.close()]));
});

/** One transaction from `localAddress`: the RCPT replies and the queue id. */
async function send(
  localAddress: string,
  from: string,
  rcpts: string[],
  tag: string,
): Promise<{ replies: string[]; id: string }> {
  const s = await rawSession(f.ports.smtp, { localAddress });
  try {
    assert.match(await s.cmd("EHLO client.test"), /^250/);
    assert.match(await s.cmd(`MAIL FROM:<${from}>`), /^250/);
    const replies: string[] = [];
    for (const r of rcpts) replies.push(await s.cmd(`RCPT TO:<${r}>`));
    assert.match(await s.cmd("DATA"), /^354/);
    const done = await s.data(`Subject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nhello`);
    const m = /queued as ([0-9A-F]+)/.exec(done);
    assert.ok(m, done);
    return { replies, id: m[1]! };
  } finally {
    s.close();
  }
}

const deliveredLog = (id: string) =>
  waitFor(`delivery of ${id}`, () =>
    f.logs!.find((l) => l.event === "delivery" && l.queueId === id && l.result === "delivered"),
  );

function delivered(sink: Sink, tag: string): string[] {
  return sink.messages
    .filter((m) => m.data.toString("latin1").includes(`X-Test-Id: ${tag}\r\n`))
    .flatMap((m) => m.to)
    .sort();
}

/** Sends to `a` and `b` (differing in case) in one transaction, then `b` alone: both must arrive. */
async function bothArrive(
  localAddress: string,
  from: string,
  a: string,
  b: string,
  sink: Sink,
): Promise<void> {
  const tag = `case-${localAddress}`;
  const first = await send(localAddress, from, [a, b], tag);
  assert.match(first.replies[0]!, /^250 /);
  assert.match(first.replies[1]!, /^452 4\.5\.3 /, "the second spelling waits for its own transaction");
  await deliveredLog(first.id);
  const second = await send(localAddress, from, [b], tag);
  assert.match(second.replies[0]!, /^250 /);
  await deliveredLog(second.id);
  await waitFor("both at the sink", () => (delivered(sink, tag).length >= 2 ? true : undefined));
  assert.deepEqual(delivered(sink, tag), [a, b].sort());
}

describe("recipients that differ only in the case of their local part (RFC 5321 2.4)", () => {
  it("from relayFrom to a partner: every recipient answered 250 is delivered", async () => {
    await bothArrive("127.0.0.1", "app@local.test", "Alice@partner.test", "alice@partner.test", partner);
  });

  it("from a stranger to a local domain: every recipient answered 250 reaches the internal server", async () => {
    await bothArrive("127.0.0.2", "x@stranger.test", "Bob@local.test", "bob@local.test", internal);
  });

  it("the same address with its domain in another case is one mailbox: accepted, delivered once", async () => {
    const { replies, id } = await send(
      "127.0.0.1",
      "app@local.test",
      ["carol@Partner.TEST", "carol@partner.test"],
      "case-domain",
    );
    assert.ok(
      replies.every((r) => r.startsWith("250 ")),
      replies.join(" | "),
    );
    await deliveredLog(id);
    assert.deepEqual(delivered(partner, "case-domain"), ["carol@partner.test"]);
  });
});
