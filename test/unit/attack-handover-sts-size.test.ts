// Attack review (session 19, MTA-STS handover): a handover carries the enforce policies the draining
// pod cached for the message's recipient domains (relay/queue/handover.ts s=, under the MAC). A
// policy is whatever its domain publishes, up to the 64 KiB a fetch reads (relay/outbound/mta-sts.ts),
// and a message may go to up to MAX_CARRIED domains. Whoever controls a few recipient domains (their
// own, or the partners a message is sent to) decides how long s= gets. The receiving pod holds and
// scans only the first MAX_SCAN bytes of the header section for the handover header: of an s= longer
// than that, what follows passes into the message as stray continuation lines, the MAC does not
// verify, and the handover of that message is refused: it stays on the draining pod's volume, its
// other recipients with it. Also: the first line of a folded header with a real queue id and both
// trust flags is longer than 998 octets (RFC 5322 2.1.1). The fix: a handover carries only what fits in
// a few KiB (stsOf), which a partner's policy of a few lines does; the handover always verifies.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { DataChecks } from "../../relay/inbound/data-checks.js";
import { parseStsPolicy } from "../../relay/outbound/mta-sts.js";
import { handoverHeader, handoverVerdict, messageDigest } from "../../relay/queue/handover.js";
import { newQueueId } from "../../relay/queue/spool.js";

const now = Date.parse("2030-01-01T00:00:00.000Z");

/** A policy its domain may publish: 250 mx patterns of 253 octets, under the 64 KiB a fetch reads. */
function bigPolicy(domain: string) {
  const label = "m".repeat(63);
  const mx = Array.from(
    { length: 250 },
    (_, i) => `${String(i).padStart(3, "0")}${label.slice(3)}.${label}.${label}.${label.slice(2)}`,
  );
  const text = `version: STSv1\nmode: enforce\n${mx.map((m) => `mx: ${m}\n`).join("")}max_age: 604800\n`;
  assert.ok(Buffer.byteLength(text) <= 64 * 1024, `policy of ${Buffer.byteLength(text)} octets`);
  const parsed = parseStsPolicy(text);
  assert.ok(parsed.ok);
  assert.ok(mx.every((m) => m.length === 253));
  return { domain, id: "20300101T000000", fetchedAt: now - 60_000, policy: parsed.value };
}

/** The fleet session's DATA as server.ts reads it (DataChecks, digesting), in SMTP-sized chunks. */
async function received(message: string) {
  const b = Buffer.from(message, "latin1");
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += 16 * 1024) parts.push(b.subarray(i, i + 16 * 1024));
  const c = DataChecks.over(Readable.from(parts), true, 50);
  const out: Buffer[] = [];
  for await (const x of c) out.push(x as Buffer);
  return { found: c.found, digest: c.digest.hex(), violation: c.violation };
}

describe("attack: the MTA-STS policies a handover carries (s=) against the receiver's header scan", () => {
  const body = "From: app@local.test\r\nSubject: s\r\n\r\nbody\r\n";
  const to = ["bob@p1.test", "carol@p2.test", "dave@p3.test", "erin@p4.test", "frank@ordinary.test"];
  const env = {
    id: newQueueId(now),
    queuedAt: now - 1_000,
    from: "app@local.test",
    to,
    requireTls: false,
    digest: messageDigest(Buffer.from(body)),
  };

  it("four recipient domains publishing large (64 KiB) enforce policies: the handover still verifies", async () => {
    // a partner's policy of a few lines travels; one near a fetch's limit is its owner's doing (an
    // attacker on the path cannot lengthen it) and would sit in the receiver's memory with every
    // handed-over message to that domain: left to the receiver's own fetch (handover.ts stsOf)
    const partner = {
      ...bigPolicy("ordinary.test"),
      policy: { ...bigPolicy("ordinary.test").policy, mx: ["mx.ordinary.test"] },
    };
    const sts = [...["p1.test", "p2.test", "p3.test", "p4.test"].map(bigPolicy), partner];
    const header = handoverHeader("k", { ...env, signable: true, sts });
    const r = await received(header + body);
    assert.equal(r.violation, undefined);
    const v = handoverVerdict({
      fleetSession: true,
      key: "k",
      found: r.found,
      ...env,
      digest: r.digest,
      now,
    });
    assert.equal(
      v.ok,
      true,
      `handover of a ${header.length}-octet header refused: ${v.ok ? "" : v.reason} (the message and its ordinary recipient stay on the draining pod)`,
    );
    assert.deepEqual(v.ok && v.sts, [partner]);
    assert.ok(header.length < 8 * 1024, `a ${header.length}-octet header`);
  });

  it("a real queue id and both trust flags: no line of the folded header is 998 octets or more", () => {
    // as many policies of a few long mx patterns as a header carries: s= folded over several lines
    const sts = Array.from({ length: 12 }, (_, i) => ({
      domain: `p${i}.test`,
      id: "20300101T000000",
      fetchedAt: now,
      policy: {
        version: "STSv1" as const,
        mode: "enforce" as const,
        mx: [1, 2, 3].map((n) => `mx${n}.${"m".repeat(50)}.p${i}.test`),
        maxAge: 604_800,
      },
    }));
    const header = handoverHeader("k", { ...env, signable: true, tlsRequiredNoTrusted: true, sts });
    assert.ok(header.split("\r\n").length > 4, "s= folded");
    const lengths = header.split("\r\n").map((l) => l.length);
    assert.ok(
      lengths.every((n) => n < 998),
      `line lengths ${lengths.slice(0, 3).join(", ")}, ...`,
    );
  });
});
