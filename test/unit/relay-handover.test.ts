// relay/queue/handover.ts's HandoverFilter (issue 15.2): the handover header is removed from the header
// section wherever it is (also folded, any case, the legacy name), never from the body, whatever the
// chunking; the digest it computes is the sender's messageDigest of what is left. Pure.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { carriedPolicy, parseStsPolicy } from "../../relay/outbound/mta-sts.js";
import {
  HandoverFilter,
  handoverHeader,
  handoverVerdict,
  messageDigest,
} from "../../relay/queue/handover.js";

async function filter(message: string, chunk: number) {
  const f = new HandoverFilter();
  const b = Buffer.from(message, "latin1");
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += chunk) parts.push(b.subarray(i, i + chunk));
  const out: Buffer[] = [];
  for await (const c of Readable.from(parts).pipe(f)) out.push(c as Buffer);
  return { out: Buffer.concat(out).toString("latin1"), found: f.found, digest: f.digest.hex() };
}

describe("HandoverFilter", () => {
  const body = "Subject: s\r\nX-Other: y\r\n\r\nX-Sealpost-Handover: in the body stays\r\nline\r\n";
  for (const chunk of [1, 3, 7, 64, 100_000])
    it(`strips the header section's handover headers only (chunks of ${chunk})`, async () => {
      const msg =
        "X-Sealpost-Handover: v=1; id=a;\r\n t=x; mac=m\r\nReceived: r\r\nx-sealpost-queued-at: old\r\n" +
        body;
      const r = await filter(msg, chunk);
      assert.equal(r.out, "Received: r\r\n" + body);
      assert.deepEqual(
        r.found.map((f) => f.name.toLowerCase()),
        ["x-sealpost-handover", "x-sealpost-queued-at"],
      );
      assert.equal(r.found[0]!.value, "v=1; id=a; t=x; mac=m");
      assert.equal(r.digest, messageDigest(Buffer.from("Received: r\r\n" + body, "latin1")));
    });

  it("passes a message without the header unchanged, also one without a header section", async () => {
    assert.equal((await filter(body, 5)).out, body);
    const bare = "\r\nX-Sealpost-Handover: body\r\n";
    const r = await filter(bare, 4);
    assert.equal(r.out, bare);
    assert.deepEqual(r.found, []);
  });

  it("the digest ignores trailing line breaks (SMTP's end of data)", () => {
    assert.equal(messageDigest(Buffer.from("a\r\nb\r\n")), messageDigest(Buffer.from("a\r\nb")));
    assert.notEqual(messageDigest(Buffer.from("a\r\nb")), messageDigest(Buffer.from("a\r\nc")));
  });
});

describe("the MTA-STS policies a handover carries (s=, under the MAC)", () => {
  const now = Date.parse("2030-01-01T00:00:00.000Z");
  const policy = (domain: string, mx = [`mx.${domain}`]) => ({
    domain,
    id: "20300101T000000",
    fetchedAt: now - 60_000,
    policy: { version: "STSv1" as const, mode: "enforce" as const, mx, maxAge: 604_800 },
  });
  const body = "Subject: s\r\n\r\nbody\r\n";
  const env = {
    id: "q1",
    queuedAt: now - 1_000,
    from: "a@local.test",
    to: Array.from({ length: 12 }, (_, i) => `bob@p${i}.test`),
    requireTls: false,
    digest: messageDigest(Buffer.from(body)),
  };
  const sts = env.to.map((a) => policy(a.split("@")[1]!, ["mx1.example", "*.mx.example", "mx2.example"]));
  const verdictOf = async (header: string) => {
    const r = await filter(header + body, 50);
    return handoverVerdict({ fleetSession: true, key: "k", found: r.found, ...env, now });
  };

  it("travel folded (no line of 998 bytes or more) and come back as sent", async () => {
    const header = handoverHeader("k", { ...env, sts });
    assert.ok(header.length > 2_000);
    assert.ok(header.split("\r\n").every((l) => l.length < 998));
    const v = await verdictOf(header);
    assert.deepEqual(v, { ok: true, queuedAt: env.queuedAt, sts });
  });

  it("attack: a policy changed on the way (or added to a header without one) does not verify", async () => {
    const header = handoverHeader("k", { ...env, sts: [policy("p0.test")] });
    const forged = handoverHeader("k", { ...env, sts: [policy("p0.test", ["mx.attacker.test"])] });
    const s = (h: string) => /; s=([^;]+);/.exec(h)![1]!;
    assert.equal((await verdictOf(header.replace(s(header), s(forged)))).ok, false);
    const bare = handoverHeader("k", env);
    assert.equal((await verdictOf(bare.replace("; mac=", `; s=${s(forged)}; mac=`))).ok, false);
  });

  it("only enforce policies of the recipients' domains are taken", async () => {
    const testing = {
      ...policy("p1.test"),
      policy: { ...policy("p1.test").policy, mode: "testing" as const },
    };
    const v = await verdictOf(
      handoverHeader("k", {
        ...env,
        sts: [policy("p0.test"), policy("elsewhere.test"), testing, { ...policy("p2.test"), id: "bad id" }],
      }),
    );
    assert.deepEqual(v.ok && v.sts, [policy("p0.test")]);
  });
});

describe("attack (session review): a carried policy the sender enforced is the receiver's too", () => {
  it("an mx pattern the policy parser takes (an underscore, a trailing dot) is not dropped", () => {
    const text =
      "version: STSv1\nmode: enforce\nmx: mx_1.partner.test\nmx: *.mail.partner.test.\nmax_age: 86400\n";
    const parsed = parseStsPolicy(text);
    assert.ok(parsed.ok);
    const carried = { domain: "partner.test", id: "abc123", fetchedAt: Date.now(), policy: parsed.value };
    assert.deepEqual(carriedPolicy(carried), carried);
  });

  it("a line break in a pattern never makes another line of the policy", () => {
    const p = { version: "STSv1", mode: "enforce", mx: ["mx.partner.test\nmode: none"], maxAge: 86400 };
    assert.equal(carriedPolicy({ domain: "partner.test", id: "abc123", fetchedAt: 1, policy: p }), undefined);
  });
});
