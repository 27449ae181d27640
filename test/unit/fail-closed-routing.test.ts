// Issue 14, findings 1, 2 and 4, as pure logic: a policy with a problem never lets its domains fall to
// a weaker route (the compiler defers them; on a conflict the oldest policy keeps the domain), every
// spelling of a domain is one canonical name (IDNA2008 / UTS #46 A-labels), and a catch-all never
// captures local domains. The wire and apiserver versions of these attacks are in
// test/mail/relay-routing.test.ts and test/integration/operator-policy-problems.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MailDomainPolicy, RelayCredential } from "../../api/v1alpha1/index.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { RelayConfig, type RelayConfigInput } from "../../relay/contract/config.js";
import { canonicalDomain, canonicalPattern } from "../../relay/contract/domains.js";
import { groupRecipients, routeFor } from "../../relay/outbound/route.js";
import { clusterView, mailRelay, recordedSince } from "../support/operator-fixtures.js";
import { minimalRelayConfig } from "../support/minimal-relay-config.js";

const relay = () =>
  mailRelay({
    inbound: {
      relayFrom: ["10.0.0.0/8"],
      localDomains: ["example.com"],
      internalNextHop: { host: "exchange.mail.svc" },
    },
  });

/** A policy created at `created` and in force on edge since (its claims recorded: claim-age.ts). */
const policy = (
  name: string,
  created: string,
  spec: Partial<MailDomainPolicy["spec"]> & { domains: string[] },
): MailDomainPolicy =>
  recordedSince(
    {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: { name, namespace: "mail" },
      spec: { outbound: { tls: { mode: "verify", trustSystemRoots: true } }, ...spec },
    },
    created,
  );

const login: RelayCredential = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "RelayCredential",
  metadata: { name: "partner-login", namespace: "mail" },
  spec: {
    type: "password",
    usage: "outbound",
    username: "relay",
    passwordSecretRef: { name: "partner-login", key: "password" },
    restrictTo: { domains: ["partner.example", "*.partner.example"] },
  },
};

/** The relay's decision for one recipient domain: the policy routing it, or "hold:<reason code>". */
function decision(domain: string, c: RelayConfig): string {
  const r = routeFor(domain, c);
  return r.hold ? `hold:${r.hold.code}` : `${r.route.policy}:${r.route.outbound.tls.mode}`;
}

describe("issue 14 finding 1: a policy with a problem never falls to the default route", () => {
  const partner = policy("partner", "2026-01-01T00:00:00Z", { domains: ["partner.example"] });
  const attacker = policy("attacker", "2026-06-01T00:00:00Z", {
    domains: ["partner.example", "attacker.example"],
    outbound: { tls: { mode: "none" } },
  });

  it("an attacker's later policy claiming a protected domain: the oldest keeps it, only the newcomer is in conflict", () => {
    for (const order of [
      [partner, attacker],
      [attacker, partner],
    ]) {
      const r = compileRelayConfig(relay(), order, clusterView());
      assert.equal(decision("partner.example", r.config), "mail/partner:verify");
      assert.deepEqual(r.included, ["mail/partner"]);
      assert.equal(r.problems.has("mail/partner"), false);
      const p = r.problems.get("mail/attacker")!;
      assert.equal(p[0]!.reason, "DomainConflict");
      assert.match(p[0]!.message, /partner\.example.*mail\/partner/);
      assert.deepEqual(
        r.config.deferredPolicies.map((d) => [d.name, d.domains]),
        [["mail/attacker", ["attacker.example"]]],
      );
      // the newcomer's own other domains are not routed weaker than it asked for: they defer
      assert.equal(decision("attacker.example", r.config), "hold:POLICY_PROBLEM");
    }
  });

  it("attack: a later policy for a subdomain under an older wildcard cannot take that subdomain over", () => {
    const wildcard = policy("partner", "2026-01-01T00:00:00Z", {
      domains: ["partner.example", "*.partner.example"],
    });
    const sub = policy("attacker", "2026-06-01T00:00:00Z", {
      domains: ["eu.partner.example", "*.us.partner.example", "attacker.example"],
      outbound: { tls: { mode: "none" } },
    });
    for (const order of [
      [wildcard, sub],
      [sub, wildcard],
    ]) {
      const r = compileRelayConfig(relay(), order, clusterView());
      for (const d of ["eu.partner.example", "mx.us.partner.example", "partner.example"])
        assert.equal(decision(d, r.config), "mail/partner:verify", d);
      assert.equal(r.problems.has("mail/partner"), false);
      const p = r.problems.get("mail/attacker")!;
      assert.deepEqual(
        p.map((x) => x.reason),
        ["DomainConflict", "DomainConflict"],
      );
      assert.match(p[0]!.message, /mail\/partner \(as \*\.partner\.example, which covers it\)/);
      assert.equal(decision("attacker.example", r.config), "hold:POLICY_PROBLEM");
    }
    // an exception created before the wildcard keeps its subdomain (the older policy decides)
    const early = policy("exception", "2025-01-01T00:00:00Z", { domains: ["eu.partner.example"] });
    const r = compileRelayConfig(relay(), [wildcard, early], clusterView());
    assert.deepEqual(r.included.sort(), ["mail/exception", "mail/partner"]);
    assert.equal(decision("eu.partner.example", r.config), "mail/exception:verify");
  });

  it("equal claim ages: no claim is older, none decides, the domain is deferred whatever the input order", () => {
    const a = policy("a", "2026-01-01T00:00:00Z", { domains: ["p.example"] });
    const b = policy("b", "2026-01-01T00:00:00Z", {
      domains: ["p.example"],
      outbound: { tls: { mode: "none" } },
    });
    for (const order of [
      [a, b],
      [b, a],
    ]) {
      const r = compileRelayConfig(relay(), order, clusterView());
      // a tie broken by name would be the racer's to win (attack review, session 8)
      assert.equal(decision("p.example", r.config), "hold:POLICY_PROBLEM");
      assert.equal(r.problems.get("mail/a")![0]!.reason, "DomainConflict");
      assert.equal(r.problems.get("mail/b")![0]!.reason, "DomainConflict");
    }
  });

  it("a broken reference on a verify policy defers its domains, never the default route", () => {
    const broken = policy("partner", "2026-01-01T00:00:00Z", {
      domains: ["partner.example", "*.partner.example"],
      outbound: {
        tls: { mode: "verify", trustSystemRoots: true },
        auth: { credentialRef: { name: "partner-login" } },
      },
    });
    // the credential exists, its Secret lacks the key: MissingReference
    const r = compileRelayConfig(
      relay(),
      [broken],
      clusterView({ secrets: { "partner-login": ["user"] }, credentials: [login] }),
    );
    assert.equal(r.problems.get("mail/partner")![0]!.reason, "MissingReference");
    for (const d of ["partner.example", "mx.partner.example"]) {
      const route = routeFor(d, r.config);
      assert.ok(route.hold, `${d} must be deferred, not routed`);
      assert.equal(route.hold.temporary, true);
      assert.match(route.hold.status, /^4\./);
      assert.match(route.hold.message, /mail\/partner/);
    }
    // an unrelated domain still goes out under the default
    assert.equal(decision("other.example", r.config), "default:opportunistic");
  });

  it("a broken policy keeps its domain against a later policy too (an attacker cannot take it over)", () => {
    const broken = policy("partner", "2026-01-01T00:00:00Z", {
      domains: ["partner.example"],
      outbound: { tls: { mode: "verify", caBundle: { configMapRef: { name: "gone", key: "ca.crt" } } } },
    });
    const r = compileRelayConfig(relay(), [broken, attacker], clusterView());
    assert.equal(decision("partner.example", r.config), "hold:POLICY_PROBLEM");
    assert.equal(r.problems.get("mail/attacker")![0]!.reason, "DomainConflict");
  });

  it("a broken catch-all defers every domain no other policy matches, but not local domains", () => {
    const all = policy("all", "2026-01-01T00:00:00Z", {
      domains: ["*"],
      outbound: { tls: { mode: "required" }, auth: { credentialRef: { name: "missing" } } },
    });
    const ok = policy("ok", "2026-01-01T00:00:00Z", { domains: ["ok.example"] });
    const r = compileRelayConfig(relay(), [all, ok], clusterView());
    assert.equal(decision("any.example", r.config), "hold:POLICY_PROBLEM");
    assert.equal(decision("ok.example", r.config), "mail/ok:verify");
    assert.equal(routeFor("example.com", r.config).route?.nextHop?.host, "exchange.mail.svc");
  });
});

describe("issue 14 finding 2: one canonical form for every spelling of a domain", () => {
  it("U-labels, full-width letters, ideographic full stops, case and the root dot map to the A-label form", () => {
    const cases: [string, string][] = [
      ["bücher.example", "xn--bcher-kva.example"],
      ["XN--BCHER-KVA.EXAMPLE.", "xn--bcher-kva.example"],
      ["ｐａｒｔｎｅｒ.example", "partner.example"],
      ["partner。example", "partner.example"],
      ["partner．example", "partner.example"],
      ["Partner.Example.", "partner.example"],
      ["part\u200bner.example", "partner.example"],
    ];
    for (const [spelling, want] of cases) assert.equal(canonicalDomain(spelling), want, spelling);
  });

  it("what cannot be canonicalised is refused, never routed", () => {
    for (const bad of [
      "xn--zz.example",
      "a_b.example",
      "1.2.3.4",
      "[127.0.0.1]",
      "ex ample.com",
      "",
      "-a.example",
    ])
      assert.equal(canonicalDomain(bad), undefined, bad);
    const c = RelayConfig.parse(base());
    const r = routeFor("xn--zz.example", c);
    assert.ok(r.hold);
    assert.equal(r.hold.status, "5.1.3");
  });

  it("attack: URL syntax in a spelling is refused, not parsed away (partner.example/x, partner%2Eexample)", () => {
    // node's domainToASCII parses its input as a URL host: a path, query, fragment, port or
    // percent-escape was cut off or decoded, so bob@partner.example/x became partner.example's mail
    // while every other MTA or filter on the way saw another (invalid) domain
    for (const bad of [
      "partner.example/x",
      "partner.example\\x",
      "partner.example?x",
      "partner.example#x",
      "partner%2Eexample",
      "partner.example:25",
      "partner.example／x",
    ])
      assert.equal(canonicalDomain(bad), undefined, bad);
    const c = RelayConfig.parse(base());
    assert.equal(routeFor("partner.example/x", c).hold?.status, "5.1.3");
  });

  it("patterns: wildcards and the catch-all keep their shape", () => {
    assert.equal(canonicalPattern("*.Bücher.example"), "*.xn--bcher-kva.example");
    assert.equal(canonicalPattern("*"), "*");
    assert.equal(canonicalPattern("*.xn--zz.example"), undefined);
  });

  it("every spelling of a protected domain is routed by its policy", () => {
    const c = RelayConfig.parse({
      ...base(),
      policies: [
        { name: "mail/buecher", domains: ["xn--bcher-kva.example"], outbound: { tls: { mode: "verify" } } },
      ],
    });
    for (const d of ["bücher.example", "BÜCHER.example", "ｂüｃｈｅｒ。example", "xn--bcher-kva.example."])
      assert.equal(decision(d, c), "mail/buecher:verify", d);
    const g = groupRecipients(["a@bücher.example", "b@xn--bcher-kva.example"], c);
    assert.equal(g.length, 1);
    assert.equal(g[0]!.route?.domain, "xn--bcher-kva.example");
  });

  it("the operator compiles U-label-free patterns to their canonical form and refuses invalid A-labels", () => {
    const bad = policy("bad", "2026-01-01T00:00:00Z", { domains: ["xn--zz.example"] });
    const r = compileRelayConfig(relay(), [bad], clusterView());
    assert.equal(r.problems.get("mail/bad")![0]!.reason, "InvalidSpec");
    assert.match(r.problems.get("mail/bad")![0]!.message, /spec\.domains\[0\].*xn--zz\.example/);
  });
});

describe("issue 14 finding 4: a catch-all never captures local domains", () => {
  const c = RelayConfig.parse({
    ...base(),
    inbound: {
      localDomains: ["example.com", "*.example.com"],
      internalNextHop: { host: "exchange.mail.svc", port: 25 },
    },
    defaultOutbound: {
      tls: { mode: "verify", matchNames: ["smarthost.isp.example"] },
      nextHop: { host: "smarthost.isp.example", port: 587 },
    },
    policies: [
      {
        name: "mail/wild",
        domains: ["*.example.com"],
        outbound: { tls: { mode: "required" }, nextHop: { host: "elsewhere.example", port: 25 } },
      },
      {
        name: "mail/named",
        domains: ["hr.example.com"],
        outbound: { tls: { mode: "verify" }, nextHop: { host: "hr-mail.example", port: 25 } },
      },
      { name: "mail/named-no-hop", domains: ["it.example.com"], outbound: { tls: { mode: "required" } } },
    ],
  });

  it("local domains go to the internal next hop, not to the catch-all's or a wildcard's next hop", () => {
    for (const d of ["example.com", "sales.example.com"]) {
      const r = routeFor(d, c);
      assert.deepEqual(r.route?.nextHop, { host: "exchange.mail.svc", port: 25 }, d);
      assert.equal(r.route?.policy, "local");
      assert.equal(r.route?.outbound.authCredential, undefined);
    }
  });

  it("a policy naming a local domain exactly decides it (its next hop, else the internal one)", () => {
    assert.deepEqual(routeFor("hr.example.com", c).route?.nextHop, { host: "hr-mail.example", port: 25 });
    assert.equal(routeFor("hr.example.com", c).route?.policy, "mail/named");
    assert.deepEqual(routeFor("it.example.com", c).route?.nextHop, { host: "exchange.mail.svc", port: 25 });
    assert.equal(routeFor("it.example.com", c).route?.outbound.tls.mode, "required");
  });

  it("other domains still go to the catch-all's next hop", () => {
    assert.deepEqual(routeFor("partner.example", c).route?.nextHop, {
      host: "smarthost.isp.example",
      port: 587,
    });
  });

  it("the operator compiles a catch-all with a next hop without capturing local domains", () => {
    const all = policy("smarthost", "2026-01-01T00:00:00Z", {
      domains: ["*"],
      outbound: { tls: { mode: "required" }, nextHop: { host: "smarthost.isp.example", port: 587 } },
    });
    const r = compileRelayConfig(relay(), [all], clusterView());
    assert.deepEqual(routeFor("example.com", r.config).route?.nextHop, {
      host: "exchange.mail.svc",
      port: 25,
    });
    assert.deepEqual(routeFor("x.example", r.config).route?.nextHop, {
      host: "smarthost.isp.example",
      port: 587,
    });
  });
});

function base(): RelayConfigInput {
  return minimalRelayConfig({ queue: { dir: "/var/spool/sealpost" } });
}
