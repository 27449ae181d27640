// Issue 15 finding 4: which next hops are the relay itself (relay/outbound/loop.ts), and the
// Received: count of relay/inbound/trace.ts over chunk boundaries.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { HopCounter } from "../../relay/inbound/trace.js";
import { isSelfHop, withoutSelf, type SelfView } from "../../relay/outbound/loop.js";

const view: SelfView = {
  hostname: "relay.example.com",
  listeners: [
    { host: "0.0.0.0", port: 25 },
    { host: "10.0.0.7", port: 587 },
  ],
  interfaceAddresses: ["10.0.0.7", "fd00::7"],
};
const hop = (name: string, address: string, port = 25) => ({ name, address, port });

describe("mail to myself (finding 4)", () => {
  it("a hop on a listener's port at one of the host's addresses, or named as the relay, is the relay", () => {
    assert.equal(isSelfHop(view, hop("mx.partner.example", "10.0.0.7")), true);
    assert.equal(isSelfHop(view, hop("mx.partner.example", "127.0.0.53")), true);
    assert.equal(isSelfHop(view, hop("mx.partner.example", "fd00::7")), true);
    assert.equal(isSelfHop(view, hop("mx.partner.example", "::ffff:10.0.0.7")), true);
    assert.equal(isSelfHop(view, hop("Relay.Example.com.", "192.0.2.1")), true);
    // attack: spellings of myself that are not "127.x" strings
    for (const a of ["0.0.0.0", "::", "::ffff:0.0.0.0", "::ffff:7f00:1", "0:0:0:0:0:0:0:1", "FD00:0::7"])
      assert.equal(isSelfHop(view, hop("mx.partner.example", a)), true, a);
    assert.equal(isSelfHop(view, hop("mx.partner.example", "192.0.2.1")), false);
    assert.equal(isSelfHop(view, hop("mx.partner.example", "10.0.0.7", 2525)), false);
    assert.equal(
      isSelfHop(view, hop("mx.partner.example", "127.0.0.1", 587)),
      false,
      "587 listens on 10.0.0.7 only",
    );
    assert.equal(isSelfHop(view, hop("mx.partner.example", "::ffff:a00:7", 587)), true);
    assert.equal(isSelfHop(view, hop("mx.partner.example", "0.0.0.0", 587)), false, "reaches 127.0.0.1");
  });

  it("an address in front of the pod (its Service's ClusterIP or load balancer) is myself on the listeners' ports (15.4)", () => {
    const behind: SelfView = { ...view, proxyAddresses: ["10.96.0.25", "203.0.113.9", "2001:db8::25"] };
    for (const [a, port] of [
      ["10.96.0.25", 25],
      ["203.0.113.9", 25],
      ["::ffff:203.0.113.9", 25],
      ["2001:DB8:0::25", 587],
    ] as const)
      assert.equal(isSelfHop(behind, hop("mx.partner.example", a, port)), true, `${a}:${port}`);
    assert.equal(isSelfHop(behind, hop("mx.partner.example", "203.0.113.10")), false);
    // a load balancer address shared with another Service: its other ports are someone else
    assert.equal(isSelfHop(behind, hop("smarthost.example", "203.0.113.9", 2525)), false);
    assert.equal(isSelfHop(view, hop("mx.partner.example", "203.0.113.9")), false, "without the list");
  });

  it("the relay and the less preferred MX after it are dropped; as the best MX it bounces (loops back to myself)", () => {
    const self = (h: { address: string }) => h.address === "10.0.0.7";
    const a = hop("mx1", "192.0.2.1");
    const me = hop("mx2", "10.0.0.7");
    const c = hop("mx3", "192.0.2.3");
    assert.deepEqual(withoutSelf("d.example", [a, me, c], self), { ok: true, value: [a] });
    const r = withoutSelf("d.example", [me, c], self);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.temporary, false);
    assert.equal(!r.ok && r.message, "mail for d.example loops back to myself");
  });
});

async function count(chunks: string[], limit: number): Promise<{ hops: number; error?: string }> {
  const h = HopCounter.over(Readable.from(chunks.map((c) => Buffer.from(c))), limit);
  try {
    for await (const _ of h) void _;
    return { hops: h.hops };
  } catch (e) {
    return { hops: h.hops, error: (e as Error).message };
  }
}

describe("Received: count (finding 4)", () => {
  it("counts Received: header lines only (any case, split across chunks), not in the body", async () => {
    const msg =
      "Received: a\r\n\tfolded\r\nRECEIVED: b\r\nX-Received: no\r\nSubject: x\r\n\r\nReceived: body\r\n";
    assert.deepEqual(await count([msg], 50), { hops: 2 });
    assert.deepEqual(await count(msg.split(""), 50), { hops: 2 });
  });
  it("fails at the limit with 554 5.4.6", async () => {
    const r = await count(["Received: 1\r\nReceived: 2\r\nReceived: 3\r\n\r\nbody"], 3);
    assert.match(r.error ?? "", /^5\.4\.6 Too many hops/);
  });
});
