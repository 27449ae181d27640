// Attack (outbound review, round 7): a time-limited exception relaxes ONE domain of a policy ("Other
// domains of the policy keep the policy as written", api/v1alpha1/policy-exceptions.ts). A policy
// with several domains and a nextHop grouped all of its recipients into one transaction, resolved
// under the FIRST recipient's domain: a sender who put a recipient at the excepted domain first got
// the other domain's copy sent under the exception too (here in clear text, to a next hop that offers
// no STARTTLS, while the policy is mode verify). route.ts decidedPerDomain now splits such groups.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

let f: RelayFixture;
let logs: LogCapture;
let peer: PostfixPeer;
const HOUR = 3_600_000;

before(async () => {
  f = await relayFixture("attack-exception-cohort");
  // the partners' gateway: no STARTTLS at all (or an attacker on the path stripped it)
  peer = await startPostfix({ domains: ["legacy.test", "strict.test"], tls: "none" });
  const now = Date.now();
  const p: PolicyInput = {
    name: "partners/group",
    domains: ["legacy.test", "strict.test"],
    outbound: {
      tls: {
        mode: "verify",
        matchNames: ["mx.legacy.test"],
        exceptions: [
          {
            name: "legacy-no-tls",
            domain: "legacy.test",
            mode: "opportunistic",
            from: new Date(now - HOUR).toISOString(),
            until: new Date(now + HOUR).toISOString(),
          },
        ],
      },
      nextHop: { host: peer.host, port: peer.port },
    },
  };
  await f.configure({ policies: [p] });
  ({ logs } = await f.start());
});

after(async () => {
  await f?.stop(() => peer?.stop());
});

describe("an exception for one domain of a multi-domain policy (attacker: recipient order)", () => {
  it("control: strict.test alone is deferred under verify (no STARTTLS)", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "alice@local.test",
      to: "carol@strict.test",
      headers: { "X-Test-Id": "alone" },
    });
    assert.equal(r.code, 0, r.transcript);
    const l = await waitFor(
      "deferral",
      () => logs.find((x) => x.event === "delivery" && x.queueId === r.queueId && x.result === "deferred"),
      20_000,
    );
    assert.equal(l.code, "TLS_NOT_OFFERED");
  });

  it("strict.test's copy is not sent under legacy.test's exception when both are recipients", async () => {
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "alice@local.test",
      to: ["bob@legacy.test", "carol@strict.test"],
      headers: { "X-Test-Id": "cohort" },
    });
    assert.equal(r.code, 0, r.transcript);
    // legacy.test's copy goes (the exception allows clear text for it)
    await waitFor(
      "legacy.test delivered",
      async () => (await peer.messages()).find((m) => m.headers["x-test-id"]?.[0] === "cohort"),
      20_000,
    );
    // carol's own attempt has ended, one way or the other
    const carol = await waitFor(
      "carol@strict.test's attempt",
      () =>
        logs.find((x) => x.event === "recipient" && x.queueId === r.queueId && x.to === "carol@strict.test"),
      20_000,
    );
    const got = (await peer.messages()).filter((m) => m.headers["x-test-id"]?.[0] === "cohort");
    const strict = got.find((m) => m.recipient === "carol@strict.test");
    const attempts = logs.lines.filter((x) => x.event === "delivery" && x.queueId === r.queueId);
    assert.equal(
      strict,
      undefined,
      `carol@strict.test (mode verify, no exception) was delivered in clear: ${JSON.stringify(
        attempts.map((a) => ({
          result: a.result,
          level: a.level,
          exception: a.exception,
          recipients: a.recipients,
          domain: a.domain,
        })),
      )}`,
    );
    assert.equal(carol.status, "deferred");
  });
});
