// Issue 22 finding 1: an outsider without a login must not be able to grow the relay's memory with
// one connection. The relay runs as a child process (its RSS is measured from /proc); the attacker
// connects from outside relayFrom and pipelines refused commands as fast as the socket takes them.
// The session must be cut (421 4.7.0) after the hard error limit / the command cap, the relay's RSS
// must stay bounded, its session log line must stay small, and it must still serve others.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as net from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { rawSession, relayFixture, startRelayProcess, type RelayFixture } from "../support/relay.js";
import type { Managed } from "../support/process.js";
import { waitFor } from "../support/process.js";

const OUTSIDER = "127.0.0.9";

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  assert.ok(kb, "VmRSS in /proc status");
  return Number(kb) * 1024;
}

/**
 * Pipelines `count` copies of `line` after EHLO/MAIL FROM from OUTSIDER, honouring backpressure,
 * until done or the server closes; resolves with what the server said and how many lines went out.
 */
async function flood(
  port: number,
  line: string,
  count: number,
  prefix = "EHLO attacker.test\r\nMAIL FROM:<a@attacker.test>\r\n",
): Promise<{ received: string; sent: number; closedByServer: boolean }> {
  const sock = net.connect({ host: "127.0.0.1", port, localAddress: OUTSIDER });
  let received = "";
  let closed = false;
  sock.on("data", (d: Buffer) => {
    // keep only the head and the tail: the old relay answers every line
    received = received.length > 200_000 ? received.slice(0, 10_000) + received.slice(-10_000) : received;
    received += d.toString("latin1");
  });
  const gone = new Promise<void>((resolve) => {
    sock.on("close", () => {
      closed = true;
      resolve();
    });
    sock.on("error", () => undefined);
  });
  await waitFor("greeting", () => (received.includes("\r\n") ? true : undefined), 10_000, 10);
  sock.write(prefix);
  const chunk = (line + "\r\n").repeat(1000);
  let sent = 0;
  while (sent < count && !closed) {
    const ok = sock.write(chunk);
    sent += 1000;
    if (!ok)
      await new Promise<void>((resolve) =>
        closed ? resolve() : sock.once("drain", resolve).once("close", resolve),
      );
  }
  if (!closed) {
    // everything went out: wait until the last reply came back, then leave
    sock.write("QUIT\r\n");
  }
  await gone;
  return { received, sent, closedByServer: /\r\n421 4\.7\.0 /.test("\r\n" + received) };
}

describe("issue 22 finding 1: unauthenticated memory exhaustion", () => {
  let f: RelayFixture;
  let proc: Managed;
  let logFile: string;

  before(async () => {
    f = await relayFixture("bounds-inbound");
    await f.configure({
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: 9 },
      },
    });
    logFile = join(f.work, "relay.log");
    proc = await startRelayProcess(f.configDir, f.ports.admin, logFile);
  });
  after(() => f.stop(() => proc.stop()));

  it("300,000 pipelined refused RCPT TO from outside relayFrom: cut with 421 4.7.0, RSS bounded, short log line", async () => {
    const pid = proc.child.pid!;
    // warm up: one normal refused session, so lazily built state is not counted as growth
    await flood(f.ports.smtp, "RCPT TO:<victim@elsewhere.test>", 10);
    const before = await rssBytes(pid);
    const r = await flood(f.ports.smtp, "RCPT TO:<victim@elsewhere.test>", 300_000);
    const growth = (await rssBytes(pid)) - before;
    const mb = Math.round(growth / 1024 / 1024);
    assert.ok(r.closedByServer, `session cut with 421 4.7.0 (RSS +${mb} MB); got ${r.received.slice(-300)}`);
    const refusals = r.received.split("\r\n").filter((l) => l.startsWith("550 ")).length;
    assert.ok(refusals <= 25, `at most the error limit of refusals before the cut, got ${refusals}`);
    assert.ok(growth < 24 * 1024 * 1024, `RSS grew by ${mb} MB`);
    const longest = await waitFor(
      "session log lines",
      async () => {
        const lines = (await readFile(logFile, "utf8"))
          .split("\n")
          .filter((l) => l.includes('"event":"session"'));
        return lines.length >= 2 ? Math.max(...lines.map((l) => l.length)) : undefined;
      },
      10_000,
    );
    assert.ok(longest < 8192, `session log line of ${longest} bytes`);
  });

  it("a session of commands that are not errors (NOOP) is cut by the command cap", async () => {
    const r = await flood(f.ports.smtp, "NOOP", 100_000, "EHLO attacker.test\r\n");
    assert.ok(r.closedByServer, `session cut with 421 4.7.0; got ${r.received.slice(-300)}`);
  });

  it("errors smtp-server answers itself (503 RCPT before MAIL) count toward the limit too", async () => {
    const r = await flood(f.ports.smtp, "RCPT TO:<victim@elsewhere.test>", 100_000, "EHLO attacker.test\r\n");
    assert.ok(r.closedByServer, `session cut with 421 4.7.0; got ${r.received.slice(-300)}`);
  });

  it("the relay still serves a normal client afterwards", async () => {
    const s = await rawSession(f.ports.smtp);
    assert.match(await s.cmd("EHLO good.test"), /^250/);
    assert.match(await s.cmd("MAIL FROM:<good@sender.test>"), /^250/);
    assert.match(await s.cmd("RCPT TO:<someone@elsewhere.test>"), /^250/);
    s.close();
  });
});
