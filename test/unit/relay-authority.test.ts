// Issue 15 findings 3, 7, 8: the pure inbound authority decisions (relay/inbound/authority.ts) and
// the throttle's keys and bounds (relay/inbound/throttle.ts); attack review 8b: a credential several
// policies name gets only what all of them allow.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RelayConfig } from "../../relay/contract/config.js";
import {
  allowedAccounts,
  checkSender,
  commonPatterns,
  compileAuthority,
  entitledToSign,
  recipientTable,
  routesOn,
} from "../../relay/inbound/authority.js";
import { checkMailFrom, compileInbound, decideInbound } from "../../relay/inbound/rules.js";
import { AuthThrottle, clientKey } from "../../relay/inbound/throttle.js";

const L = { maxFailuresPerIp: 10, maxFailuresPerAccount: 5, windowMs: 900_000 };

describe("throttle keys and bounds (finding 8)", () => {
  it("finding 8: a spray of made-up usernames cannot evict a real account's failure counter", () => {
    const t = new AuthThrottle(() => 0, 100);
    const configured = (u: string): boolean => u === "alice";
    for (let i = 0; i < 5; i++) t.failed(`192.0.2.${i}`, "alice", L, configured);
    assert.equal(t.check("198.51.100.1", "alice", L, configured).ok, false);
    for (let i = 0; i < 20_000; i++) t.failed(`203.0.113.${i % 250}-${i}`, `junk${i}`, L, configured);
    assert.equal(t.check("198.51.100.1", "alice", L, configured).ok, false, "alice is still locked");
    assert.ok(t.tracked.accounts <= 1);
  });

  it("finding 8: IPv6 clients are keyed by their /64 (configurable); IPv4 by address", () => {
    assert.equal(clientKey("2001:db8:0:7::1", 64), "2001:db8:0:7:0:0:0:0/64");
    assert.equal(clientKey("2001:db8:0:7:ffff:1:2:3", 64), "2001:db8:0:7:0:0:0:0/64");
    assert.equal(clientKey("2001:DB8:0:7::1", 48), "2001:db8:0:0:0:0:0:0/48");
    assert.equal(clientKey("2001:db8::1", 128), "2001:db8:0:0:0:0:0:1/128");
    assert.equal(clientKey("2001:db8:0:7:8000::", 65), "2001:db8:0:7:8000:0:0:0/65");
    assert.equal(clientKey("::ffff:192.0.2.7", 64), "192.0.2.7");
    // attack: the other spellings of an IPv4-mapped address are the IPv4 address, not a shared /64
    assert.equal(clientKey("::ffff:c000:207", 64), "192.0.2.7");
    assert.equal(clientKey("0:0:0:0:0:FFFF:c000:208", 64), "192.0.2.8");
    assert.equal(clientKey("192.0.2.7", 64), "192.0.2.7");
    assert.equal(clientKey("::1", 64), "0:0:0:0:0:0:0:0/64");
  });
});

const config = RelayConfig.parse({
  version: 1,
  relay: "t/r",
  hostname: "relay.test",
  listeners: {},
  tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
  inbound: {
    relayFrom: ["10.0.0.0/8"],
    localDomains: ["example.com"],
    localRecipients: { addresses: ["bob@example.com", "@sales.example.com"], files: ["r.txt"] },
  },
  credentials: {
    p: { type: "password", usage: "inbound", username: "partner", passwordFile: "p" },
    app: { type: "password", usage: "inbound", username: "app", passwordFile: "a", allowRelay: true },
  },
  policies: [
    {
      name: "ns/partner",
      domains: ["partner.example", "*.partner.example"],
      outbound: { tls: { mode: "none" } },
      inbound: { hosts: ["203.0.113.0/24"], require: "tls+auth", credentials: ["p"] },
    },
  ],
  queue: { dir: "/q" },
});

describe("inbound authority (findings 3, 7)", () => {
  const a = compileAuthority(config, new Map([["r.txt", Buffer.from("# staff\nCarol@Example.com\n\n")]]));
  const ci = compileInbound(config);
  assert.ok(ci.ok);
  const internal = decideInbound(ci.value, "10.1.2.3", "smtp");
  const partnerHost = decideInbound(ci.value, "203.0.113.5", "smtp");

  it("sender domains: a partner's are its policies' domains, a relay-wide account's the local domains", () => {
    assert.deepEqual(a.grants.get("p")?.senderDomains, ["partner.example", "*.partner.example"]);
    assert.deepEqual(a.grants.get("app")?.senderDomains, ["example.com"]);
    assert.equal(checkSender(a, a.grants.get("p")!, "x@mail.partner.example"), undefined);
    assert.equal(checkSender(a, a.grants.get("p")!, ""), undefined, "null sender");
    assert.equal(checkSender(a, a.grants.get("p")!, "ceo@example.com")?.code, 553);
  });

  it("recipient table: addresses (case-insensitive), @domain, files with comments", () => {
    const t = recipientTable(["Bob@Example.com", "@sales.example.com", "# x", ""]);
    assert.ok(t.addresses.has("bob@example.com"));
    assert.ok(t.domains.has("sales.example.com"));
    assert.ok(a.recipients?.addresses.has("carol@example.com"));
  });

  it("address tricks: %, ! and a quoted @ in the local part route on", () => {
    assert.equal(routesOn("victim%gmail.example@example.com"), true);
    assert.equal(routesOn("gmail.example!victim@example.com"), true);
    assert.equal(routesOn('"victim@gmail.example"@example.com'), true);
    assert.equal(routesOn("first.last+tag@example.com"), false);
  });

  it("attack review 8b: a second policy naming a partner's login gets it no further host; sender domains only where a naming policy routes", () => {
    // a namespace user's policy names the partner's credential `p` from every host, for its own
    // domains and one under the partner's wildcard
    const both = RelayConfig.parse({
      ...config,
      policies: [
        ...config.policies,
        {
          name: "ns/team-b2",
          domains: ["team-b2.example", "mail.partner.example", "*.eu.partner.example", "*.other.example"],
          outbound: { tls: { mode: "none" } },
          inbound: { hosts: ["0.0.0.0/0"], require: "tls+auth", credentials: ["p"] },
        },
      ],
    });
    const b = compileAuthority(both, new Map());
    const bi = compileInbound(both);
    assert.ok(bi.ok);
    const from = (ip: string) => allowedAccounts(b, decideInbound(bi.value, ip, "submission"));
    assert.deepEqual(from("203.0.113.5"), ["p", "app"], "the partner's hosts: both policies allow them");
    assert.deepEqual(from("192.0.2.200"), ["app"], "elsewhere: only the second policy does");
    const g = b.grants.get("p")!;
    // sender domains: each naming policy's, where the relay routes the domain by a policy naming the
    // login (session 9, fifth round: the intersection took an exception subdomain's parent away)
    assert.equal(checkSender(b, g, "x@team-b2.example"), undefined, "the second policy routes it");
    assert.equal(checkSender(b, g, "x@partner.example"), undefined, "the first policy routes it");
    assert.equal(checkSender(b, g, "x@mail.partner.example"), undefined, "the second, more specific");
    assert.equal(checkSender(b, g, "x@a.eu.partner.example"), undefined, "a wildcard within the other's");
    assert.equal(checkSender(b, g, "ceo@example.com")?.code, 553, "never a local domain");
    // the credential's own senderDomains narrow what the policies claim, never widen it (session 9)
    const own = (senderDomains: string[]) =>
      compileAuthority(
        RelayConfig.parse({
          ...both,
          credentials: { ...both.credentials, p: { ...both.credentials.p!, senderDomains } },
        }),
        new Map(),
      ).grants.get("p")?.senderDomains;
    assert.deepEqual(own(["team-b2.example", "bank.example"]), ["team-b2.example"]);
    assert.deepEqual(own(["mail.partner.example"]), ["mail.partner.example"]);
  });

  it("the review of 8b's fix: a login a left-out policy names is held: no host may use it, relay-wide ones still may", () => {
    const held = RelayConfig.parse({
      ...config,
      policies: [
        {
          name: "ns/team-b2",
          domains: ["team-b2.example"],
          outbound: { tls: { mode: "none" } },
          inbound: { hosts: ["192.0.2.0/24"], require: "tls+auth", credentials: ["p"] },
        },
      ],
      heldCredentials: ["p"],
    });
    const h = compileAuthority(held, new Map());
    const hi = compileInbound(held);
    assert.ok(hi.ok);
    // the other policy's hosts: its rule names only the held login (the relay-wide account stays)
    assert.deepEqual(allowedAccounts(h, decideInbound(hi.value, "192.0.2.200", "submission")), ["app"]);
    // elsewhere (the partner's hosts too, its policy being out): the relay-wide account only
    assert.deepEqual(allowedAccounts(h, decideInbound(hi.value, "203.0.113.5", "submission")), ["app"]);
  });

  it("attack review, session 10: a tenant's host rule over every host does not take the relay-wide accounts", () => {
    const wide = RelayConfig.parse({
      ...config,
      credentials: {
        ...config.credentials,
        t: { type: "password", usage: "inbound", username: "t", passwordFile: "t" },
      },
      policies: [
        ...config.policies,
        {
          name: "ns/team-t",
          domains: ["team-t.example"],
          outbound: { tls: { mode: "none" } },
          inbound: { hosts: ["0.0.0.0/0", "::/0"], require: "tls+auth", credentials: ["t"] },
        },
      ],
    });
    const w = compileAuthority(wide, new Map());
    const wi = compileInbound(wide);
    assert.ok(wi.ok);
    // any host: the tenant's login and the organisation's account; the partner's hosts: the partner's too
    assert.deepEqual(allowedAccounts(w, decideInbound(wi.value, "192.0.2.1", "submission")), ["t", "app"]);
    assert.deepEqual(allowedAccounts(w, decideInbound(wi.value, "203.0.113.5", "submission")), [
      "p",
      "t",
      "app",
    ]);
    // the rule still applies to every host it names, the organisation's own included: whose hosts a
    // policy may name is the operator's verdict (relay-verdict.ts: not a whole relayFrom range, and
    // within MailRelay spec.inbound.partnerHosts when set)
    assert.equal(decideInbound(wi.value, "10.1.2.3", "smtp").policies.join(), "ns/team-t");
    assert.equal(
      checkMailFrom(decideInbound(wi.value, "192.0.2.1", "smtp"), { secure: false, authenticated: false })
        ?.code,
      530,
    );
  });

  it("domain patterns in common: exact names and nested wildcards", () => {
    assert.deepEqual(commonPatterns(["a.example", "*.b.example"], ["*.example"]), [
      "a.example",
      "*.b.example",
    ]);
    assert.deepEqual(commonPatterns(["*.example"], ["x.b.example", "*.c.example"]), [
      "x.b.example",
      "*.c.example",
    ]);
    assert.deepEqual(commonPatterns(["*.b.example"], ["b.example", "*.c.example", "*"]), []);
    assert.deepEqual(commonPatterns(["a.example"], ["a.example"]), ["a.example"]);
  });

  it("signing: only mail of the local domains from relayFrom or a relay-wide account", () => {
    assert.equal(entitledToSign(a, internal, undefined, "alice@example.com"), true);
    assert.equal(entitledToSign(a, internal, undefined, "alice@partner.example"), false);
    assert.equal(entitledToSign(a, partnerHost, a.grants.get("p"), "alice@example.com"), false);
    assert.equal(entitledToSign(a, partnerHost, undefined, "alice@example.com"), false);
    assert.equal(entitledToSign(a, partnerHost, a.grants.get("app"), "alice@example.com"), true);
    assert.equal(entitledToSign(a, internal, undefined, ""), false);
  });
});

// attack review, session 9: whoever writes a credential and a policy naming it chose its grants; a
// partner's login is clamped whatever its credential says (the operator refuses such a credential)
describe("a partner's login never relays, nor sends beyond its policies' domains", () => {
  it("allowRelay dropped, senderDomains cut to the policies' domains; a relay-wide account keeps both", () => {
    const c = RelayConfig.parse({
      ...config,
      credentials: {
        p: {
          type: "password",
          usage: "inbound",
          username: "partner",
          passwordFile: "p",
          allowRelay: true,
          senderDomains: ["example.com", "partner.example", "*.corp.example"],
        },
        app: { type: "password", usage: "inbound", username: "app", passwordFile: "a", allowRelay: true },
      },
    });
    const a = compileAuthority(c, new Map());
    assert.equal(a.grants.get("p")!.allowRelay, false);
    assert.deepEqual(a.grants.get("p")!.senderDomains, ["partner.example"]);
    assert.equal(a.grants.get("app")!.allowRelay, true);
  });
});
