// Review of the config fit (d673259), on the wire: a partner's policy left out for size
// (operator/compile/relay-config.ts, the leftOut branch) left its domains deferred by digest but
// dropped its inbound host rule with it (deferredPolicies carried no hosts; relay/inbound/rules.ts
// compileInbound read config.policies only). The partner's sending servers, which the policy says
// must use STARTTLS before the relay accepts their mail (spec.inbound.require tls), were then let in
// in clear: the left-out policy was enforced weaker, not deferred. A tenant reached this for the
// administrator's policy, and any partner's policy created after a flood is left out. Now the
// deferred entry keeps the host rule (hosts and requirement, no login), and the relay applies it;
// test/unit/attack-config-fit.test.ts checks the compile emits it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { domainDigest } from "../../relay/contract/domains.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let sink: Sink;
const PARTNER_MTA = "127.0.0.7";

function config(leftOut: boolean): Partial<RelayConfigInput> {
  const hop = { host: "127.0.0.1", port: sink.port };
  const partner = {
    name: "mail/partner",
    domains: ["partner.example"],
    outbound: { tls: { mode: "none" as const }, nextHop: hop },
    inbound: { hosts: [`${PARTNER_MTA}/32`], require: "tls" as const },
  };
  return {
    listeners: {
      smtp: { port: f.ports.smtp, host: "127.0.0.1" },
      smtps: { port: f.ports.smtps, host: "127.0.0.1" },
      submission: { port: f.ports.submission, host: "127.0.0.1" },
    },
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["corp.example.com"],
      internalNextHop: hop,
    },
    policies: leftOut ? [] : [partner],
    // what compileRelayConfig emits for a policy left out for size
    deferredPolicies: leftOut
      ? [
          {
            name: "mail/partner",
            domains: [],
            domainDigests: [domainDigest("partner.example")],
            reason: "ConfigTooLarge: MailRelay mail/edge's configuration would be over its limit",
            inbound: { hosts: [`${PARTNER_MTA}/32`], require: "tls" as const },
          },
        ]
      : [],
    defaultOutbound: { tls: { mode: "none" }, nextHop: hop },
  };
}

before(async () => {
  f = await relayFixture("fit-left-out-inbound");
  sink = await startSink();
  await f.configure(config(false));
  await f.start();
});
after(async () => {
  await f?.stop(async () => {
    await sink?.close();
  });
});

// the partner's MTA delivering to the organisation's local domain, without STARTTLS
const partnerInClear = () =>
  swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "bob@partner.example",
    to: "alice@corp.example.com",
    extraArgs: ["--local-interface", PARTNER_MTA],
    quitAfter: "RCPT",
    timeoutSeconds: 15,
  });

describe("config fit review: a partner's policy left out for size", () => {
  it("its hosts must still use STARTTLS (its inbound rule is not dropped while its domains are deferred)", async () => {
    const inForce = await partnerInClear();
    console.log("policy in the config:", inForce.replyTo("MAIL")?.code, inForce.failure?.lines.join(" "));
    assert.notEqual(inForce.replyTo("MAIL")?.code, 250, "with the policy in force, clear text is refused");
    await f.configure(config(true));
    await f.relay!.checkConfig();
    const cut = await partnerInClear();
    console.log(
      "policy left out for size:",
      "MAIL",
      cut.replyTo("MAIL")?.code,
      "RCPT",
      cut.replyTo("RCPT")?.code,
    );
    assert.notEqual(
      cut.replyTo("RCPT")?.code,
      250,
      `left out, the partner's MTA is let in without STARTTLS:\n${cut.transcript}`,
    );
  });
});
