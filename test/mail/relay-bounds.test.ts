// Issue 22 finding 2: hostile DNS and slow servers must not pin the delivery workers. Real relay,
// a DNS server on loopback, MX servers on loopback addresses (all on the same port, the relay's
// mxPort):
//  - a tarpit (accepts, never greets) for two domains, every message to both (two route groups
//    in parallel): with a short attemptTimeoutSeconds, mail to another domain still flows, and the
//    tarpit never holds more connections than queue.workers;
//  - a domain with 8 MX addresses (one listed twice) where nothing listens: one attempt tries 5
//    (mxAddressLimit), each address once;
//  - a domain with 4 MX whose servers greet with 421: one attempt has 2 sessions (mxSessionLimit).
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { startDnsServer, type DnsServer, type Zone } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import {
  rawSession,
  relayFixture,
  TEST_INTERNAL_CIDRS,
  type LogCapture,
  type RelayFixture,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "bounds-admin-token";
const WORKERS = 2;
let f: RelayFixture;
let dns: DnsServer;
let sink: Sink;
let logs: LogCapture;
let port: number;
const servers: net.Server[] = [];
const tarpit = { open: 0, max: 0, sockets: new Set<net.Socket>() };

async function listen(host: string, onConn: (s: net.Socket) => void): Promise<void> {
  const srv = net.createServer(onConn);
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, host, () => resolve());
  });
  servers.push(srv);
}

async function submit(to: string[], tag: string): Promise<string> {
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO client.test");
  assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250/);
  for (const t of to) assert.match(await s.cmd(`RCPT TO:<${t}>`), /^250/);
  assert.match(await s.cmd("DATA"), /^354/);
  const reply = await s.data(`Subject: ${tag}\nX-Test-Id: ${tag}\n\nhello\n`);
  s.close();
  const id = /queued as ([0-9A-F]+)/.exec(reply)?.[1];
  assert.ok(id, reply);
  return id;
}

async function attemptedOnce(id: string): Promise<void> {
  await waitFor(
    `first attempt of ${id}`,
    async () => {
      const r = await fetch(`http://127.0.0.1:${f.ports.admin}/queue/${id}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const m = (await r.json()) as { attempts: number; inFlight: boolean };
      return m.attempts >= 1 && !m.inFlight ? true : undefined;
    },
    30_000,
  );
}

const attempts = (id: string) => logs.lines.filter((l) => l.event === "delivery" && l.queueId === id);

before(async () => {
  f = await relayFixture("relay-bounds");
  port = await freePort();
  sink = await startSink({ host: "127.0.0.1", port });
  // the tarpit: accepts, never says a word
  for (let i = 5; i <= 12; i++)
    await listen(`127.0.0.${i}`, (s) => {
      tarpit.open++;
      tarpit.max = Math.max(tarpit.max, tarpit.open);
      tarpit.sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        tarpit.open--;
        tarpit.sockets.delete(s);
      });
    });
  // busy servers: greet with 421 and hang up
  for (let i = 20; i <= 23; i++)
    await listen(`127.0.0.${i}`, (s) => {
      s.on("error", () => undefined);
      s.end("421 4.3.2 busy, try later\r\n");
    });
  const zone: Zone = {
    "good.test": { MX: [{ preference: 10, exchange: "mx.good.test" }] },
    "mx.good.test": { A: ["127.0.0.1"] },
  };
  const mxOf = (domain: string, addrs: string[]): void => {
    zone[domain] = { MX: addrs.map((_, i) => ({ preference: 10 + i, exchange: `mx${i}.${domain}` })) };
    addrs.forEach((a, i) => (zone[`mx${i}.${domain}`] = { A: [a] }));
  };
  const tarpitAddrs = [5, 6, 7, 8, 9, 10, 11, 12].map((i) => `127.0.0.${i}`);
  mxOf("tarpit.test", tarpitAddrs);
  mxOf("tarpit2.test", tarpitAddrs);
  // nothing listens on 127.0.0.30-36; 127.0.0.30 is listed twice
  mxOf(
    "closed.test",
    [30, 30, 31, 32, 33, 34, 35, 36].map((i) => `127.0.0.${i}`),
  );
  mxOf(
    "busy.test",
    [20, 21, 22, 23].map((i) => `127.0.0.${i}`),
  );
  dns = await startDnsServer(zone);
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      dns: { servers: [dns.address] },
      queue: { dir: `${f.work}/queue`, retry: { initial: 30, max: 60 }, workers: WORKERS },
      delivery: { attemptTimeoutSeconds: 1, allowedInternalCidrs: TEST_INTERNAL_CIDRS },
    },
    { files: { "secrets/admin/token": TOKEN } },
  );
  ({ logs } = await f.start({ mxPort: port }));
});

after(async () => {
  for (const s of tarpit.sockets) s.destroy();
  await f?.stop(() =>
    Promise.all([
      dns?.stop(),
      sink?.close(),
      ...servers.map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]),
  );
});

describe("issue 22 finding 2: delivery deadlines and fan-out caps", () => {
  it("tarpit MX for two domains: another domain's mail still flows, tarpit connections <= queue.workers", async () => {
    for (let i = 0; i < 4; i++) await submit([`a${i}@tarpit.test`, `b${i}@tarpit2.test`], `tarpit-${i}`);
    await waitFor("the tarpit is reached", () => (tarpit.max > 0 ? true : undefined), 30_000);
    await submit(["carol@good.test"], "good-after-tarpit");
    await waitFor(
      "the good domain's message delivered",
      () => sink.messages.find((m) => m.data.toString().includes("X-Test-Id: good-after-tarpit")),
      30_000,
    );
    assert.ok(tarpit.max <= WORKERS, `tarpit held ${tarpit.max} connections at once, workers ${WORKERS}`);
    const timedOut = logs.lines.find((l) => l.event === "delivery" && /tarpit/.test(String(l.nextHop)));
    assert.ok(timedOut, "attempts to the tarpit are logged");
  });

  // retry.initial is 30 s: by the time the first attempt has ended, no second one has started
  it("8 MX addresses (one duplicate), nothing listening: one attempt tries 5 (mxAddressLimit), each once", async () => {
    const id = await submit(["dave@closed.test"], "closed");
    await attemptedOnce(id);
    const addrs = attempts(id).map((l) => String(l.address));
    assert.deepEqual(addrs, ["127.0.0.30", "127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34"]);
  });

  it("4 MX whose servers greet with 421: one attempt has 2 sessions (mxSessionLimit)", async () => {
    const id = await submit(["erin@busy.test"], "busy");
    await attemptedOnce(id);
    const addrs = attempts(id).map((l) => String(l.address));
    assert.deepEqual(addrs, ["127.0.0.20", "127.0.0.21"]);
  });
});
