// Next-hop resolution against a fake resolver (no I/O): MX preference order, the RFC 5321 A/AAAA
// fallback when there is no MX, null MX, NXDOMAIN vs. temporary DNS failures, explicit next hops.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveHops, type Dns } from "../../relay/outbound/mx.js";

const err = (code: string) => Object.assign(new Error(code), { code });

function fakeDns(zone: {
  mx?: Record<string, { exchange: string; priority: number }[] | string>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
}): Dns {
  const answer = <T>(v: T | string | undefined): Promise<T> =>
    typeof v === "string"
      ? Promise.reject(err(v))
      : v === undefined
        ? Promise.reject(err("ENODATA"))
        : Promise.resolve(v);
  return {
    resolveMx: (n) => answer(zone.mx?.[n]),
    resolve4: (n) => answer(zone.a?.[n]),
    resolve6: (n) => answer(zone.aaaa?.[n]),
  };
}

describe("next hops", () => {
  it("MX records in preference order, each resolved", async () => {
    const dns = fakeDns({
      mx: {
        "partner.test": [
          { exchange: "mx2.partner.test", priority: 20 },
          { exchange: "mx1.partner.test", priority: 10 },
        ],
      },
      a: { "mx1.partner.test": ["192.0.2.1"], "mx2.partner.test": ["192.0.2.2"] },
      aaaa: { "mx1.partner.test": ["2001:db8::1"] },
    });
    const r = await resolveHops("partner.test", undefined, dns, 2525);
    assert.ok(r.ok);
    assert.deepEqual(r.value, [
      { name: "mx1.partner.test", address: "192.0.2.1", port: 2525 },
      { name: "mx1.partner.test", address: "2001:db8::1", port: 2525 },
      { name: "mx2.partner.test", address: "192.0.2.2", port: 2525 },
    ]);
  });
  it("no MX: the domain's own address (implicit MX)", async () => {
    const r = await resolveHops("bare.test", undefined, fakeDns({ a: { "bare.test": ["192.0.2.9"] } }));
    assert.ok(r.ok);
    assert.deepEqual(r.value, [{ name: "bare.test", address: "192.0.2.9", port: 25 }]);
  });
  it("null MX is permanent", async () => {
    const r = await resolveHops(
      "null.test",
      undefined,
      fakeDns({ mx: { "null.test": [{ exchange: "", priority: 0 }] } }),
    );
    assert.deepEqual(r.ok ? undefined : [r.code, r.temporary], ["NULL_MX", false]);
  });
  it("NXDOMAIN is permanent, SERVFAIL/timeout temporary", async () => {
    const nx = await resolveHops("gone.test", undefined, fakeDns({ mx: { "gone.test": "ENOTFOUND" } }));
    assert.deepEqual(nx.ok ? undefined : [nx.code, nx.temporary], ["DOMAIN_NOT_FOUND", false]);
    const sf = await resolveHops("flaky.test", undefined, fakeDns({ mx: { "flaky.test": "ESERVFAIL" } }));
    assert.deepEqual(sf.ok ? undefined : [sf.code, sf.temporary], ["DNS_FAILED", true]);
  });
  it("MX without addresses is temporary", async () => {
    const r = await resolveHops(
      "p.test",
      undefined,
      fakeDns({ mx: { "p.test": [{ exchange: "mx.p.test", priority: 0 }] } }),
    );
    assert.deepEqual(r.ok ? undefined : [r.code, r.temporary], ["MX_UNRESOLVABLE", true]);
  });
  it("explicit next hop: an IP as is; a name through the resolver", async () => {
    const ip = await resolveHops("x.test", { host: "192.0.2.5", port: 2525 }, fakeDns({}));
    assert.ok(ip.ok);
    assert.deepEqual(ip.value, [{ name: "192.0.2.5", address: "192.0.2.5", port: 2525 }]);
    const named = await resolveHops(
      "x.test",
      { host: "smtp.x.test", port: 587 },
      fakeDns({ a: { "smtp.x.test": ["192.0.2.6"] } }),
    );
    assert.ok(named.ok);
    assert.deepEqual(named.value, [{ name: "smtp.x.test", address: "192.0.2.6", port: 587 }]);
  });
});
