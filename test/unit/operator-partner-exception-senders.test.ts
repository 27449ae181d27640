// Attack review, session 9 (sixth round, of 9e48018 "a partner's login sends as each naming policy's
// routed domains"), legitimate use: the documented exception for a wildcard partner (a subdomain's
// policy created first) naming the partner's login too, where the partner's RelayCredential lists its
// senderDomains (as issue 15's partner-in does). The operator checked the credential's senderDomains
// against each naming policy alone, so the exception policy was left out and the login held: the
// partner could not log in at all. Now only the relay decides senders (routed by a naming policy,
// narrowed by senderDomains): from the operator's compile to the relay's checks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MailDomainPolicy, RelayCredential } from "../../api/v1alpha1/index.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { allowedAccounts, checkSender, compileAuthority } from "../../relay/inbound/authority.js";
import { compileInbound, decideInbound } from "../../relay/inbound/rules.js";
import { clusterView, mailRelay, recordedSince } from "../support/operator-fixtures.js";

const relay = mailRelay(
  {
    inbound: {
      relayFrom: ["10.0.0.0/8"],
      localDomains: ["example.com"],
      internalNextHop: { host: "exchange.mail.svc" },
    },
    policySelector: { matchLabels: { relay: "edge" } },
  },
  3,
);

const policy = (name: string, spec: Partial<MailDomainPolicy["spec"]> & { domains: string[] }, at: string) =>
  recordedSince(
    {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: { name, namespace: "mail", labels: { relay: "edge" }, generation: 1 },
      spec: { outbound: { tls: { mode: "required" } }, ...spec },
    },
    at,
  );

const partnerIn: RelayCredential = {
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "RelayCredential",
  metadata: { name: "partner-in", namespace: "mail" },
  spec: {
    type: "password",
    usage: "inbound",
    username: "partner",
    passwordSecretRef: { name: "partner-in", key: "password" },
    senderDomains: ["partner.example", "*.partner.example"],
  },
};

const inbound = {
  hosts: ["203.0.113.0/24"],
  require: "tls+auth" as const,
  credentialRef: { name: "partner-in" },
};

describe("a partner's login with senderDomains, named by its wildcard policy and its exception", () => {
  it("sends as both the parent and the exception subdomain from the partner's hosts", () => {
    // the exception first, as docs/architecture.md prescribes
    const eu = policy("partner-eu", { domains: ["eu.partner.example"], inbound }, "2026-01-01T00:00:00Z");
    const wild = policy(
      "partner",
      { domains: ["partner.example", "*.partner.example"], inbound },
      "2026-01-02T00:00:00Z",
    );
    const r = compileRelayConfig(
      relay,
      [eu, wild],
      clusterView({ secrets: { "partner-in": ["password"] }, credentials: [partnerIn] }),
    );
    const problems = [...r.problems.entries()].map(([k, v]) => `${k}: ${v.map((p) => p.message).join("; ")}`);
    const c = r.config;
    const ci = compileInbound(c);
    assert.ok(ci.ok);
    const a = compileAuthority(c, new Map());
    const d = decideInbound(ci.value, "203.0.113.5", "submission");
    const g = a.grants.get("partner-in");
    const result = {
      problems,
      held: c.heldCredentials,
      loginFromPartnerHost: allowedAccounts(a, d).includes("partner-in"),
      apex: g ? (checkSender(a, g, "billing@partner.example")?.code ?? 250) : "no grant",
      eu: g ? (checkSender(a, g, "billing@eu.partner.example")?.code ?? 250) : "no grant",
    };
    assert.deepEqual(result, { problems: [], held: [], loginFromPartnerHost: true, apex: 250, eu: 250 });
  });
});
