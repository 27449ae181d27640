// The DNS phase of one attempt (relay/outbound/attempt-limits.ts, mx.ts): at most MX_NAMES_MAX MX
// names, every lookup ended by the attempt's deadline (DNS review, round 7: 40 silent MX names held
// a worker for minutes).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MX_NAMES_MAX } from "../../relay/outbound/attempt-limits.js";
import { resolveHops, type Dns } from "../../relay/outbound/mx.js";

function fakeDns(names: number, answer: (name: string) => Promise<string[]>): Dns & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolveMx: () =>
      Promise.resolve(
        Array.from({ length: names }, (_, i) => ({ exchange: `mx${i}.hostile.test`, priority: i })),
      ),
    resolve4: (name) => {
      asked.push(name);
      return answer(name);
    },
    resolve6: () => Promise.reject(Object.assign(new Error("no AAAA"), { code: "ENODATA" })),
  };
}

describe("MX resolution within an attempt's bounds", () => {
  it(`looks at most at ${MX_NAMES_MAX} names when none resolves`, async () => {
    const dns = fakeDns(40, () => Promise.reject(Object.assign(new Error("no A"), { code: "ENOTFOUND" })));
    const r = await resolveHops("hostile.test", undefined, dns, 25);
    assert.equal(r.ok ? "ok" : r.code, "MX_UNRESOLVABLE");
    assert.equal(dns.asked.length, MX_NAMES_MAX);
  });

  it("a lookup that never answers ends at the deadline: ATTEMPT_TIMEOUT", async () => {
    const dns = fakeDns(40, () => new Promise<string[]>(() => undefined));
    const deadline = new AbortController();
    const pending = resolveHops("hostile.test", undefined, dns, 25, deadline.signal);
    while (!dns.asked.length) await new Promise((r) => setImmediate(r)); // the first name is asked
    deadline.abort();
    const r = await pending;
    assert.equal(r.ok ? "ok" : r.code, "ATTEMPT_TIMEOUT");
    assert.equal(dns.asked.length, 1);
  });
});
