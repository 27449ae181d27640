// Session 18 (the durability review's note): a draining pod hands each queued message to a fleet
// peer with its queue time under the fleet's MAC (relay/queue/handover.ts), and the peer refused a
// queue time in its own future. Two nodes' clocks are never the same: a draining pod on a node a few
// milliseconds ahead had the messages it queued last refused (550), so they stayed on its volume,
// the drain ended incomplete and the volume was reported orphaned, its mail undelivered until an
// administrator scaled up again. A queue time ahead of the receiver's clock now counts as the
// receiver's now: the message is taken, and can only look younger by nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { handoverHeader, handoverVerdict, messageDigest } from "../../relay/queue/handover.js";

const body = Buffer.from("Subject: s\r\n\r\nbody\r\n");
const t = Date.parse("2030-05-06T07:08:09.123Z");
const env = { id: "q1", queuedAt: t, from: "a@b.test", to: ["x@p.test"], requireTls: false };
const line = handoverHeader("k", { ...env, digest: messageDigest(body) }).replace(/\r\n$/, "");
const verdictAt = (now: number) =>
  handoverVerdict({
    fleetSession: true,
    key: "k",
    found: [{ name: "X-Sealpost-Handover", value: line.slice(line.indexOf(":") + 1).trim() }],
    from: env.from,
    to: env.to,
    requireTls: false,
    digest: messageDigest(body),
    now,
  });

describe("attack: a fleet peer's clock a little ahead strands the messages it queued last", () => {
  it("a queue time 50 ms ahead of the receiver's clock is taken, as queued now", () => {
    assert.deepEqual(verdictAt(t - 50), { ok: true, queuedAt: t - 50 });
  });

  it("a queue time in the past is kept as it is", () => {
    assert.deepEqual(verdictAt(t + 60_000), { ok: true, queuedAt: t });
  });
});
