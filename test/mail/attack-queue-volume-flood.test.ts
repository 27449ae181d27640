// Attack review: a client allowed to relay (relayFrom) fills the queue volume with accepted mail and
// keeps sending. The relay refuses it (452 4.3.1) only once a write fails, so the volume stays full
// (each page a delivery frees is taken by the next message) and the queue's own writes fail with it:
// a bounce's DSN cannot be queued (the sender never hears of its failed recipients), a delivered
// recipient's state cannot be written (delivered again after a restart), receipts are lost. The queue
// must keep room for its own writes (Postfix queue_minfree, smtpd's 1.5 x message_size_limit):
// new mail is refused with 452 4.3.1 at MAIL FROM while the free space is within the reserve, and the
// messages already accepted keep their way out: bounced with a DSN, delivered once, none lost.
// A 16 MiB tmpfs as the queue volume, maxMessageSize 1 MiB (the reserve: its 8 MiB floor).
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Counter } from "prom-client";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { idsAt, mountTmpfs, sendMessage, unmountTmpfs } from "../support/queue-volume.js";
import { startSink, type Sink } from "../support/sink.js";

const MAX_MESSAGE = 1024 * 1024;
/** The flood's messages: journal-resident (under 2 MiB), a handful of pages each. */
const FLOOD_MESSAGE = 256 * 1024;
const FROM = "sender@owner.test";

/** Sum of a counter's values whose labels include `labels`. */
async function count(c: Counter, labels: Record<string, string> = {}): Promise<number> {
  const m = await c.get();
  return m.values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((s, v) => s + v.value, 0);
}

/** The DSNs `owner` got, by the failed recipient each names. */
function dsnsFor(owner: Sink, rcpt: string): number {
  return owner.messages.filter((m) => m.from === "" && m.data.toString("latin1").includes(rcpt)).length;
}

describe("an allowed client floods the queue volume", () => {
  let f: RelayFixture;
  /** The sender's own domain: its DSNs arrive here. */
  let owner: Sink;
  /** Down while the volume fills, then refuses every recipient (550): the messages for it bounce. */
  let victim: Sink;
  let refuseVictim = false;
  /** Down while the volume fills, then takes the mail. */
  let later: Sink;
  /** The flood's destination: down until the end, so that the flood stays queued. */
  let flood: Sink;
  let qfs: string;
  let mounted = false;

  before(async () => {
    f = await relayFixture("attack-volume-flood");
    owner = await startSink();
    victim = await startSink({ rcptReply: () => (refuseVictim ? "550 5.1.1 no such user" : undefined) });
    later = await startSink();
    flood = await startSink();
    for (const s of [victim, later, flood]) s.setDown(true);
    qfs = join(f.work, "qfs");
    mounted = await mountTmpfs(qfs, "16m");
  });
  after(async () => {
    await f.relay?.stop();
    if (mounted) await unmountTmpfs(qfs);
    await f.stop(() => Promise.all([owner, victim, later, flood].map((s) => s.close())));
  });

  it("refuses new mail at MAIL FROM before the volume is full; queued mail bounces and drains", async (t) => {
    if (!mounted) return t.skip("mounting a tmpfs is not permitted here");
    const hop = (name: string, s: Sink) => ({
      name: `t/${name}`,
      domains: [`${name}.test`],
      outbound: { tls: { mode: "none" as const }, nextHop: { host: "127.0.0.1", port: s.port } },
    });
    await f.configure({
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        maxMessageSize: MAX_MESSAGE,
      },
      queue: { dir: qfs, retry: { initial: 0.2, max: 1 }, workers: 4 },
      policies: [hop("owner", owner), hop("victim", victim), hop("later", later), hop("flood", flood)],
    });
    let { relay, logs } = await f.start();
    const send = (to: string | string[], tag: string, size?: number): Promise<string> =>
      sendMessage(f.ports.smtp, to, tag, { from: FROM, ...(size ? { size } : {}) });

    // queued before the flood, their next hops down: one to bounce, one to deliver in part
    assert.match(await send("x@victim.test", "bounce-me"), /^250 /);
    assert.match(await send(["p1@later.test", "p2@victim.test"], "partial"), /^250 /);
    await waitFor("both deferred", () =>
      logs.lines.filter((l) => l.msg === "delivery deferred").length >= 3 ? true : undefined,
    );

    // the flood: until the relay refuses
    const accepted: string[] = [];
    let refusal = "";
    for (let i = 0; i < 200 && !refusal; i++) {
      const r = await send("a@flood.test", `flood-${i}`, FLOOD_MESSAGE);
      if (/^250 /.test(r)) accepted.push(`flood-${i}`);
      else refusal = r;
    }
    t.diagnostic(`flood: ${accepted.length} accepted, then: ${refusal}`);
    assert.match(refusal, /^452 4\.3\.1 /, "refused with 452 4.3.1");
    assert.ok(accepted.length >= 8, `the volume took mail before the reserve (${accepted.length})`);
    // what the attack achieved, compared at the end as a whole (each part reported)
    const outcome: Record<string, unknown> = {};

    // the attacker keeps sending (small messages fit in any page a delivery frees) while the queued
    // mail's next hops come back: the victim's recipients bounce, p1 is delivered
    let flooding = true;
    let refusedMore = 0;
    const flooder = async (n: number): Promise<void> => {
      for (let i = 0; flooding; i++) {
        const r = await send("a@flood.test", `more-${n}-${i}`, 2048);
        if (/^250 /.test(r)) accepted.push(`more-${n}-${i}`);
        else {
          refusedMore++;
          await new Promise((res) => setTimeout(res, 20));
        }
      }
    };
    const flooders = [flooder(0), flooder(1)];
    refuseVictim = true;
    victim.setDown(false);
    later.setDown(false);
    await waitFor(
      "both DSNs at the sender",
      () => (dsnsFor(owner, "x@victim.test") && dsnsFor(owner, "p2@victim.test") ? true : undefined),
      15_000,
    ).catch(() => undefined);
    await waitFor("p1 delivered", () => (idsAt(later).has("partial") ? true : undefined), 15_000).catch(
      () => undefined,
    );
    outcome.dsnsWhileFlooded = {
      "x@victim.test": dsnsFor(owner, "x@victim.test"),
      "p2@victim.test": dsnsFor(owner, "p2@victim.test"),
    };
    flooding = false;
    await Promise.all(flooders);
    t.diagnostic(`while flooded: ${refusedMore} sends refused`);
    const writeErrors = [
      ...new Set(
        logs.lines
          .filter((l) => /ENOSPC|EDQUOT|short write/.test(String(l.err)))
          .map((l) => `${String(l.msg)}: ${String(l.err)}`.slice(0, 120)),
      ),
    ];
    outcome.failedWrites = writeErrors;
    // refused at MAIL FROM (its SIZE= counted), before any of its data is read or written; a message
    // whose body would take the reserve all the same is refused at the end of DATA (nothing written)
    const refusedAtMail = await count(relay.metrics.rejected, { reason: "MAIL:452" });
    outcome.refusedAtMail = refusedAtMail > 0;
    // counted, and logged when the reserve's state changes (entered, left), not per refused message
    outcome.refusalsCounted = /queue_storage_refusals_total\{stage="MAIL"\} [1-9]/.test(
      await relay.metrics.registry.metrics(),
    );
    const reserveLines = logs.lines.filter((l) => l.event === "queue-reserve").map((l) => String(l.state));
    t.diagnostic(`reserve log lines: ${reserveLines.join(", ")}`);
    outcome.reserveLogged = reserveLines[0] === "entered" && reserveLines.length < refusedMore;

    // a restart on the flooded volume: every accepted message still queued, p1 not delivered again
    const depth = relay.status().queue.depth;
    outcome.queuedBeforeRestart = depth - accepted.length; // bounce-me and partial done: none else
    await relay.stop();
    ({ relay, logs } = await f.start());
    await waitFor("the queue loaded", () => (relay.status().recovering ? undefined : true));
    outcome.queuedAfterRestart = relay.status().queue.depth - accepted.length;
    await new Promise((r) => setTimeout(r, 1500)); // a retry round (retry.max 1 s) for p1, were it pending
    outcome.p1Copies = idsAt(later).get("partial") ?? 0;

    // the flood's hop comes back: the queue drains, every message answered 250 delivered once
    flood.setDown(false);
    await waitFor(
      "the queue empty",
      () => (relay.status().queue.depth === 0 ? true : undefined),
      30_000,
    ).catch(() => undefined);
    outcome.leftQueued = relay.status().queue.depth;
    const got = idsAt(flood);
    outcome.floodNotDeliveredOnce = accepted.filter((id) => got.get(id) !== 1);
    outcome.dsns = {
      "x@victim.test": dsnsFor(owner, "x@victim.test"),
      "p2@victim.test": dsnsFor(owner, "p2@victim.test"),
    };
    t.diagnostic(`outcome: ${JSON.stringify(outcome)}`);
    assert.deepEqual(outcome, {
      refusedAtMail: true,
      refusalsCounted: true,
      reserveLogged: true,
      // the bounces' DSNs are queued and sent while the volume is flooded
      dsnsWhileFlooded: { "x@victim.test": 1, "p2@victim.test": 1 },
      // no write of the queue failed for want of space
      failedWrites: [],
      // every message answered 250 is queued, before and after a restart
      queuedBeforeRestart: 0,
      queuedAfterRestart: 0,
      // the delivered recipient's state was written: not delivered again after the restart
      p1Copies: 1,
      // the queue drains: every message delivered once, one DSN per bounce
      leftQueued: 0,
      floodNotDeliveredOnce: [],
      dsns: { "x@victim.test": 1, "p2@victim.test": 1 },
    });
  });
});
