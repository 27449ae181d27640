// Attack review (session 18, the hostile next hop): a next hop answers one recipient's RCPT with a
// 4xx (try later) and the end of DATA with a 5xx. The 5xx is the server's answer for the recipients
// it took; the one it only put off was never offered the message, so it must stay queued and be
// retried, not be bounced on another recipient's refusal (Postfix's smtp client keeps each RCPT's
// own status). nodemailer's DATA error carries no per-recipient errors, and the relay copied the
// DATA reply onto every recipient of the attempt.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { submitPlain } from "../support/submit.js";

let f: RelayFixture;
let localSink: Sink;
let mta: { port: number; close(): Promise<void> };

/** RCPT: 450 for an address with "later" in it, else 250; the end of DATA: 554. */
async function startRefusingMta(): Promise<typeof mta> {
  const port = await freePort("127.0.0.1");
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    s.write("220 refusing.test ESMTP\r\n");
    let rest = "";
    let inData = false;
    s.on("data", (d: Buffer) => {
      const lines = (rest + d.toString("latin1")).split("\r\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (inData) {
          if (line === ".") {
            inData = false;
            s.write("554 5.7.1 content refused for the accepted recipients\r\n");
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") s.write("250-refusing.test\r\n250 8BITMIME\r\n");
        else if (verb === "HELO" || verb === "MAIL" || verb === "RSET") s.write("250 2.0.0 ok\r\n");
        else if (verb === "RCPT")
          s.write(/later/i.test(line) ? "450 4.2.1 mailbox busy, try later\r\n" : "250 2.1.5 ok\r\n");
        else if (verb === "DATA") {
          inData = true;
          s.write("354 go ahead\r\n");
        } else if (verb === "QUIT") s.end("221 2.0.0 bye\r\n");
        else s.write("502 5.5.2 unrecognized\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const submit = (from: string, to: string[]): Promise<string> =>
  submitPlain(f.ports.smtp, { from, to, data: `From: <${from}>\r\nSubject: split\r\n\r\nhello\r\n` });

before(async () => {
  f = await relayFixture("rcpt-deferred-data-refused");
  localSink = await startSink();
  mta = await startRefusingMta();
  await f.configure({
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: localSink.port },
    },
    policies: [
      {
        name: "p/refusing",
        domains: ["refusing.test"],
        outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: mta.port } },
      },
    ],
  });
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([localSink, mta].map((s) => s?.close())));
});

describe("a recipient put off at RCPT is not bounced by the DATA refusal of the others", () => {
  it("450 at RCPT, 554 at the end of DATA: the accepted one bounces, the put-off one is deferred", async () => {
    const id = await submit("alice@local.test", ["now@refusing.test", "later@refusing.test"]);
    const lines = () =>
      f.logs!.lines.filter((l) => l.queueId === id && l.event === "recipient") as {
        to?: string;
        status?: string;
        dsn?: string;
      }[];
    await waitFor(
      "both recipients' first attempt logged",
      () => (lines().length >= 2 ? true : undefined),
      60_000,
    );
    const of = (to: string) => lines().find((l) => l.to === to);
    assert.deepEqual(
      { now: [of("now@refusing.test")?.status, of("now@refusing.test")?.dsn] },
      { now: ["bounced", "5.7.1"] },
    );
    assert.deepEqual(
      { later: [of("later@refusing.test")?.status, of("later@refusing.test")?.dsn] },
      { later: ["deferred", "4.2.1"] },
      "the recipient the next hop only put off is retried, not bounced on the others' DATA reply",
    );
  });
});
