// Pure relay decisions, table-tested: policy matching, transport options per TLS mode, inbound
// requirement resolution, relaying, backoff, DSN composition, AUTH comparison.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkReferences } from "../../relay/contract/config-checks.js";
import { RelayConfig, type RelayConfigInput } from "../../relay/contract/config.js";
import { canonicalDomain, domainOf, matchSpecificity } from "../../relay/contract/domains.js";
import { composeDsn, headerBlock, statusFromReply } from "../../relay/dsn.js";
import { REPLY_TEXT_MAX, replyText } from "../../relay/reply-text.js";
import { authenticate, constantTimeEqual } from "../../relay/inbound/auth.js";
import { mayRelay } from "../../relay/inbound/authority.js";
import {
  checkMailFrom,
  checkRecipient,
  compileInbound,
  decideInbound,
  requirementOf,
  type CompiledInbound,
} from "../../relay/inbound/rules.js";
import { BlockList } from "node:net";
import {
  canonicalCidr,
  CidrSet,
  cidrsOverlap,
  cidrWithin,
  holdsMappedBlock,
  parseCidr,
  type Cidr,
} from "../../relay/contract/cidr.js";
import { isNullMx, sortMx } from "../../relay/outbound/mx.js";
import { groupRecipients, matchPolicy, routeFor } from "../../relay/outbound/route.js";
import { serverNameChecker as identityChecker } from "../../relay/outbound/server-names.js";
import { planTransport } from "../../relay/outbound/transport-options.js";
import { resolveTlsPolicy } from "../../relay/outbound/tls-policy.js";
import { backoffSeconds, expired } from "../../relay/queue/backoff.js";
import { certificateProblemOf } from "../../relay/outbound/certificate-problem.js";
import { classifyConnectError } from "../../relay/outbound/deliver.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

function config(patch: Partial<RelayConfigInput> = {}): RelayConfig {
  return RelayConfig.parse({
    version: 1,
    relay: "mail/edge",
    hostname: "relay.example.com",
    listeners: {},
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    inbound: { localDomains: ["example.com"] },
    queue: { dir: "/var/spool/sealpost" },
    ...patch,
  });
}

const pol = (
  name: string,
  domains: string[],
  mode: PolicyInput["outbound"]["tls"]["mode"] = "verify",
  extra: Partial<PolicyInput> = {},
): PolicyInput => ({
  name,
  domains,
  outbound: { tls: { mode } },
  ...extra,
});

describe("domain patterns", () => {
  const cases: [string, string, boolean][] = [
    ["partner.example", "partner.example", true],
    ["partner.example", canonicalDomain("PARTNER.example.")!, true],
    ["partner.example", "a.partner.example", false],
    ["*.partner.example", "a.partner.example", true],
    ["*.partner.example", "a.b.partner.example", true],
    ["*.partner.example", "partner.example", false],
    ["*.partner.example", "xpartner.example", false],
  ];
  for (const [p, d, want] of cases)
    it(`${p} ${want ? "matches" : "does not match"} ${d}`, () =>
      assert.equal(matchSpecificity(p, d) !== undefined, want));
  it("domainOf", () => assert.equal(domainOf("Bob@Sub.Example.COM"), "sub.example.com"));
});

describe("policy matching: most specific wins", () => {
  const policies = [
    pol("wild", ["*.partner.example"]),
    pol("deep", ["*.eu.partner.example"]),
    pol("exact", ["mx.eu.partner.example", "partner.example"]),
  ].map((p) => RelayConfig.shape.policies.parse([p])[0]!);
  const cases: [string, string | undefined][] = [
    ["partner.example", "exact"],
    ["a.partner.example", "wild"],
    ["x.eu.partner.example", "deep"],
    ["mx.eu.partner.example", "exact"],
    ["eu.partner.example", "wild"],
    ["other.example", undefined],
  ];
  for (const [d, want] of cases)
    it(`${d} -> ${want ?? "default"}`, () => assert.equal(matchPolicy(d, policies)?.name, want));
  it("order of policies does not matter", () => {
    for (const [d, want] of cases) assert.equal(matchPolicy(d, [...policies].reverse())?.name, want);
  });
});

describe("routing and splitting", () => {
  const c = config({
    inbound: { localDomains: ["example.com"], internalNextHop: { host: "exchange.mail.svc", port: 25 } },
    policies: [
      {
        ...pol("p", ["partner.example", "*.partner.example"]),
        outbound: { tls: { mode: "verify" }, nextHop: { host: "smtp.partner.example", port: 2525 } },
      },
      pol("q", ["q.example"], "required"),
    ],
  });
  it("local domains go to the internal next hop under the local route (opportunistic)", () => {
    const r = routeFor("example.com", c).route!;
    assert.equal(r.policy, "local");
    assert.deepEqual(r.nextHop, { host: "exchange.mail.svc", port: 25 });
    assert.equal(r.outbound.tls.mode, "opportunistic");
  });
  it("explicit next hop; MX otherwise", () => {
    assert.deepEqual(routeFor("a.partner.example", c).route?.nextHop, {
      host: "smtp.partner.example",
      port: 2525,
    });
    assert.equal(routeFor("q.example", c).route?.nextHop, undefined);
  });
  it("groups recipients by policy and next hop, MX routes per domain", () => {
    const g = groupRecipients(
      [
        "a@partner.example",
        "b@x.partner.example",
        "c@q.example",
        "d@other.example",
        "e@another.example",
        "f@q.example",
      ],
      c,
    );
    assert.deepEqual(
      g.map((x) => [x.route?.policy, x.recipients]),
      [
        ["p", ["a@partner.example", "b@x.partner.example"]],
        ["q", ["c@q.example", "f@q.example"]],
        ["default", ["d@other.example"]],
        ["default", ["e@another.example"]],
      ],
    );
  });
});

describe("grouping: recipients whose TLS decision reads their own domain", () => {
  const hop = { host: "gw.partners.example", port: 25 };
  type OutboundTls = NonNullable<RelayConfigInput["policies"]>[number]["outbound"]["tls"];
  const tls = (extra: Partial<OutboundTls>): OutboundTls => ({ mode: "verify", ...extra });
  const grouped = (outboundTls: OutboundTls) =>
    groupRecipients(
      ["a@legacy.example", "b@strict.example", "c@strict.example"],
      config({
        policies: [
          {
            ...pol("g", ["legacy.example", "strict.example"]),
            outbound: { tls: outboundTls, nextHop: hop },
          },
        ],
      }),
    ).map((g) => [g.route?.domain, g.recipients]);
  it("one group through the next hop when the decision does not read the domain", () =>
    assert.deepEqual(grouped(tls({})), [
      ["legacy.example", ["a@legacy.example", "b@strict.example", "c@strict.example"]],
    ]));
  // a time-limited exception names exactly one domain: the other domains' copies must not be
  // resolved under it (outbound review, round 7: the second domain's copy went in clear)
  it("per domain when the policy has exceptions", () =>
    assert.deepEqual(
      grouped(
        tls({
          exceptions: [
            {
              name: "legacy",
              domain: "legacy.example",
              mode: "opportunistic",
              from: "2026-01-01T00:00:00Z",
              until: "2027-01-01T00:00:00Z",
            },
          ],
        }),
      ),
      [
        ["legacy.example", ["a@legacy.example"]],
        ["strict.example", ["b@strict.example", "c@strict.example"]],
      ],
    ));
  it("per domain under mode dane (the domain is one of the reference names)", () =>
    assert.deepEqual(grouped({ mode: "dane" }), [
      ["legacy.example", ["a@legacy.example"]],
      ["strict.example", ["b@strict.example", "c@strict.example"]],
    ]));
});

describe("transport options per TLS mode", () => {
  const hop = { name: "mx.partner.example", address: "192.0.2.10", port: 25 };
  // the transport plan reads only the engine's decision (tls-policy.ts), never the mode
  const plan = (
    tls: PolicyInput["outbound"]["tls"],
    material: { ca?: Buffer; auth?: { user: string; pass: string } } = {},
    name = hop.name,
  ) => {
    const o = RelayConfig.shape.defaultOutbound.parse({ tls });
    const d = resolveTlsPolicy(
      {
        mode: o.tls.mode,
        domain: "partner.example",
        ...(o.tls.matchNames ? { matchNames: o.tls.matchNames } : {}),
        policyOwned: true,
        auth: material.auth !== undefined,
        authUnauthenticatedPeer: true,
      },
      { name },
    );
    if (!d.ok) return d.failure;
    return planTransport(
      d,
      o.tls.minVersion,
      { ...hop, name, address: hop.address },
      material,
      "relay.example.com",
    );
  };
  const table: [string, PolicyInput["outbound"]["tls"], Record<string, unknown>][] = [
    [
      "none",
      { mode: "none" },
      { ignoreTLS: true, requireTLS: false, requireSecure: false, verify: false, rejectUnauthorized: false },
    ],
    [
      "opportunistic",
      { mode: "opportunistic" },
      { ignoreTLS: false, requireTLS: false, requireSecure: false, verify: false, rejectUnauthorized: false },
    ],
    [
      "required",
      { mode: "required" },
      { ignoreTLS: false, requireTLS: true, requireSecure: true, verify: false, rejectUnauthorized: false },
    ],
    [
      "verify",
      { mode: "verify" },
      { ignoreTLS: false, requireTLS: true, requireSecure: true, verify: true, rejectUnauthorized: true },
    ],
  ];
  for (const [name, tls, want] of table) {
    it(name, () => {
      const p = plan(tls);
      assert.ok(p.ok);
      const got = {
        ignoreTLS: p.value.options.ignoreTLS,
        requireTLS: p.value.options.requireTLS,
        requireSecure: p.value.requireSecure,
        verify: p.value.verify,
        rejectUnauthorized: p.value.options.tls?.rejectUnauthorized,
      };
      assert.deepEqual(got, want);
      assert.equal(
        p.value.options.opportunisticTLS,
        false,
        "never falls back to clear after a failed STARTTLS",
      );
      assert.equal(p.value.options.host, "192.0.2.10");
      assert.equal(p.value.options.servername, "mx.partner.example");
      assert.equal(p.value.options.tls?.minVersion, "TLSv1.2");
    });
  }
  it("mta-sts and dane are resolved by the engine, never refused as unimplemented", () => {
    // no enforce policy: RFC 8461's fallback (may); dane without DNS facts: no host decision yet
    const sts = plan({ mode: "mta-sts" });
    assert.ok(sts.ok);
    assert.equal(sts.value.level, "may");
    const dane = plan({ mode: "dane" });
    assert.equal(!dane.ok && dane.code, "DANE_DNS_FAILED");
  });
  it("verify: names default to the recipient domain and its subdomains (finding 6); matchNames override; CA file used", () => {
    const a = plan({ mode: "verify" });
    assert.ok(a.ok);
    assert.deepEqual(a.value.expectedNames, ["partner.example", ".partner.example"]);
    const b = plan(
      { mode: "verify", matchNames: ["mx1.partner.example"], caFile: "ca.crt", minVersion: "TLSv1.3" },
      { ca: Buffer.from("PEM") },
    );
    assert.ok(b.ok);
    assert.deepEqual(b.value.expectedNames, ["mx1.partner.example"]);
    assert.equal(String(b.value.options.tls?.ca), "PEM");
    assert.equal(b.value.options.tls?.minVersion, "TLSv1.3");
  });
  it("AUTH under none is refused up front", () => {
    const p = plan({ mode: "none" }, { auth: { user: "u", pass: "p" } });
    assert.equal(p.ok, false);
    assert.equal(!p.ok && p.code, "AUTH_REQUIRES_TLS");
  });
  it("AUTH under none is refused up front (planTransport, whatever the decision)", () => {
    const d = resolveTlsPolicy({ mode: "none", domain: "partner.example", policyOwned: true });
    assert.ok(d.ok);
    const p = planTransport({ ...d, auth: true }, "TLSv1.2", hop, { auth: { user: "u", pass: "p" } }, "r");
    assert.equal(p.ok, false);
    assert.equal(!p.ok && p.code, "AUTH_REQUIRES_TLS");
  });
  it("pool keys differ by mode and credential, not by message", () => {
    const keys = [
      plan({ mode: "opportunistic" }),
      plan({ mode: "required" }),
      plan({ mode: "required" }, { auth: { user: "u", pass: "p" } }),
      plan({ mode: "required" }),
    ].map((p) => (p.ok ? p.value.poolKey : ""));
    assert.equal(new Set(keys).size, 3);
    assert.equal(keys[1], keys[3]);
  });
  it("an IP next hop gets no SNI", () => {
    const p = plan({ mode: "required" }, {}, "192.0.2.1");
    assert.ok(p.ok);
    assert.equal(p.value.options.servername, undefined);
  });
});

describe("identity check (verify)", () => {
  // A certificate object as tls.checkServerIdentity reads it.
  const cert = {
    subject: { CN: "mx.partner.example" },
    subjectaltname: "DNS:mx.partner.example, DNS:*.mx.partner.example",
  } as never;
  it("accepts any of the expected names", () =>
    assert.equal(identityChecker(["other.example", "mx.partner.example"])("x", cert), undefined));
  it("wildcard SAN covers one label", () =>
    assert.equal(identityChecker(["a.mx.partner.example"])("x", cert), undefined));
  it("rejects a name the certificate does not carry", () =>
    assert.ok(identityChecker(["evil.example"])("mx.partner.example", cert) instanceof Error));
  it("finding 6: .domain (dot-nexthop) matches any name under the domain, never the domain's lookalikes", () => {
    assert.equal(identityChecker(["partner.example", ".partner.example"])("x", cert), undefined);
    const evil = {
      subject: { CN: "x" },
      subjectaltname: "DNS:mx.evilpartner.example, DNS:partner.example.evil",
    } as never;
    assert.ok(identityChecker(["partner.example", ".partner.example"])("x", evil) instanceof Error);
    const bare = { subject: { CN: "x" }, subjectaltname: "DNS:partner.example" } as never;
    assert.ok(identityChecker([".partner.example"])("x", bare) instanceof Error);
    // a subjectAltName that only ends like a name under the domain is none (session 15's review)
    for (const odd of ["x dns:mx.partner.example", 'x" DNS:mx.partner.example', "x/mx.partner.example"]) {
      const c = { subject: { CN: "x" }, subjectaltname: `DNS:${odd}` } as never;
      assert.ok(identityChecker([".partner.example"])("x", c) instanceof Error, odd);
    }
    const wild = { subject: { CN: "x" }, subjectaltname: "DNS:*.mx.partner.example" } as never;
    assert.equal(identityChecker([".partner.example"])("x", wild), undefined);
  });
});

describe("connect error classification", () => {
  const e = (message: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(message), extra);
  const table: [Error, boolean, string][] = [
    [e("STARTTLS not offered by the server", { code: "ETLS" }), false, "TLS_NOT_OFFERED"],
    [e("unable to verify the first certificate", { code: "ESOCKET" }), true, "TLS_VERIFY_FAILED"],
    [e("certificate does not match mx", { code: "ESOCKET" }), true, "TLS_VERIFY_FAILED"],
    [
      e("Error upgrading connection with STARTTLS: 454 4.7.0 TLS not available", {
        code: "ETLS",
        command: "STARTTLS",
        responseCode: 454,
      }),
      false,
      "TLS_STARTTLS_REFUSED",
    ],
    [e("wrong version number", { code: "ESOCKET" }), false, "CONNECT_FAILED"],
    [e("connect ECONNREFUSED", { code: "ESOCKET" }), false, "CONNECT_FAILED"],
    [e("554 go away", { code: "EPROTOCOL", responseCode: 554 }), false, "CONNECT_REJECTED"],
  ];
  for (const [err, verify, want] of table)
    it(`${err.message} -> ${want}`, () => assert.equal(classifyConnectError(err, { verify }).code, want));
  it("a socket error during the STARTTLS handshake is a TLS failure", () =>
    assert.equal(
      classifyConnectError(e("wrong version number", { code: "ESOCKET" }), { verify: false }, true).code,
      "TLS_HANDSHAKE_FAILED",
    ));
  it("TLS_VERIFY_FAILED carries the certificate check that failed, for TLS-RPT", () => {
    const failure = classifyConnectError(
      e("Hostname/IP does not match certificate's altnames: Host: a.test", { code: "ESOCKET" }),
      { verify: true },
    );
    assert.equal(failure.code, "TLS_VERIFY_FAILED");
    assert.equal(failure.certificate, "name-mismatch");
    assert.equal(classifyConnectError(e("certificate has expired"), { verify: true }).certificate, "expired");
    assert.equal(
      classifyConnectError(e("unable to verify the first certificate"), { verify: true }).certificate,
      "untrusted",
    );
  });
  it("OpenSSL's verification codes name the same checks as its messages", () => {
    assert.equal(certificateProblemOf("ERR_TLS_CERT_ALTNAME_INVALID"), "name-mismatch");
    assert.equal(certificateProblemOf("CERT_HAS_EXPIRED"), "expired");
    assert.equal(certificateProblemOf("DEPTH_ZERO_SELF_SIGNED_CERT"), "untrusted");
    assert.equal(certificateProblemOf("UNABLE_TO_GET_ISSUER_CERT_LOCALLY"), "untrusted");
    assert.equal(certificateProblemOf("handshake failure"), undefined);
  });
});

describe("inbound requirements (strictest wins)", () => {
  const c = config({
    inbound: { require: "tls", relayFrom: ["10.0.0.0/8"], localDomains: ["example.com", "*.example.com"] },
    policies: [
      pol("partner", ["partner.example"], "verify", {
        inbound: { hosts: ["203.0.113.0/24", "2001:db8::/32"], require: "auth", credentials: ["partner-in"] },
      }),
      pol("host", ["other.example"], "verify", { inbound: { hosts: ["203.0.113.7"], require: "none" } }),
    ],
  });
  const ci = compileInbound(c);
  assert.ok(ci.ok);
  const compiled: CompiledInbound = ci.value;
  const table: [string, "smtp" | "submission", string, string[], boolean][] = [
    ["198.51.100.1", "smtp", "tls", [], false],
    ["10.1.2.3", "smtp", "tls", [], true],
    ["::ffff:10.1.2.3", "smtp", "tls", [], true],
    ["203.0.113.5", "smtp", "tls+auth", ["partner"], false],
    ["203.0.113.7", "smtp", "tls+auth", ["partner", "host"], false], // a looser rule never relaxes
    ["2001:db8::1", "smtp", "tls+auth", ["partner"], false],
    ["198.51.100.1", "submission", "tls+auth", [], false],
  ];
  for (const [ip, listener, req, policies, relay] of table) {
    it(`${ip} on ${listener}: ${req}`, () => {
      const d = decideInbound(compiled, ip, listener);
      assert.equal(requirementOf(d.need), req);
      assert.deepEqual(d.policies, policies);
      assert.equal(d.relayFrom, relay);
    });
  }
  it("partner hosts may only use their listed credentials", () =>
    assert.deepEqual(decideInbound(compiled, "203.0.113.5", "smtp").credentials, ["partner-in"]));
  it("MAIL FROM: 530 without TLS, then 530 without AUTH", () => {
    const d = decideInbound(compiled, "203.0.113.5", "smtp");
    assert.deepEqual(checkMailFrom(d, { secure: false, authenticated: false }), {
      code: 530,
      text: "5.7.0 Must issue a STARTTLS command first",
    });
    assert.deepEqual(checkMailFrom(d, { secure: true, authenticated: false }), {
      code: 530,
      text: "5.7.0 Authentication required",
    });
    assert.equal(checkMailFrom(d, { secure: true, authenticated: true }), undefined);
  });
  it("a host that must authenticate is first sent to STARTTLS (AUTH only exists inside TLS)", () => {
    const need = { tls: false, auth: true };
    const d = { need, policies: [], relayFrom: false };
    assert.equal(
      checkMailFrom(d, { secure: false, authenticated: false })?.text,
      "5.7.0 Must issue a STARTTLS command first",
    );
    assert.equal(
      checkMailFrom(d, { secure: true, authenticated: false })?.text,
      "5.7.0 Authentication required",
    );
  });
  it("not an open relay", () => {
    const stranger = decideInbound(compiled, "198.51.100.1", "smtp");
    const internal = decideInbound(compiled, "10.0.0.1", "smtp");
    assert.equal(checkRecipient(compiled, { mayRelay: false }, "example.com"), undefined);
    assert.equal(checkRecipient(compiled, { mayRelay: false }, "sub.example.com"), undefined);
    assert.deepEqual(
      checkRecipient(compiled, { mayRelay: mayRelay(stranger, undefined) }, "elsewhere.example"),
      {
        code: 550,
        text: "5.7.1 Relaying denied",
      },
    );
    assert.equal(checkRecipient(compiled, { mayRelay: true }, "elsewhere.example"), undefined);
    // relayFrom's relaying is authority.ts mayRelay's answer, as every other grant of it
    const internalMay = { mayRelay: mayRelay(internal, undefined) };
    assert.equal(checkRecipient(compiled, internalMay, "elsewhere.example"), undefined);
  });
  it("CIDR parsing", () => {
    assert.ok(parseCidr("10.0.0.0/8").ok);
    assert.ok(parseCidr("2001:db8::/32").ok);
    assert.deepEqual(parseCidr("192.0.2.1"), {
      ok: true,
      value: { address: "192.0.2.1", prefix: 32, family: "ipv4" },
    });
    for (const bad of ["10.0.0.0/33", "nonsense", "10.0.0.0/8/1", "10.0.0.0/x"])
      assert.equal(parseCidr(bad).ok, false, bad);
  });
  it("attack review, session 10: an address matches ranges of its own family only; mapped spellings are IPv4", () => {
    const c = (s: string) => {
      const r = parseCidr(s);
      assert.ok(r.ok, s);
      return r.value;
    };
    const set = (...xs: string[]) => new CidrSet(xs.map(c));
    // node:net's BlockList alone: ::/0 (and ::/80, ::fffe:0:0/95) hold every IPv4 address
    for (const wide of ["::/0", "::/80", "::fffe:0:0/95"]) {
      assert.equal(set(wide).has("192.0.2.77"), false, wide);
      assert.equal(set(wide).has("::ffff:192.0.2.77"), false, wide);
    }
    assert.equal(set("::/0").has("2001:db8::1"), true);
    // a range inside ::ffff:0:0/96 is the IPv4 range it spells, however the client's address is spelled
    assert.deepEqual(canonicalCidr(c("::ffff:10.0.0.0/104")), c("10.0.0.0/8"));
    for (const ip of ["10.1.2.3", "::ffff:10.1.2.3", "::ffff:a01:203"])
      assert.equal(set("::ffff:10.0.0.0/104").has(ip), true, ip);
    assert.equal(set("10.0.0.0/8").has("::ffff:10.1.2.3"), true);
    // the operator's checks read ranges the same way
    assert.equal(cidrsOverlap(c("::/0"), c("10.0.0.0/8")), false);
    assert.equal(cidrWithin(c("::ffff:0:0/96"), c("10.0.0.0/8")), true);
    assert.equal(cidrWithin(c("0.0.0.0/0"), c("10.0.0.0/8")), true);
    assert.equal(cidrWithin(c("10.0.0.0/8"), c("10.200.0.0/16")), true);
    assert.equal(cidrWithin(c("10.200.0.0/16"), c("10.0.0.0/8")), false);
    // what older relays (BlockList alone) read as every IPv4 address: the operator refuses it in rules
    for (const v of ["::/0", "::/80", "::fffe:0:0/95", "::/1"]) assert.equal(holdsMappedBlock(c(v)), true, v);
    for (const v of ["2000::/3", "::ffff:0:0/96", "::1/128", "fc00::/7", "10.0.0.0/8"])
      assert.equal(holdsMappedBlock(c(v)), false, v);
  });
  it("cidrWithin's bit arithmetic agrees with node's BlockList within a family", () => {
    // a seeded walk over ranges of every prefix length, the inner one drawn near the outer
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    // an address as 16-bit groups (2 for IPv4, 8 for IPv6), masked to `prefix`, then spelled
    const groups = (family: "ipv4" | "ipv6") =>
      Array.from({ length: family === "ipv4" ? 2 : 8 }, () => rnd(65536));
    const masked = (g: number[], prefix: number, family: "ipv4" | "ipv6"): Cidr => {
      const m = g.map((x, i) => {
        const n = Math.max(0, Math.min(16, prefix - i * 16));
        return x & ((0xffff << (16 - n)) & 0xffff);
      });
      const address =
        family === "ipv4"
          ? [m[0]! >> 8, m[0]! & 0xff, m[1]! >> 8, m[1]! & 0xff].join(".")
          : m.map((x) => x.toString(16)).join(":");
      return { address, prefix, family };
    };
    for (let i = 0; i < 2000; i++) {
      const family = rnd(2) ? "ipv4" : "ipv6";
      const max = family === "ipv4" ? 32 : 128;
      const base = groups(family);
      const outer = masked(base, rnd(max + 1), family);
      const near = rnd(2) ? base : groups(family);
      const inner = masked(near, outer.prefix + rnd(max - outer.prefix + 1), family);
      const ref = new BlockList();
      ref.addSubnet(outer.address, outer.prefix, family);
      const expected = ref.check(inner.address, family);
      // ::ffff:0:0/96 and below read as IPv4 by canonicalCidr: compare within the family only
      if (
        family === "ipv6" &&
        (canonicalCidr(outer).family === "ipv4") !== (canonicalCidr(inner).family === "ipv4")
      )
        continue;
      assert.equal(
        cidrWithin(outer, inner),
        expected,
        `${outer.address}/${outer.prefix} ⊇ ${inner.address}/${inner.prefix}`,
      );
    }
  });
});

describe("config cross-checks", () => {
  it("accepts a consistent config", () => {
    assert.deepEqual(
      checkReferences(
        config({
          credentials: { l: { type: "password", usage: "outbound", username: "u", passwordFile: "p" } },
          policies: [
            { ...pol("a", ["a.example"]), outbound: { tls: { mode: "required" }, authCredential: "l" } },
          ],
        }),
      ),
      [],
    );
  });
  it("rejects dangling or mistyped credential references, duplicate domains, bad CIDRs", () => {
    const problems = checkReferences(
      config({
        inbound: { relayFrom: ["not-a-cidr"] },
        credentials: { inb: { type: "password", usage: "inbound", username: "u", passwordFile: "p" } },
        policies: [
          {
            ...pol("a", ["a.example"]),
            outbound: { tls: { mode: "required", clientCredential: "inb" }, authCredential: "missing" },
          },
          pol("b", ["a.example"]),
        ],
      }),
    );
    assert.equal(problems.length, 4, problems.join("\n"));
  });
});

describe("backoff and expiry", () => {
  const table: [number, number][] = [
    [0, 0],
    [1, 60],
    [2, 120],
    [3, 240],
    [6, 1920],
    [7, 3600],
    [100, 3600],
  ];
  for (const [attempt, want] of table)
    it(`attempt ${attempt} -> ${want}s`, () => assert.equal(backoffSeconds(attempt, 60, 3600), want));
  it("expiry", () => {
    assert.equal(expired(0, 9_999, 10), false);
    assert.equal(expired(0, 10_000, 10), true);
  });
});

describe("MX helpers", () => {
  it("sorts by preference", () =>
    assert.deepEqual(
      sortMx([
        { exchange: "b", priority: 20 },
        { exchange: "a", priority: 10 },
      ]).map((m) => m.exchange),
      ["a", "b"],
    ));
  it("null MX", () => {
    assert.equal(isNullMx([{ exchange: "", priority: 0 }]), true);
    assert.equal(isNullMx([{ exchange: ".", priority: 0 }]), true);
    assert.equal(isNullMx([{ exchange: "mx", priority: 0 }]), false);
  });
});

describe("DSN (RFC 3464)", () => {
  const original = Buffer.from(
    "From: a@example.com\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nsecret body\r\n",
  );
  const dsn = composeDsn({
    reportingMta: "relay.example.com",
    queueId: "Q1",
    originalSender: "a@example.com",
    arrivalDate: new Date("2026-01-01T00:00:00Z"),
    now: new Date("2026-01-02T00:00:00Z"),
    boundary: "BOUNDARY",
    original,
    recipients: [
      {
        address: "x@partner.example",
        status: "5.1.1",
        diagnostic: "550 5.1.1 no such user",
        remote: true,
        remoteMta: "mx.partner.example",
      },
      { address: "y@partner.example", status: "4.4.7", diagnostic: "delivery time expired", remote: false },
    ],
  }).toString();
  it("is a multipart/report of type delivery-status", () => {
    assert.match(
      dsn,
      /^From: Mail Delivery System <MAILER-DAEMON@relay\.example\.com>\r\nTo: <a@example\.com>\r\n/,
    );
    assert.match(
      dsn,
      /\r\nContent-Type: multipart\/report; report-type=delivery-status; boundary="BOUNDARY"\r\n/,
    );
    assert.match(
      dsn,
      /\r\n--BOUNDARY\r\nContent-Type: message\/delivery-status\r\n\r\nReporting-MTA: dns; relay\.example\.com\r\n/,
    );
    assert.match(dsn, /\r\n--BOUNDARY--\r\n$/);
  });
  it("to a sender nobody checked: the next hop's reply code, never its name, its words nor the relay's local reason", () => {
    const stranger = composeDsn({
      reportingMta: "relay.example.com",
      queueId: "Q2",
      originalSender: "probe@victim.example",
      arrivalDate: new Date("2026-01-01T00:00:00Z"),
      now: new Date("2026-01-02T00:00:00Z"),
      original,
      returned: "identifying",
      recipients: [
        {
          address: "ghost@corp.example",
          status: "5.1.1",
          diagnostic: "550 5.1.1 no such user",
          remote: true,
          remoteMta: "mailstore.corp.internal",
        },
        {
          address: "x@corp.example",
          status: "4.4.7",
          diagnostic: "delivery time expired; last error: connect ECONNREFUSED 10.96.0.12:25",
          remote: false,
          remoteMta: "mailstore.corp.internal",
        },
        {
          address: "y@corp.example",
          status: "5.3.0",
          diagnostic: "mailstore.corp.internal said no",
          remote: false,
        },
      ],
    }).toString();
    assert.doesNotMatch(stranger, /mailstore|10\.96|ECONNREFUSED|Remote-MTA/);
    assert.match(stranger, /Status: 5\.1\.1\r\nDiagnostic-Code: smtp; 550 5\.1\.1\r\n/);
    assert.doesNotMatch(stranger, /no such user/, "the reply's text is the internal server's words");
    assert.match(stranger, /Status: 4\.4\.7\r\nDiagnostic-Code: x-local; delivery time expired\r\n/);
    assert.match(stranger, /Status: 5\.3\.0\r\nDiagnostic-Code: x-local; not delivered\r\n/);
  });
  it("to a partner's login: its headers back, but of each recipient the status and reply code only", () => {
    const partner = composeDsn({
      reportingMta: "relay.example.com",
      queueId: "Q3",
      originalSender: "billing@partner.example",
      arrivalDate: new Date("2026-01-01T00:00:00Z"),
      now: new Date("2026-01-02T00:00:00Z"),
      original,
      returned: "headers",
      diagnostics: "codes",
      recipients: [
        {
          address: "ghost@corp.example",
          status: "5.1.1",
          diagnostic: "550 5.1.1 host mailstore.corp.internal[10.0.0.5]:25 said: no such user",
          remote: true,
          remoteMta: "mailstore.corp.internal",
        },
        {
          address: "x@corp.example",
          status: "4.4.7",
          diagnostic: "delivery time expired; last error: connect ECONNREFUSED 10.96.0.12:25",
          remote: false,
        },
      ],
    }).toString();
    assert.doesNotMatch(partner, /mailstore|10\.0\.0\.5|10\.96|ECONNREFUSED|Remote-MTA/);
    assert.match(partner, /Status: 5\.1\.1\r\nDiagnostic-Code: smtp; 550 5\.1\.1\r\n/);
    assert.match(partner, /Status: 4\.4\.7\r\nDiagnostic-Code: x-local; delivery time expired\r\n/);
    assert.match(partner, /Subject: hi\r\n/, "its own headers are returned");
  });
  it("has per-recipient Action/Status/Diagnostic-Code", () => {
    assert.match(
      dsn,
      /Final-Recipient: rfc822; x@partner\.example\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx\.partner\.example\r\nDiagnostic-Code: smtp; 550 5\.1\.1 no such user\r\n/,
    );
    assert.match(
      dsn,
      /Final-Recipient: rfc822; y@partner\.example\r\nAction: failed\r\nStatus: 4\.4\.7\r\nDiagnostic-Code: x-local; delivery time expired\r\n/,
    );
  });
  it("returns the headers, not the body", () => {
    assert.match(
      dsn,
      /Content-Type: text\/rfc822-headers\r\n\r\nFrom: a@example\.com\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n/,
    );
    assert.doesNotMatch(dsn, /secret body/);
    assert.equal(headerBlock(Buffer.from("A: b\nC: d\n\nbody")), "A: b\r\nC: d");
  });
  it("issue 22.3: bounded whatever the replies: 1,000 recipients with 1 MB diagnostics", () => {
    const huge = "550 5.1.1 " + "\x1b[2J".repeat(10) + "x".repeat(1 << 20);
    const big = composeDsn({
      reportingMta: "relay.example.com",
      queueId: "Q2",
      originalSender: "a@example.com",
      arrivalDate: new Date("2026-01-01T00:00:00Z"),
      now: new Date("2026-01-02T00:00:00Z"),
      original: Buffer.concat([Buffer.from("X-Long: " + "h".repeat(1 << 20) + "\r\n"), original]),
      recipients: Array.from({ length: 1000 }, (_, n) => ({
        address: `r${n}@partner.example`,
        status: "5.1.1",
        diagnostic: huge,
        remote: true,
      })),
    });
    assert.ok(big.length < 512 * 1024, `DSN of ${big.length} bytes`);
    const text = big.toString("latin1");
    for (let n = 0; n < 1000; n++)
      assert.ok(text.includes(`Final-Recipient: rfc822; r${n}@partner.example\r\n`));
    assert.match(text, /\.\.\. and 950 more recipients/);
    assert.ok(!text.includes("\x1b"));
    for (const m of text.matchAll(/^Diagnostic-Code: smtp; (.*)$/gm))
      assert.ok(m[1]!.length <= REPLY_TEXT_MAX);
  });
  it("issue 22.3: reply text is one printable line of at most REPLY_TEXT_MAX characters", () => {
    assert.equal(
      replyText("550-5.1.1 first\n550 5.1.1 \x1b[31mred\x1b[0m\x9b2J\x00 end"),
      "550-5.1.1 first 550 5.1.1 [31mred [0m 2J end",
    );
    assert.equal(replyText("250 ok caf\u00e9"), "250 ok caf?");
    const cut = replyText("550 " + "y".repeat(1 << 20));
    assert.equal(cut.length, REPLY_TEXT_MAX);
    assert.match(cut, /^550 y+ \[\.\.\. truncated, 1048580 characters\]$/);
    assert.equal(replyText("x".repeat(REPLY_TEXT_MAX)), "x".repeat(REPLY_TEXT_MAX));
  });
  it("status from a reply", () => {
    assert.equal(statusFromReply("550 5.7.1 relaying denied", true), "5.7.1");
    assert.equal(statusFromReply("451 try later", false), "4.0.0");
    assert.equal(statusFromReply("554 rejected", true), "5.0.0");
  });
});

describe("inbound AUTH", () => {
  const accounts = [
    { name: "partner-in", username: "partner", password: "pw1" },
    { name: "other-in", username: "other", password: "pw2" },
  ];
  it("constant-time compare", () => {
    assert.equal(constantTimeEqual("abc", "abc"), true);
    assert.equal(constantTimeEqual("abc", "abd"), false);
    assert.equal(constantTimeEqual("abc", "abcd"), false);
  });
  it("authenticates, and honours the host's allowed credentials", () => {
    assert.equal(authenticate(accounts, "partner", "pw1"), "partner-in");
    assert.equal(authenticate(accounts, "partner", "pw2"), undefined);
    assert.equal(authenticate(accounts, "other", "pw2", ["partner-in"]), undefined);
    assert.equal(authenticate(accounts, "other", "pw2", ["other-in"]), "other-in");
    assert.equal(authenticate([], "x", "y"), undefined);
  });
});
