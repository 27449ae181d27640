// Session 18, outbound review: a domain's DNS may name its MX by an IPv6 literal (a single label such
// as "64:ff9b:0:0:0:0:a00:5": DNS labels may hold ':'), and mx.ts connects to such a name as an
// address, without a lookup. The destination filter (relay/net/address-class.ts) reads an address
// in the NAT64 well-known prefix 64:ff9b::/96 as the IPv4 address it embeds, but recognised only the
// two spellings with "::" right after the prefix; the same address written out in full, or with the
// zeros elsewhere, was "public". Behind a NAT64 gateway that translates to private IPv4 (a cloud NAT
// gateway reaches the VPC's own addresses that way) the relay delivered a hostile domain's mail to
// an internal SMTP service at 10.0.0.5, which the filter exists to prevent (issue 22 finding 4).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressClass, DestinationFilter, filterHops } from "../../relay/net/address-class.js";
import { resolveHops, type Dns } from "../../relay/outbound/mx.js";

/** Every spelling of the NAT64 well-known prefix with 10.0.0.5 embedded (RFC 4291 section 2.2). */
const SPELLINGS = [
  "64:ff9b::a00:5",
  "64:ff9b::10.0.0.5",
  "64:ff9b:0:0:0:0:a00:5",
  "64:ff9b:0:0:0:0:10.0.0.5",
  "64:ff9b:0::a00:5",
  "64:ff9b::0:0:a00:5",
  "64:ff9b:0000:0000:0000:0000:0a00:0005",
  "64:FF9B:0:0:0:0:A00:5",
];

describe("attack: a NAT64 address spelled without '::' passes the destination filter", () => {
  it("every spelling of 64:ff9b::10.0.0.5 is read as the private address it embeds", () => {
    for (const ip of SPELLINGS) assert.equal(addressClass(ip), "private", ip);
    assert.equal(addressClass("64:ff9b:0:0:0:0:a9fe:a9fe"), "link-local");
    assert.equal(addressClass("64:ff9b:0:0:0:0:7f00:1"), "loopback");
    // a public IPv4 address behind the prefix stays public (what NAT64 is for)
    assert.equal(addressClass("64:ff9b:0:0:0:0:5db8:d822"), "public");
  });

  it("an MX named by such a literal is refused (MX_ADDRESS_FORBIDDEN), never connected to", async () => {
    const dns: Dns = {
      resolveMx: () => Promise.resolve([{ exchange: "64:ff9b:0:0:0:0:a00:5", priority: 10 }]),
      resolve4: () => Promise.reject(Object.assign(new Error("no"), { code: "ENODATA" })),
      resolve6: () => Promise.reject(Object.assign(new Error("no"), { code: "ENODATA" })),
    };
    const hops = await resolveHops("evil.test", undefined, dns, 25);
    assert.ok(hops.ok, "the literal is taken as the MX's address");
    const usable = filterHops(hops.value, new DestinationFilter([]), "evil.test");
    assert.equal(usable.ok, false, `hops kept: ${JSON.stringify(usable.ok && usable.value)}`);
    assert.equal(!usable.ok && usable.code, "MX_ADDRESS_FORBIDDEN");
  });
});
