// Attack (DSN review), from the victim's side of the wire: Postfix's cleanup(8) removes Bcc,
// Resent-Bcc, Content-Length and Return-Path from every message it queues (message_drop_headers);
// Sealpost relayed them as the client wrote them. An application that submits a message with a Bcc:
// header field (some libraries and hand-written senders do) showed its blind-copy recipients to every
// recipient; a client's Return-Path: forges what the final delivery adds; a Content-Length: can
// confuse a downstream parser. Every copy that reaches the next hop must carry none of them, the
// rest of the message byte for byte as the client sent it (after the relay's own Received:), and a
// body line that merely looks like one is the body's. The receiving peer is a plain SMTP server that
// keeps what it received: a Postfix peer would hide the leak, its own cleanup drops them.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { hostileConnect } from "../support/hostile-client.js";
import { waitFor } from "../support/process.js";
import { loopbackInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink, type SinkMessage } from "../support/sink.js";

let f: RelayFixture;
let sink: Sink;

before(async () => {
  f = await relayFixture("attack-bcc");
  sink = await startSink();
  await f.configure({
    ...loopbackInbound(sink.port),
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "opportunistic" }, nextHop: { host: sink.host, port: sink.port } },
      },
    ],
  });
  await f.start();
});

after(async () => {
  await f?.stop(() => sink?.close());
});

/** Sends `data` (no line may start with a dot) to `rcpts` in small writes; the queue id. */
async function send(rcpts: string[], data: string): Promise<string> {
  const c = await hostileConnect(f.ports.smtp, { timeoutMs: 60_000 });
  try {
    assert.match(await c.cmd("EHLO app.local.test"), /^250/);
    assert.match(await c.cmd("MAIL FROM:<app@local.test>"), /^250/);
    for (const r of rcpts) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250/);
    assert.match(await c.cmd("DATA"), /^354/);
    const wire = Buffer.from(data + ".\r\n", "latin1");
    // the header section split across writes, in the middle of a dropped field's name and fold
    for (let at = 0; at < wire.length; at += at < 4096 ? 7 : 1024 * 1024)
      c.write(wire.subarray(at, Math.min(wire.length, at + (at < 4096 ? 7 : 1024 * 1024))));
    const [reply] = await c.replies(1);
    const id = /queued as (\S+)/.exec(reply ?? "")?.[1];
    assert.ok(id, `not queued: ${reply}`);
    return id;
  } finally {
    c.close();
  }
}

/** The copies of message `tag` the next hop got, once every recipient has one. */
async function copies(tag: string, rcpts: number): Promise<SinkMessage[]> {
  return waitFor(
    `${tag} delivered to ${rcpts} recipients`,
    () => {
      const got = sink.messages.filter((m) => m.data.includes(tag));
      return got.reduce((n, m) => n + m.to.length, 0) >= rcpts ? got : undefined;
    },
    60_000,
  );
}

/**
 * `copy` is the relay's Received: header followed by exactly `sent`: its header section compared as
 * text (a failure shows it), its body byte for byte.
 */
function assertRelayed(copy: SinkMessage, sent: string, id: string): void {
  const data = copy.data.toString("latin1");
  const received = /^Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n/.exec(data)?.[0] ?? "";
  assert.match(received, new RegExp(`\\(Sealpost\\) with [^\\r\\n]* id ${id}`), data.slice(0, 2000));
  const end = data.indexOf("\r\n\r\n") + 4;
  const sentEnd = sent.indexOf("\r\n\r\n") + 4;
  assert.equal(
    data.slice(received.length, end),
    sent.slice(0, sentEnd),
    `header section to ${copy.to.join(", ")}`,
  );
  assert.ok(data.slice(end) === sent.slice(sentEnd), `the body to ${copy.to.join(", ")} is not the one sent`);
}

const RCPTS = ["to@local.test", "cc@partner.test", "secret@local.test", "hidden@partner.test"];

describe("attack: Bcc:, Resent-Bcc:, Return-Path: and Content-Length: from the client", () => {
  it("none of them reaches any recipient; the rest is byte-identical", async () => {
    const tag = "bcc-header-TAG1";
    const kept = (body: string): string =>
      "From: App <app@local.test>\r\n" +
      "To: to@local.test\r\n" +
      "Cc: cc@partner.test\r\n" +
      `Subject: quarterly ${tag}\r\n` +
      "Bcc-Note: a field that only starts with Bcc\r\n" +
      "X-Bcc: kept too\r\n" +
      "Message-ID: <m1@local.test>\r\n" +
      "\r\n" +
      body;
    const body = "Hello,\r\nBcc: this body line is the body's\r\nReturn-Path: <so is this>\r\n";
    const sent =
      "From: App <app@local.test>\r\n" +
      "Bcc: secret@local.test\r\n" +
      "To: to@local.test\r\n" +
      "Return-Path: <forged@evil.test>\r\n" +
      "bcc: hidden@partner.test\r\n" +
      "Cc: cc@partner.test\r\n" +
      "BCC: Secret Person\r\n <secret@local.test>,\r\n\thidden@partner.test\r\n" +
      `Subject: quarterly ${tag}\r\n` +
      "Resent-Bcc: hidden@partner.test,\r\n   secret@local.test\r\n" +
      "Bcc-Note: a field that only starts with Bcc\r\n" +
      "Content-Length: 12\r\n" +
      "X-Bcc: kept too\r\n" +
      "resent-bcc:\r\n" +
      "Message-ID: <m1@local.test>\r\n" +
      "CONTENT-LENGTH : 99\r\n" +
      "\r\n" +
      body;
    const id = await send(RCPTS, sent);
    const got = await copies(tag, RCPTS.length);
    assert.ok(got.length >= 2, "one copy per next-hop destination at least");
    for (const copy of got) {
      const head = copy.data.toString("latin1").split("\r\n\r\n")[0]!;
      assert.doesNotMatch(head, /^(bcc|resent-bcc|return-path|content-length)[ \t]*:/im, head);
      assert.doesNotMatch(head, /secret@local\.test|hidden@partner\.test/, head);
      assertRelayed(copy, kept(body), id);
    }
  });

  it("a message with no such field, but a body line that starts with Bcc:, is relayed as sent", async () => {
    const tag = "bcc-body-TAG2";
    const sent =
      "From: app@local.test\r\nTo: to@local.test\r\n" +
      `Subject: ${tag}\r\n\r\nBcc: secret@local.test\r\nContent-Length: 3\r\n`;
    const id = await send(["to@local.test", "secret@local.test"], sent);
    for (const copy of await copies(tag, 2)) assertRelayed(copy, sent, id);
  });

  it("a large message (streamed from its file): its fields dropped too, its body intact", async () => {
    const tag = "bcc-large-TAG3";
    const line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    const body = line.repeat(Math.ceil((3 * 1024 * 1024) / line.length)) + "Bcc: last line\r\n";
    const header = `From: app@local.test\r\nTo: to@local.test\r\nSubject: ${tag}\r\n`;
    const sent =
      header + "Bcc: secret@local.test,\r\n hidden@partner.test\r\nReturn-Path: <x@evil.test>\r\n\r\n" + body;
    const id = await send(RCPTS, sent);
    for (const copy of await copies(tag, RCPTS.length)) assertRelayed(copy, header + "\r\n" + body, id);
  });
});
