// Attack: a hostile next hop that never finishes a reply, but trickles a byte of it now and then (a
// tarpit). Each byte resets the socket's idle timeout and a reply of 64 KiB takes days to fill at
// that rate, so without a deadline on the whole transaction one delivery holds its worker, and its
// share of the memory budget, for ever: the MX of one domain (a partner's, or a forged sender's that
// a DSN goes to) stalls the queue for every domain. Here with one worker: the tarpit's delivery is
// given up at the attempt deadline (a deferral), and mail to a healthy domain still arrives.
import assert from "node:assert/strict";
import * as net from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let logs: LogCapture;
let sink: Sink;
let tarpit: { port: number; server: net.Server; sockets: Set<net.Socket> };

/** Answers EHLO, then meets MAIL FROM with "250-" and one more byte every 100 ms, never a whole line. */
async function startTarpit(): Promise<typeof tarpit> {
  const port = await freePort("127.0.0.1");
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    let timer: NodeJS.Timeout | undefined;
    s.on("close", () => (sockets.delete(s), clearInterval(timer)));
    s.on("error", () => undefined);
    s.write("220 tarpit.test ESMTP\r\n");
    s.on("data", (d: Buffer) => {
      const text = d.toString("latin1").toUpperCase();
      if (text.startsWith("EHLO")) s.write("250-tarpit.test\r\n250 8BITMIME\r\n");
      else if (text.startsWith("MAIL") && !timer) {
        s.write("250-");
        timer = setInterval(() => s.write("x"), 100);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { port, server, sockets };
}

before(async () => {
  f = await relayFixture("relay-tarpit");
  sink = await startSink();
  tarpit = await startTarpit();
  await f.configure({
    inbound: { relayFrom: ["127.0.0.1"], localDomains: ["local.test"] },
    queue: { dir: join(f.work, "queue"), retry: { initial: 60, max: 60 }, workers: 1 },
    // the attempt's overall deadline (MailRelay spec.delivery.attemptTimeout), short for the test
    delivery: { attemptTimeoutSeconds: 4 },
    policies: [
      {
        name: "t/tarpit",
        domains: ["tarpit.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: tarpit.port } },
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
  });
  ({ logs } = await f.start({
    timeouts: { connectionMs: 5_000, greetingMs: 5_000, socketMs: 2_000 },
  }));
});

after(async () => {
  await f?.stop(async () => {
    for (const s of tarpit?.sockets ?? []) s.destroy();
    await new Promise((r) => tarpit?.server.close(r));
    await sink?.close();
  });
});

describe("attack: a tarpit next hop", () => {
  it("attack: a next hop trickling one reply for ever is given up at the attempt deadline; other mail still flows", async () => {
    for (const [to, id] of [
      ["victim@tarpit.test", "to-tarpit"],
      ["someone@healthy.test", "to-healthy"],
    ] as const) {
      const r = await swaks({
        server: "127.0.0.1",
        port: f.ports.smtp,
        from: "sender@local.test",
        to,
        headers: { "X-Test-Id": id },
        timeoutSeconds: 10,
      });
      assert.equal(r.queued?.enhanced, "2.0.0", r.transcript);
    }
    const deferred = await waitFor(
      "the tarpit's delivery given up",
      () =>
        logs.lines.find(
          (l) => l.event === "delivery" && l.result === "deferred" && l.code === "ATTEMPT_TIMEOUT",
        ),
      60_000,
    );
    assert.match(String(deferred.reason), /deadline/);
    await waitFor(
      "mail to the healthy domain",
      () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: to-healthy")),
      60_000,
    );
  });
});
