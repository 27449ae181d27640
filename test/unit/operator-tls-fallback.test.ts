// spec.outbound.tls.fallback compiled (operator/compile/fallback.ts): each action into the relay
// config's outbound.tlsFallback with its references mounted, defer into nothing (the same config as
// without it), and what the CEL rules refuse refused by the compiler too (InvalidSpec), so an object
// written past them never gets a weaker fallback than the API allows.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePolicyEntry } from "../../operator/compile/policy.js";
import { policyReferences } from "../../operator/compile/references.js";
import type { MailDomainPolicy } from "../../operator/api.js";

const view = {
  credentials: new Map(),
  secrets: new Map([["partner-smime", { keys: new Set(["bob.pem", "readme.txt"]) }]]),
  configMaps: new Map([["portal-ca", new Set(["ca.crt"])]]),
  services: new Map(),
};

function policy(tls: Record<string, unknown>, outbound: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name: "partner", namespace: "mail" },
    spec: { domains: ["partner.example"], outbound: { tls, ...outbound } },
  };
}

const verify = { mode: "verify", trustSystemRoots: true };
const smime = { recipientCertificates: { secretRef: { name: "partner-smime" } } };
const route = {
  host: "portal.example.com",
  tls: { mode: "verify", caBundle: { configMapRef: { name: "portal-ca" } } },
};

describe("compiling spec.outbound.tls.fallback", () => {
  it("smime: the recipient certificates mounted, session required unless said otherwise", () => {
    const e = compilePolicyEntry(policy({ ...verify, fallback: { action: "smime", smime } }), "mail", view);
    assert.deepEqual(e.problems, []);
    assert.deepEqual(e.policy?.outbound.tlsFallback, {
      action: "smime",
      session: "required",
      smime: {
        certificateFiles: ["secrets/partner-smime/bob.pem"],
        sign: false,
        contentEncryption: "aes-256-cbc",
      },
    });
    const clear = compilePolicyEntry(
      policy({ ...verify, fallback: { action: "smime", smime: { ...smime, session: "opportunistic" } } }),
      "mail",
      view,
    );
    assert.equal(
      clear.policy?.outbound.tlsFallback?.action === "smime" && clear.policy.outbound.tlsFallback.session,
      "opportunistic",
    );
  });

  it("route: the alternate next hop with its own TLS and CA file; defer: nothing at all", () => {
    const e = compilePolicyEntry(policy({ ...verify, fallback: { action: "route", route } }), "mail", view);
    assert.deepEqual(e.problems, []);
    assert.deepEqual(e.policy?.outbound.tlsFallback, {
      action: "route",
      nextHop: { host: "portal.example.com", port: 25 },
      tls: { mode: "verify", minVersion: "TLSv1.2", caFile: "configmaps/portal-ca/ca.crt" },
    });
    const deferred = compilePolicyEntry(policy({ ...verify, fallback: { action: "defer" } }), "mail", view);
    const none = compilePolicyEntry(policy(verify), "mail", view);
    assert.deepEqual(deferred.policy, none.policy);
  });

  it("the fallback's Secret and ConfigMap requeue the policy", () => {
    const refs = (fallback: unknown) =>
      policyReferences(policy({ ...verify, fallback }) as MailDomainPolicy, new Map());
    assert.ok(refs({ action: "smime", smime }).secrets.has("partner-smime"));
    assert.ok(refs({ action: "route", route }).configMaps.has("portal-ca"));
  });

  it("refuses what the CEL rules refuse, naming the field (InvalidSpec), and a missing reference", () => {
    const problems = (p: unknown) => compilePolicyEntry(p, "mail", view).problems.map((x) => x.message);
    const cases: [unknown, RegExp][] = [
      [
        policy({ mode: "opportunistic", fallback: { action: "smime", smime } }),
        /tls\.fallback: mode opportunistic/,
      ],
      [policy({ mode: "none", fallback: { action: "route", route } }), /tls\.fallback: mode none/],
      [policy({ ...verify, fallback: { action: "route" } }), /tls\.fallback\.route: action route needs it/],
      [policy({ ...verify, fallback: { action: "smime" } }), /tls\.fallback\.smime: action smime needs it/],
      [
        policy(
          { ...verify, fallback: { action: "smime", smime } },
          {
            messageEncryption: { smime: { recipientCertificates: { secretRef: { name: "partner-smime" } } } },
          },
        ),
        /tls\.fallback\.action: messageEncryption\.smime already encrypts/,
      ],
      [
        policy({
          ...verify,
          fallback: { action: "route", route: { host: "p.example", tls: { mode: "verify" } } },
        }),
        /route\.tls\.caBundle: mode verify needs/,
      ],
      [
        policy({
          ...verify,
          fallback: { action: "route", route: { host: "p.example", tls: { mode: "required" } } },
        }),
        /tls\.fallback\.route\.tls\.mode/,
      ],
      [
        policy({
          ...verify,
          fallback: { action: "smime", smime: { recipientCertificates: { secretRef: { name: "gone" } } } },
        }),
        /Secret mail\/gone not found/,
      ],
    ];
    for (const [p, says] of cases) {
      const found = problems(p);
      assert.ok(
        found.some((m) => says.test(m)),
        `${String(says)}: ${found.join("; ")}`,
      );
      assert.equal(compilePolicyEntry(p, "mail", view).policy, undefined);
    }
  });
});
