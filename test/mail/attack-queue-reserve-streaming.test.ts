// Attack review of the queue volume's reserve (relay/queue/space-reserve.ts): it is checked at MAIL
// FROM (SIZE= counted) and again at the end of DATA, but not while a body is being written. A
// message over the journal's 2 MiB goes to a temp file as it arrives, and those bytes count nowhere
// until the message is queued. So a client allowed to relay opens a few sessions at once (each
// passes MAIL FROM: the volume is not within the reserve yet, and SIZE= is optional), streams a
// large body in each and never sends its final dot: the temp files take the reserve, and keep it
// for as long as the sessions last, while the queue's own writes (deliveries' states, DSNs,
// receipts) need it. The relay must stop writing a body that would take the reserve.
// A 32 MiB tmpfs as the queue volume, maxMessageSize 6 MiB (the reserve: 1.5 x, 9 MiB).
import assert from "node:assert/strict";
import { statfs } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { mountTmpfs, unmountTmpfs } from "../support/queue-volume.js";
import { startSink, type Sink } from "../support/sink.js";

const MAX_MESSAGE = 6 * 1024 * 1024;
const RESERVE = 1.5 * MAX_MESSAGE;
const SESSIONS = 6;

/** A raw SMTP session: each command's reply (its last line). */
async function smtp(port: number): Promise<{ s: Socket; cmd: (line: string) => Promise<string> }> {
  const s = connect(port, "127.0.0.1");
  s.on("error", () => undefined);
  let buf = "";
  let waiter: ((reply: string) => void) | undefined;
  s.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    const m = /(?:^|\n)(\d{3}) [^\n]*\n/.exec(buf);
    if (m && waiter) {
      const w = waiter;
      waiter = undefined;
      const reply = buf.slice(m.index).trim();
      buf = "";
      w(reply);
    }
  });
  const next = (): Promise<string> => new Promise((res) => (waiter = res));
  const greeting = next();
  await new Promise<void>((res) => s.once("connect", () => res()));
  await greeting;
  const cmd = (line: string): Promise<string> => {
    const r = next();
    s.write(`${line}\r\n`);
    return r;
  };
  return { s, cmd };
}

/** Free bytes of the volume at `dir`, as an unprivileged writer sees them. */
async function freeBytes(dir: string): Promise<number> {
  const f = await statfs(dir);
  return f.bavail * f.bsize;
}

describe("a relaying client holds large bodies open on the queue volume", () => {
  let f: RelayFixture;
  let sink: Sink;
  let qfs: string;
  let mounted = false;
  const sockets: Socket[] = [];

  before(async () => {
    f = await relayFixture("attack-reserve-streaming");
    sink = await startSink();
    sink.setDown(true);
    qfs = join(f.work, "qfs");
    mounted = await mountTmpfs(qfs, "32m");
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await f.relay?.stop();
    if (mounted) await unmountTmpfs(qfs);
    await f.stop(() => sink.close());
  });

  it("does not let bodies being received take the reserve", async (t) => {
    if (!mounted) return t.skip("mounting a tmpfs is not permitted here");
    await f.configure({
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        maxMessageSize: MAX_MESSAGE,
      },
      queue: { dir: qfs, retry: { initial: 1, max: 5 } },
      policies: [
        {
          name: "t/far",
          domains: ["far.test"],
          outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
        },
      ],
    });
    await f.start();
    const free0 = await freeBytes(qfs);
    // together the bodies leave 3 MiB of the volume free: a third of the reserve
    const each = Math.min(MAX_MESSAGE - 64 * 1024, Math.floor((free0 - 3 * 1024 * 1024) / SESSIONS));
    t.diagnostic(`volume free ${free0}, reserve ${RESERVE}, ${SESSIONS} bodies of ${each} bytes held open`);

    const line = "x".repeat(1022) + "\r\n";
    const opened = await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        const c = await smtp(f.ports.smtp);
        sockets.push(c.s);
        const replies = [
          await c.cmd("EHLO client.test"),
          await c.cmd("MAIL FROM:<sender@local.test>"), // no SIZE=: it is optional
          await c.cmd(`RCPT TO:<r${i}@far.test>`),
          await c.cmd("DATA"),
        ];
        return { c, replies };
      }),
    );
    for (const { replies } of opened) assert.match(replies.at(-1)!, /^354/, replies.join(" | "));
    // each body, its final dot never sent
    await Promise.all(
      opened.map(async ({ c }, i) => {
        c.s.write(`Subject: held ${i}\r\n\r\n`);
        for (let n = 0; n < each; n += line.length)
          if (!c.s.write(line)) await new Promise((r) => c.s.once("drain", r));
      }),
    );
    // until the relay has written what it takes of them (the volume's free space settles)
    let free = await freeBytes(qfs);
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await freeBytes(qfs);
      if (now === free && i >= 5) break;
      free = now;
    }
    t.diagnostic(`volume free while the bodies are held: ${free}`);
    // the reserve is the queue's own (a chunk's overshoot per session allowed)
    assert.ok(
      free >= RESERVE - SESSIONS * 64 * 1024,
      `the bodies being received took the reserve: ${free} bytes free of a ${RESERVE}-byte reserve`,
    );
    // their dots: each queued or refused as the volume's reserve asks (452 4.3.1), none a queue error
    const replies = await Promise.all(opened.map(({ c }) => c.cmd("\r\n.")));
    t.diagnostic(`replies: ${replies.join(" | ")}`);
    for (const r of replies) assert.match(r, /^(250 |452 4\.3\.1 )/);
    assert.ok(
      replies.some((r) => r.startsWith("452 ")),
      "some were refused",
    );
  });
});
