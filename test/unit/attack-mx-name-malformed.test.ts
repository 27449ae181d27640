// Attack (session 19's "noticed"): a recipient domain's DNS names its mail exchangers with names no
// host can have: a space, a line break, a backslash ("mx evil.partner.test", "mx\r\nX: y"). The
// system resolver (c-ares) refuses to look such a name up (EBADNAME), but the relay's own DNSSEC
// client, which mode dane reads, asks for any bytes it is given, and the name then travels as the
// hop's name into the TLS handshake's SNI, the log, the DSN's Remote-MTA and the TLS-RPT report.
// Postfix's dns_lookup.c (valid_rr_name) skips an MX whose name is not a valid host name; so does the
// relay now, on both paths (relay/outbound/mx.ts mxHostName).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type * as packet from "dns-packet";
import { resolveDane } from "../../relay/outbound/dane.js";
import type { SecureAnswer, SecureDns } from "../../relay/outbound/dnssec.js";
import { mxHostName, resolveHops, type Dns } from "../../relay/outbound/mx.js";

const MALFORMED = [
  "mx evil.partner.test",
  "mx\r\nX-Injected: yes.partner.test",
  "mx\\010evil.partner.test",
  "-mx.partner.test",
  "mx.partner.123",
];

function secure(answers: packet.Answer[]): SecureAnswer {
  return { rcode: "NOERROR", secure: true, answers, finalName: "" };
}

/** A DNSSEC resolver that answers every name it is asked, as an attacker's signed zone would. */
function attackerZone(exchanges: string[]): SecureDns & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    query(name, type) {
      asked.push(`${name} ${type}`);
      if (type === "MX")
        return Promise.resolve({
          ...secure(
            exchanges.map((exchange, i) => ({ type: "MX", name, data: { preference: i, exchange } })),
          ),
          finalName: name,
        });
      if (type === "A")
        return Promise.resolve({ ...secure([{ type: "A", name, data: "192.0.2.7" }]), finalName: name });
      return Promise.resolve({ rcode: "NXDOMAIN", secure: true, answers: [], finalName: name });
    },
  };
}

/** The same zone through the plain resolver, which (unlike c-ares) resolves whatever it is asked. */
function plainZone(exchanges: string[]): Dns & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolveMx: () => Promise.resolve(exchanges.map((exchange, i) => ({ exchange, priority: i }))),
    resolve4: (name) => {
      asked.push(name);
      return Promise.resolve(["192.0.2.7"]);
    },
    resolve6: () => Promise.reject(Object.assign(new Error("none"), { code: "ENODATA" })),
  };
}

describe("attack: MX names that are no host names", () => {
  it("mxHostName keeps host names (an underscore too, as Postfix) and numeric names, nothing else", () => {
    for (const bad of MALFORMED) assert.equal(mxHostName(bad), undefined, JSON.stringify(bad));
    assert.equal(mxHostName("mx1.partner.test."), "mx1.partner.test");
    assert.equal(mxHostName("mx_1.partner.test"), "mx_1.partner.test");
    assert.equal(mxHostName("192.0.2.7"), "192.0.2.7");
    assert.equal(mxHostName(`${"a".repeat(64)}.partner.test`), undefined);
  });

  it("mode dane: a malformed preferred MX is skipped, the valid one is used", async () => {
    for (const bad of MALFORMED) {
      const dns = attackerZone([bad, "mx.partner.test"]);
      const r = await resolveDane("partner.test", undefined, dns, 25);
      assert.ok(r.ok, JSON.stringify(bad));
      assert.deepEqual(
        r.value.hops.map((h) => h.hop.name),
        ["mx.partner.test"],
        `${JSON.stringify(bad)} was taken as a next hop`,
      );
      assert.ok(!dns.asked.some((q) => q.startsWith(bad)), `${JSON.stringify(bad)} was looked up`);
    }
  });

  it("mode dane: only malformed names: nothing to connect to (MX_UNRESOLVABLE, temporary)", async () => {
    const r = await resolveDane("partner.test", undefined, attackerZone(MALFORMED), 25);
    assert.equal(r.ok ? "ok" : r.code, "MX_UNRESOLVABLE");
    assert.equal(!r.ok && r.temporary, true);
    assert.match(!r.ok ? r.message : "", /not a host name/);
  });

  it("the plain resolver's path skips them as well", async () => {
    const dns = plainZone([...MALFORMED, "mx.partner.test"]);
    const r = await resolveHops("partner.test", undefined, dns, 25);
    assert.ok(r.ok);
    assert.deepEqual([...new Set(r.value.map((h) => h.name))], ["mx.partner.test"]);
    assert.deepEqual(dns.asked, ["mx.partner.test"]);
    const none = await resolveHops("partner.test", undefined, plainZone(MALFORMED), 25);
    assert.equal(none.ok ? "ok" : none.code, "MX_UNRESOLVABLE");
    assert.match(!none.ok ? none.message : "", /not a host name/);
  });
});
