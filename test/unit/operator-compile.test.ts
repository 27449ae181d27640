// Pure compile and render: MailRelay + policies + credentials + what exists → RelayConfig (or
// per-policy problems), and the Kubernetes objects rendered from it. No cluster.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MailDomainPolicy, RelayCredential } from "../../api/v1alpha1/index.js";
import { policyReferences } from "../../operator/compile/references.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { renderServerCertificate } from "../../operator/render/certificate.js";
import { RelayConfig } from "../../relay/contract/config.js";
import {
  clusterView,
  mailRelay,
  recordedSince,
  relayOwner,
  renderRelay,
} from "../support/operator-fixtures.js";
import type { KubeObject } from "../../operator/runtime/kube.js";

const relay = (spec: Record<string, unknown> = {}) =>
  mailRelay(
    {
      inbound: {
        relayFrom: ["10.0.0.0/8"],
        localDomains: ["example.com"],
        internalNextHop: { host: "exchange.mail.svc" },
      },
      policySelector: { matchLabels: { relay: "edge" } },
      ...spec,
    },
    3,
  );

const policy = (
  name: string,
  spec: Partial<MailDomainPolicy["spec"]> & { domains: string[] },
): MailDomainPolicy => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "MailDomainPolicy",
  metadata: { name, namespace: "mail", labels: { relay: "edge" } },
  spec: { outbound: { tls: { mode: "required" } }, ...spec },
});

/** `p` as the apiserver created it at `at` (generation 1), in force on edge since (claim-age.ts). */
function created(p: MailDomainPolicy, at: string): MailDomainPolicy {
  return recordedSince({ ...p, metadata: { ...p.metadata, generation: 1 } }, at);
}

const cred = (name: string, spec: RelayCredential["spec"]): RelayCredential => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind: "RelayCredential",
  metadata: { name, namespace: "mail" },
  spec,
});

const login = cred("partner-login", {
  type: "password",
  usage: "outbound",
  username: "relay-edge",
  passwordSecretRef: { name: "partner-login", key: "password" },
  restrictTo: { domains: ["partner.example", "*.partner.example", "p.example"] },
});

describe("compile", () => {
  it("compiles a relay with a fully referenced policy into a valid RelayConfig", () => {
    const p = policy("partner-lab", {
      domains: ["partner.example", "*.partner.example"],
      outbound: {
        tls: {
          mode: "verify",
          caBundle: { configMapRef: { name: "partner-ca", key: "ca.crt" } },
          matchNames: ["mx.partner.example"],
        },
        auth: { credentialRef: { name: "partner-login" } },
        nextHop: { host: "smtp.partner.example", port: 2525 },
      },
      inbound: { hosts: ["203.0.113.0/24"], require: "tls" },
    });
    const r = compileRelayConfig(
      relay(),
      [p],
      clusterView({
        secrets: { "partner-login": ["password"] },
        configMaps: { "partner-ca": ["ca.crt"] },
        // the policy sets its own nextHop: the password goes there only if restrictTo.nextHops lists it
        credentials: [
          cred("partner-login", {
            ...login.spec,
            restrictTo: { ...login.spec.restrictTo, nextHops: ["smtp.partner.example"] },
          }),
        ],
      }),
    );
    assert.deepEqual(r.included, ["mail/partner-lab"]);
    assert.equal(r.problems.size, 0);
    RelayConfig.parse(JSON.parse(r.json));
    assert.equal(r.config.generation, 3);
    assert.equal(r.config.policies[0]!.outbound.tls.caFile, "configmaps/partner-ca/ca.crt");
    assert.equal(r.config.credentials["partner-login"]?.type, "password");
    assert.equal(r.config.inbound.internalNextHop?.port, 25);
    assert.equal(r.config.inbound.maxMessageSize, 50 * 1024 * 1024);
    assert.deepEqual(r.egressPorts, [2525]);
    assert.deepEqual(
      r.sources.map((s) => [s.kind, s.name, s.items.map((i) => i.path)]),
      [
        ["secret", "partner-login", ["secrets/partner-login/password"]],
        ["configMap", "partner-ca", ["configmaps/partner-ca/ca.crt"]],
      ],
    );
  });

  it("issue 15: compiles inbound authority (allowRelay, senderDomains), localRecipients, hopLimit and the IPv6 prefix", () => {
    const partnerIn = cred("partner-in", {
      type: "password",
      usage: "inbound",
      username: "partner",
      passwordSecretRef: { name: "partner-in", key: "password" },
      senderDomains: ["partner.example", "*.partner.example"],
    });
    const app = cred("app", {
      type: "password",
      usage: "inbound",
      username: "app",
      passwordSecretRef: { name: "app", key: "password" },
      allowRelay: true,
    });
    const p = policy("partner", {
      domains: ["partner.example", "*.partner.example"],
      inbound: { hosts: ["203.0.113.0/24"], require: "tls+auth", credentialRef: { name: "partner-in" } },
    });
    const r = compileRelayConfig(
      relay({
        inbound: {
          relayFrom: ["10.0.0.0/8"],
          localDomains: ["example.com"],
          internalNextHop: { host: "exchange.mail.svc" },
          credentialRefs: [{ name: "app" }],
          localRecipients: { addresses: ["bob@example.com"], configMapRef: { name: "staff", key: "list" } },
          hopLimit: 30,
          ipv6ClientPrefixLength: 56,
        },
      }),
      [p],
      clusterView({
        secrets: { "partner-in": ["password"], app: ["password"] },
        configMaps: { staff: ["list"] },
        credentials: [partnerIn, app],
      }),
    );
    assert.equal(r.problems.size, 0);
    assert.deepEqual(r.relayProblems, []);
    const c = r.config;
    assert.deepEqual(c.credentials["partner-in"], {
      type: "password",
      usage: "inbound",
      username: "partner",
      passwordFile: "secrets/partner-in/password",
      senderDomains: ["partner.example", "*.partner.example"],
    });
    assert.equal(c.credentials.app?.type === "password" && c.credentials.app.allowRelay, true);
    assert.deepEqual(c.inbound.localRecipients, {
      addresses: ["bob@example.com"],
      files: ["configmaps/staff/list"],
    });
    assert.equal(c.inbound.hopLimit, 30);
    assert.equal(c.inbound.limits.ipv6PrefixLength, 56);
    assert.ok(r.sources.some((s) => s.kind === "configMap" && s.name === "staff"));
    // defaults; a missing recipients ConfigMap keeps the inline list (refuses more, never accepts all)
    const d = compileRelayConfig(
      relay({
        inbound: {
          localDomains: ["example.com"],
          internalNextHop: { host: "exchange.mail.svc" },
          localRecipients: { configMapRef: { name: "gone", key: "list" } },
        },
      }),
      [],
      clusterView(),
    );
    assert.equal(d.config.inbound.hopLimit, 50);
    assert.equal(d.config.inbound.limits.ipv6PrefixLength, 64);
    assert.deepEqual(d.config.inbound.localRecipients, { addresses: [], files: [] });
    assert.deepEqual(d.relayProblems, [
      { reason: "MissingReference", message: "ConfigMap mail/gone not found" },
    ]);
  });

  it("issue 20 item 7: S/MIME contentEncryption reaches the relay's config; absent, AES-256-CBC", () => {
    const smime = (contentEncryption?: "aes-256-cbc" | "aes-256-gcm") =>
      policy(`sm-${contentEncryption ?? "default"}`, {
        domains: [`${contentEncryption ?? "default"}.partner.example`],
        outbound: {
          tls: { mode: "required" },
          messageEncryption: {
            smime: {
              recipientCertificates: { configMapRef: { name: "certs" } },
              ...(contentEncryption ? { contentEncryption } : {}),
            },
          },
        } as MailDomainPolicy["spec"]["outbound"],
      });
    const r = compileRelayConfig(
      relay(),
      [smime("aes-256-gcm"), smime()],
      clusterView({ configMaps: { certs: ["a.crt"] } }),
    );
    assert.equal(r.problems.size, 0);
    const byPolicy = new Map(r.config.policies.map((p) => [p.name, p.outbound.smime?.contentEncryption]));
    assert.equal(byPolicy.get("mail/sm-aes-256-gcm"), "aes-256-gcm");
    assert.equal(byPolicy.get("mail/sm-default"), "aes-256-cbc");
  });

  it("issue 20 item 6: OpenPGP keyrings (.asc keys), WKD and the signing key reach the relay's config; a missing one defers the policy", () => {
    const pgp = (name: string, openpgp: Record<string, unknown>) =>
      policy(name, {
        domains: [`${name}.partner.example`],
        outbound: {
          tls: { mode: "required" },
          messageEncryption: { openpgp },
        } as MailDomainPolicy["spec"]["outbound"],
      });
    const r = compileRelayConfig(
      relay(),
      [
        pgp("ring", {
          recipientKeys: { secretRef: { name: "keys" }, webKeyDirectory: true },
          signingKeyRef: { name: "relay-pgp" },
        }),
        pgp("wkd", { recipientKeys: { webKeyDirectory: true }, missingKey: "bounce" }),
        pgp("gone", { recipientKeys: { configMapRef: { name: "absent" } } }),
      ],
      clusterView({
        secrets: { keys: ["b.asc", "a.asc", "readme.txt"], "relay-pgp": ["signing-key.asc"] },
      }),
    );
    const byPolicy = new Map(r.config.policies.map((p) => [p.name, p.outbound.openpgp]));
    assert.deepEqual(byPolicy.get("mail/ring"), {
      keyringFiles: ["secrets/keys/a.asc", "secrets/keys/b.asc"],
      webKeyDirectory: true,
      missingKey: "defer",
      signingKeyFile: "secrets/relay-pgp/signing-key.asc",
    });
    assert.deepEqual(byPolicy.get("mail/wkd"), {
      keyringFiles: [],
      webKeyDirectory: true,
      missingKey: "bounce",
    });
    assert.equal(byPolicy.has("mail/gone"), false);
    assert.ok(r.config.deferredPolicies.some((d) => d.name === "mail/gone"));
  });

  it("is deterministic: input order does not change the config or its hash", () => {
    const a = policy("a", { domains: ["a.example"] });
    const b = policy("b", { domains: ["b.example"] });
    assert.equal(
      compileRelayConfig(relay(), [a, b], clusterView()).hash,
      compileRelayConfig(relay(), [b, a], clusterView()).hash,
    );
  });

  it("a domain conflict: the oldest keeps the domain, the newcomer is left out naming it; different specificity is no conflict", () => {
    // issue 14 finding 1: dropping both let anyone downgrade a partner by claiming its domain
    const a = created(policy("a", { domains: ["partner.example"] }), "2026-01-01T00:00:00Z");
    const b = created(policy("b", { domains: ["partner.example", "b.example"] }), "2026-01-02T00:00:00Z");
    const c = created(policy("c", { domains: ["*.partner.example"] }), "2026-01-03T00:00:00Z");
    const r = compileRelayConfig(relay(), [a, b, c], clusterView());
    assert.deepEqual(r.included, ["mail/a", "mail/c"]);
    assert.equal(r.problems.has("mail/a"), false);
    assert.equal(r.problems.get("mail/b")![0]!.reason, "DomainConflict");
    assert.match(r.problems.get("mail/b")![0]!.message, /mail\/a/);
    assert.deepEqual(r.config.deferredPolicies, [
      {
        name: "mail/b",
        domains: ["b.example"],
        reason: `DomainConflict: ${r.problems.get("mail/b")![0]!.message}`,
      },
    ]);
  });

  it("attack review, session 8: a claim's age is when it began, not the policy's creation; equally old claims decide nothing", () => {
    const partner = created(
      policy("partner", { domains: ["partner.example"], outbound: { tls: { mode: "verify" } } }),
      "2026-01-02T00:00:00Z",
    );
    // an older policy edited (generation 2) to add the partner's domain: its claim is the edit's,
    // unknown until the operator records it, so newer than the partner's
    const edited = {
      ...created(policy("old", { domains: ["old.example", "partner.example"] }), "2026-01-01T00:00:00Z"),
      status: { claims: [{ domain: "old.example", since: "2026-01-01T00:00:00.000Z" }] },
    };
    edited.metadata = { ...edited.metadata, generation: 2 };
    const r = compileRelayConfig(relay(), [partner, edited], clusterView());
    assert.deepEqual(r.included, ["mail/partner"]);
    assert.equal(r.problems.get("mail/old")![0]!.reason, "DomainConflict");
    // once recorded, the edit's claim keeps its date: still newer than the partner's
    const recorded = recordedSince(edited, "2026-01-01T00:00:00Z");
    recorded.status = {
      ...recorded.status,
      claims: [
        { domain: "old.example", since: "2026-01-01T00:00:00.000Z" },
        { domain: "partner.example", since: "2026-01-05T00:00:00.000Z" },
      ],
    };
    assert.deepEqual(compileRelayConfig(relay(), [partner, recorded], clusterView()).included, [
      "mail/partner",
    ]);
    // the partner's own later edit keeps its recorded claim
    const partnerEdited = { ...partner, metadata: { ...partner.metadata, generation: 3 } };
    assert.deepEqual(compileRelayConfig(relay(), [partnerEdited, recorded], clusterView()).included, [
      "mail/partner",
    ]);
    // a claim parked on no relay (recorded long ago), labelled onto edge later: on edge it dates from
    // the selection (the review of the first fix); before that is recorded, it is undated
    const parked = recordedSince(
      policy("parked", { domains: ["partner.example"], outbound: { tls: { mode: "none" } } }),
      "2025-06-01T00:00:00Z",
      { name: "nowhere", uid: "u-nowhere" },
    );
    assert.deepEqual(compileRelayConfig(relay(), [partner, parked], clusterView()).included, [
      "mail/partner",
    ]);
    parked.status = {
      ...parked.status,
      selectedBy: [{ relay: "edge", uid: "u1", since: "2026-02-01T00:00:00.000Z" }],
    };
    assert.deepEqual(compileRelayConfig(relay(), [partner, parked], clusterView()).included, [
      "mail/partner",
    ]);
    // created in the same second: no claim is older, none decides, the domain is deferred once
    const twin = created(
      policy("a-twin", { domains: ["partner.example"], outbound: { tls: { mode: "none" } } }),
      "2026-01-02T00:00:00Z",
    );
    const t = compileRelayConfig(relay(), [partner, twin], clusterView());
    assert.deepEqual(t.included, []);
    assert.match(t.problems.get("mail/partner")![0]!.message, /no claim is older/);
    assert.match(t.problems.get("mail/a-twin")![0]!.message, /no claim is older/);
    assert.deepEqual(
      t.config.deferredPolicies.flatMap((d) => d.domains),
      ["partner.example"],
    );
    // a wildcard added by an edit does not take a subdomain an exact policy claimed first
    const exact = created(policy("eu", { domains: ["eu.bank.example"] }), "2026-01-02T00:00:00Z");
    // (its record names its other claims and edge's selection, not the wildcard the edit added)
    const wide = created(policy("wide", { domains: ["*.bank.example"] }), "2026-01-01T00:00:00Z");
    wide.metadata = { ...wide.metadata, generation: 2 };
    wide.status = { ...wide.status, claims: [] };
    const w = compileRelayConfig(relay(), [exact, wide], clusterView());
    assert.deepEqual(w.included, ["mail/eu", "mail/wide"]);
  });

  it("a policy may not take a local domain of the relay (attack review 3a): left out, the domain stays local", () => {
    // a namespace user's policy naming the relay's local domain exactly would route its inbound mail
    // to the user's next hop (relay/outbound/route.ts prefers an exact policy name)
    const steal = policy("steal", {
      domains: ["example.com", "other.example"],
      outbound: { tls: { mode: "none" }, nextHop: { host: "mx.attacker.example", port: 25 } },
    });
    const wild = policy("wild", { domains: ["*.example.com"] }); // a wildcard never overrides local
    const r = compileRelayConfig(relay(), [steal, wild], clusterView());
    assert.deepEqual(r.included, ["mail/wild"]);
    const [problem] = r.problems.get("mail/steal")!;
    assert.equal(problem!.reason, "DomainConflict");
    assert.match(problem!.message, /domain example\.com is a local domain of MailRelay mail\/edge/);
    assert.match(problem!.message, /remove example\.com from spec\.domains/);
    // its other domains are deferred as for any left-out policy; the local one is not: it keeps its
    // internal route instead of being held
    assert.deepEqual(
      r.config.deferredPolicies.map((d) => [d.name, d.domains]),
      [["mail/steal", ["other.example"]]],
    );
    assert.ok(!r.config.policies.some((p) => p.domains.includes("example.com")));
  });

  it("attack review 8b: a policy may not name the relay's own inbound account: left out, the account stays relay-wide", () => {
    // the organisation's applications log in with `apps` from any host (spec.inbound.credentialRefs);
    // a namespace user's policy binding it to the user's host would make it a partner's account there
    // (without allowRelay: with it, the policy is refused before any relay looks at it, partnerLoginProblem)
    const apps = cred("apps", {
      type: "password",
      usage: "inbound",
      username: "apps",
      passwordSecretRef: { name: "apps", key: "password" },
    });
    const own = cred("team-b-in", {
      type: "password",
      usage: "inbound",
      username: "team-b",
      passwordSecretRef: { name: "team-b-in", key: "password" },
    });
    const take = policy("take", {
      domains: ["team-b.example"],
      inbound: { hosts: ["203.0.113.7/32"], require: "tls+auth", credentialRef: { name: "apps" } },
    });
    const fine = policy("fine", {
      domains: ["team-c.example"],
      inbound: { hosts: ["198.51.100.0/24"], require: "tls+auth", credentialRef: { name: "team-b-in" } },
    });
    const r = compileRelayConfig(
      relay({
        inbound: {
          relayFrom: ["10.0.0.0/8"],
          localDomains: ["example.com"],
          internalNextHop: { host: "exchange.mail.svc" },
          credentialRefs: [{ name: "apps" }],
        },
      }),
      [take, fine],
      clusterView({ secrets: { apps: ["password"], "team-b-in": ["password"] }, credentials: [apps, own] }),
    );
    assert.deepEqual(r.included, ["mail/fine"]);
    const problems = r.problems.get("mail/take")!;
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.reason, "InvalidReference");
    const message = problems[0]!.message;
    assert.match(message, /^spec\.inbound\.credentialRef names RelayCredential mail\/apps/);
    assert.match(message, /relay-wide inbound account of MailRelay mail\/edge/);
    assert.match(message, /remove apps from the MailRelay's spec\.inbound\.credentialRefs/);
    // its domains are deferred as for any policy left out; no policy binds the account to a host
    assert.deepEqual(
      r.config.deferredPolicies.map((d) => [d.name, d.domains]),
      [["mail/take", ["team-b.example"]]],
    );
    assert.ok(!r.config.policies.some((p) => p.inbound?.credentials?.includes("apps")));
    assert.equal(r.config.credentials.apps?.type, "password");
  });

  it("names exactly what is missing", () => {
    const p = policy("p", {
      domains: ["p.example"],
      outbound: { tls: { mode: "required" }, auth: { credentialRef: { name: "partner-login" } } },
    });
    const missingKey = compileRelayConfig(
      relay(),
      [p],
      clusterView({ secrets: { "partner-login": ["user"] }, credentials: [login] }),
    );
    assert.deepEqual(missingKey.problems.get("mail/p"), [
      { reason: "MissingReference", message: 'Secret mail/partner-login key "password" not found' },
    ]);
    const missingSecret = compileRelayConfig(relay(), [p], clusterView({ credentials: [login] }));
    assert.equal(missingSecret.problems.get("mail/p")![0]!.message, "Secret mail/partner-login not found");
    const missingCred = compileRelayConfig(relay(), [p], clusterView());
    assert.equal(
      missingCred.problems.get("mail/p")![0]!.message,
      "RelayCredential mail/partner-login not found",
    );
    const ca = policy("ca", {
      domains: ["ca.example"],
      outbound: { tls: { mode: "verify", caBundle: { configMapRef: { name: "cas", key: "ca.crt" } } } },
    });
    assert.equal(
      compileRelayConfig(relay(), [ca], clusterView()).problems.get("mail/ca")![0]!.message,
      "ConfigMap mail/cas not found",
    );
    assert.deepEqual(missingKey.included, []);
  });

  it("finding 5: a RelayCredential restricted to domains/next hops is refused for a policy that uses it elsewhere", () => {
    const limited = cred("partner-login", {
      ...login.spec,
      restrictTo: { domains: ["partner.example", "*.partner.example"], nextHops: ["smtp.partner.example"] },
    });
    const v = clusterView({ secrets: { "partner-login": ["password"] }, credentials: [limited] });
    const uses = (name: string, domains: string[], nextHop?: string) =>
      policy(name, {
        domains,
        outbound: {
          tls: { mode: "verify", trustSystemRoots: true },
          auth: { credentialRef: { name: "partner-login" } },
          ...(nextHop ? { nextHop: { host: nextHop, port: 25 } } : {}),
        },
      });
    // the attacker's policy: its own domain, its own next hop, the partner's password
    const r = compileRelayConfig(
      relay(),
      [
        uses("evil-hop", ["c.partner.example"], "mx.attacker.example"),
        uses("evil-domain", ["attacker.example"], "smtp.partner.example"),
        uses("mx-routed", ["a.partner.example"]),
        uses("good", ["partner.example", "b.partner.example"], "smtp.partner.example"),
      ],
      v,
    );
    assert.deepEqual(r.included, ["mail/good"]);
    const reason = (n: string) => r.problems.get(`mail/${n}`)![0]!;
    assert.equal(reason("evil-hop").reason, "InvalidReference");
    assert.match(reason("evil-hop").message, /does not include the policy's nextHop mx\.attacker\.example/);
    assert.match(reason("evil-domain").message, /does not cover attacker\.example/);
    assert.match(reason("mx-routed").message, /set outbound\.nextHop/);
    assert.equal(
      r.config.policies.find((p) => p.name === "mail/good")?.outbound.authCredential,
      "partner-login",
    );
  });

  it("no policy is weaker than the relay's catch-all (attack review 3b): left out, its domains deferred", () => {
    const catchAll = policy("all", { domains: ["*"], outbound: { tls: { mode: "mta-sts" } } });
    const plain = policy("plain", { domains: ["bank.example"], outbound: { tls: { mode: "none" } } });
    const unverified = policy("unverified", {
      domains: ["shop.example"],
      outbound: { tls: { mode: "required" } },
    });
    const strict = policy("strict", {
      domains: ["partner.example"],
      outbound: { tls: { mode: "verify", trustSystemRoots: true } },
    });
    const r = compileRelayConfig(relay(), [catchAll, plain, unverified, strict], clusterView());
    assert.deepEqual(r.included, ["mail/all", "mail/strict"]);
    const [p] = r.problems.get("mail/plain")!;
    assert.equal(p!.reason, "InvalidSpec");
    assert.match(p!.message, /spec\.outbound\.tls\.mode none is weaker than mta-sts/);
    assert.match(p!.message, /catch-all policy mail\/all/);
    // the modes at least as strong as mta-sts: verify, mta-sts, dane and (issue 19) pinned
    assert.match(p!.message, /\(verify, mta-sts, dane, pinned\)/);
    assert.match(r.problems.get("mail/unverified")![0]!.message, /mode required is weaker than mta-sts/);
    // never the catch-all's weaker-or-equal route: held until fixed
    assert.deepEqual(
      r.config.deferredPolicies.map((d) => d.domains),
      [["bank.example"], ["shop.example"]],
    );
    // without a catch-all the API's modes stay as they are
    assert.deepEqual(compileRelayConfig(relay(), [plain], clusterView()).included, ["mail/plain"]);
  });

  it("a catch-all that does not compile keeps its floor (attack review, session 6): its reference breaks, its spec does not parse", () => {
    // the administrator's catch-all names a CA bundle whose ConfigMap is gone (a botched rotation, or
    // someone who may delete ConfigMaps): it defers its own domains, and must not lift the floor
    const catchAll = policy("all", {
      domains: ["*"],
      outbound: {
        tls: {
          mode: "verify",
          minVersion: "TLSv1.3",
          caBundle: { configMapRef: { name: "corp-ca", key: "ca.crt" } },
        },
      },
    });
    const plain = policy("plain", {
      domains: ["bank.example"],
      outbound: { tls: { mode: "opportunistic" } },
    });
    const lower = policy("lower", {
      domains: ["partner.example"],
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.2", trustSystemRoots: true } },
    });
    const r = compileRelayConfig(relay(), [catchAll, plain, lower], clusterView());
    assert.deepEqual(r.included, [], "nothing below the floor gets in while the catch-all is broken");
    assert.equal(r.problems.get("mail/all")![0]!.reason, "MissingReference");
    assert.match(r.problems.get("mail/plain")![0]!.message, /mode opportunistic is weaker than verify/);
    assert.match(r.problems.get("mail/lower")![0]!.message, /minVersion TLSv1\.2 is lower than TLSv1\.3/);
    // with the ConfigMap back, the catch-all compiles and the floor is the same
    const fixed = compileRelayConfig(
      relay(),
      [catchAll, plain, lower],
      clusterView({ configMaps: { "corp-ca": ["ca.crt"] } }),
    );
    assert.deepEqual(fixed.included, ["mail/all"]);
    // a catch-all whose spec does not parse (a CRD drifted from the API): the strictest floor holds
    const unreadable = {
      ...policy("all", { domains: ["*"] }),
      spec: { domains: ["*"], outbound: { tls: { mode: "bogus" } } },
    };
    const required = policy("required", {
      domains: ["shop.example"],
      outbound: { tls: { mode: "required" } },
    });
    const u = compileRelayConfig(relay(), [unreadable, required], clusterView());
    assert.deepEqual(u.included, []);
    assert.match(
      u.problems.get("mail/required")![0]!.message,
      /weaker than verify, the mode of the strictest floor, held while the relay's catch-all policy mail\/all does not parse/,
    );
  });

  it("no fallback goes below the catch-all (attack review, session 6): a route's mode or minVersion, an S/MIME session", () => {
    const catchAll = policy("all", {
      domains: ["*"],
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.3", trustSystemRoots: true } },
    });
    const tls = (fallback: object) =>
      ({ mode: "verify", minVersion: "TLSv1.3", trustSystemRoots: true, fallback }) as never;
    const route = (minVersion: string) => ({
      action: "route",
      route: {
        host: "portal.shop.example",
        port: 25,
        tls: { mode: "verify", minVersion, trustSystemRoots: true },
      },
    });
    const smime = (session: string) => ({
      action: "smime",
      smime: { session, recipientCertificates: { configMapRef: { name: "law-certs" } } },
    });
    const lowRoute = policy("low-route", {
      domains: ["shop.example"],
      outbound: { tls: tls(route("TLSv1.2")) },
    });
    const goodRoute = policy("good-route", {
      domains: ["portal.example"],
      outbound: { tls: tls(route("TLSv1.3")) },
    });
    const clear = policy("clear-smime", {
      domains: ["law.example"],
      outbound: { tls: tls(smime("opportunistic")) },
    });
    const unverified = policy("tls-smime", {
      domains: ["court.example"],
      outbound: { tls: tls(smime("required")) },
    });
    const v = clusterView({ configMaps: { "law-certs": ["a.pem"] } });
    const r = compileRelayConfig(relay(), [catchAll, lowRoute, goodRoute, clear, unverified], v);
    assert.deepEqual(r.included, ["mail/all", "mail/good-route"]);
    const msg = (n: string) =>
      r.problems
        .get(`mail/${n}`)!
        .map((p) => `${p.reason}: ${p.message}`)
        .join("; ");
    assert.match(
      msg("low-route"),
      /InvalidSpec: spec\.outbound\.tls\.fallback\.route\.tls\.minVersion TLSv1\.2 is lower than TLSv1\.3/,
    );
    assert.match(
      msg("clear-smime"),
      /spec\.outbound\.tls\.fallback\.smime\.session opportunistic is weaker than verify/,
    );
    assert.match(
      msg("tls-smime"),
      /spec\.outbound\.tls\.fallback\.smime\.session required is weaker than verify/,
    );
    assert.deepEqual(
      r.config.deferredPolicies.map((d) => d.domains),
      [["law.example"], ["shop.example"], ["court.example"]],
    );
    // under a catch-all of required, an S/MIME fallback over required TLS is not below it
    const lenient = policy("all", {
      domains: ["*"],
      outbound: { tls: { mode: "required", minVersion: "TLSv1.3" } },
    });
    assert.deepEqual(compileRelayConfig(relay(), [lenient, unverified], v).included, [
      "mail/all",
      "mail/tls-smime",
    ]);
  });

  it("no policy has a lower TLS minVersion than the catch-all (security review): same mode is not enough", () => {
    // the attack: the admin's catch-all says verify with TLS 1.3 at least; a namespace user's policy
    // for a domain keeps the mode and lowers minVersion, which the mode-only floor let through
    const catchAll = policy("all", {
      domains: ["*"],
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.3", trustSystemRoots: true } },
    });
    const lower = policy("lower", {
      domains: ["partner.example"],
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.2", trustSystemRoots: true } },
    });
    const unset = policy("unset", {
      domains: ["shop.example"],
      outbound: { tls: { mode: "verify", trustSystemRoots: true } },
    });
    const same = policy("same", {
      domains: ["bank.example"],
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.3", trustSystemRoots: true } },
    });
    const r = compileRelayConfig(relay(), [catchAll, lower, unset, same], clusterView());
    assert.deepEqual(r.included, ["mail/all", "mail/same"]);
    const [p] = r.problems.get("mail/lower")!;
    assert.equal(p!.reason, "InvalidSpec");
    assert.match(p!.message, /spec\.outbound\.tls\.minVersion TLSv1\.2 is lower than TLSv1\.3/);
    assert.match(p!.message, /catch-all policy mail\/all/);
    assert.match(p!.message, /set spec\.outbound\.tls\.minVersion to TLSv1\.3/);
    assert.match(r.problems.get("mail/unset")![0]!.message, /minVersion TLSv1\.2 is lower than TLSv1\.3/);
    assert.deepEqual(
      r.config.deferredPolicies.map((d) => d.domains),
      [["partner.example"], ["shop.example"]],
    );
    // a catch-all at the default minVersion leaves every version allowed
    const lenient = policy("all", {
      domains: ["*"],
      outbound: { tls: { mode: "verify", trustSystemRoots: true } },
    });
    assert.deepEqual(compileRelayConfig(relay(), [lenient, lower], clusterView()).included, [
      "mail/all",
      "mail/lower",
    ]);
  });

  it("a password restricted by domains only goes to a policy's own nextHop only within those domains (security review)", () => {
    // the attack: the credential covers *.partner.example; a namespace user writes a policy for the
    // unclaimed new.partner.example with outbound.nextHop at their own server and the credential
    const v = clusterView({ secrets: { "partner-login": ["password"] }, credentials: [login] });
    const evil = policy("evil", {
      domains: ["new.partner.example"],
      outbound: {
        tls: { mode: "verify", trustSystemRoots: true },
        auth: { credentialRef: { name: "partner-login" } },
        nextHop: { host: "mx.attacker.example", port: 25 },
      },
    });
    const mx = policy("mx", {
      domains: ["partner.example"],
      outbound: {
        tls: { mode: "verify", trustSystemRoots: true },
        auth: { credentialRef: { name: "partner-login" } },
      },
    });
    const r = compileRelayConfig(relay(), [evil, mx], v);
    assert.deepEqual(r.included, ["mail/mx"], "without a nextHop it still goes to the domain's MX hosts");
    const [problem] = r.problems.get("mail/evil")!;
    assert.equal(problem!.reason, "InvalidReference");
    assert.match(problem!.message, /sets outbound\.nextHop mx\.attacker\.example/);
    assert.match(problem!.message, /add mx\.attacker\.example to the RelayCredential's restrictTo\.nextHops/);
    assert.equal(
      r.config.policies.find((p) => p.name === "mail/evil"),
      undefined,
    );
    // a next hop inside the covered domains (the partner's own smarthost, in its DNS) is allowed
    const smarthost = policy("smarthost", {
      domains: ["new.partner.example"],
      outbound: {
        tls: { mode: "verify", trustSystemRoots: true },
        auth: { credentialRef: { name: "partner-login" } },
        nextHop: { host: "smtp.partner.example", port: 587 },
      },
    });
    const ok = compileRelayConfig(relay(), [smarthost], v);
    assert.deepEqual(ok.included, ["mail/smarthost"]);
  });

  it("a password credential without restrictTo is sent nowhere (attack review 3c)", () => {
    // the admin's credential for one partner, written without restrictTo: a namespace user's policy
    // names its own next hop and the credential, and would receive the password
    const open = cred("partner-login", { ...login.spec, restrictTo: undefined });
    const v = clusterView({ secrets: { "partner-login": ["password"] }, credentials: [open] });
    const evil = policy("evil", {
      domains: ["attacker.example"],
      outbound: {
        tls: { mode: "verify", trustSystemRoots: true },
        auth: { credentialRef: { name: "partner-login" } },
        nextHop: { host: "mx.attacker.example", port: 25 },
      },
    });
    const r = compileRelayConfig(relay(), [evil], v);
    assert.deepEqual(r.included, []);
    const [problem] = r.problems.get("mail/evil")!;
    assert.equal(problem!.reason, "InvalidReference");
    assert.match(problem!.message, /RelayCredential mail\/partner-login \(outbound\.auth\.credentialRef\)/);
    assert.match(problem!.message, /without spec\.restrictTo is sent nowhere/);
    assert.match(problem!.message, /add restrictTo\.domains/);
    assert.equal(r.config.credentials["partner-login"], undefined, "the password is not even mounted");
    // an empty restrictTo restricts nothing either
    const empty = cred("partner-login", { ...login.spec, restrictTo: {} });
    const e = compileRelayConfig(
      relay(),
      [evil],
      clusterView({ secrets: { "partner-login": ["password"] }, credentials: [empty] }),
    );
    assert.match(e.problems.get("mail/evil")![0]!.message, /without spec\.restrictTo is sent nowhere/);
    // a client certificate gives no secret away: it may stay unrestricted
    const cc = cred("cc", { type: "clientCertificate", usage: "outbound", secretRef: { name: "cc" } });
    const withCert = policy("cert", {
      domains: ["cert.example"],
      outbound: { tls: { mode: "verify", trustSystemRoots: true, clientCertificateRef: { name: "cc" } } },
    });
    const ok = compileRelayConfig(
      relay(),
      [withCert],
      clusterView({
        secrets: { cc: { type: "kubernetes.io/tls", keys: ["tls.crt", "tls.key"] } },
        credentials: [cc],
      }),
    );
    assert.deepEqual(ok.problems.get("mail/cert"), undefined);
  });

  it("finding 7: MailRelay dns.servers names the validating resolver in the relay config", () => {
    const r = compileRelayConfig(
      relay({ dns: { servers: ["10.0.0.53", "[fd00::53]:5353"] } }),
      [],
      clusterView(),
    );
    assert.deepEqual(r.config.dns.servers, ["10.0.0.53", "[fd00::53]:5353"]);
    assert.equal(compileRelayConfig(relay(), [], clusterView()).config.dns.servers, undefined);
  });

  it("issue 20 item 5: spec.tlsReporting turns TLS-RPT sending on; absent or disabled, off", () => {
    const on = compileRelayConfig(
      relay({ tlsReporting: { enabled: true, contactInfo: "mailto:tls@example.com" } }),
      [],
      clusterView(),
    );
    assert.deepEqual(on.config.tlsRpt, {
      organizationName: "relay.example.com",
      contactInfo: "mailto:tls@example.com",
      from: "tlsrpt-noreply@relay.example.com",
    });
    const named = compileRelayConfig(
      relay({
        tlsReporting: {
          enabled: true,
          organizationName: "Example Corp",
          contactInfo: "tls@example.com",
          reportFrom: "reports@example.com",
        },
      }),
      [],
      clusterView(),
    );
    assert.deepEqual(named.config.tlsRpt, {
      organizationName: "Example Corp",
      contactInfo: "tls@example.com",
      from: "reports@example.com",
    });
    assert.notEqual(named.hash, on.hash);
    assert.equal(compileRelayConfig(relay(), [], clusterView()).config.tlsRpt, undefined);
    const off = relay({ tlsReporting: { enabled: false, contactInfo: "tls@example.com" } });
    assert.equal(compileRelayConfig(off, [], clusterView()).config.tlsRpt, undefined);
  });

  it("finding 5: auth.allowUnauthenticatedPeer reaches the relay config", () => {
    const p = policy("p", {
      domains: ["p.example"],
      outbound: {
        tls: { mode: "required" },
        auth: { credentialRef: { name: "partner-login" }, allowUnauthenticatedPeer: true },
      },
    });
    const r = compileRelayConfig(
      relay(),
      [p],
      clusterView({ secrets: { "partner-login": ["password"] }, credentials: [login] }),
    );
    assert.equal(r.config.policies[0]?.outbound.authUnauthenticatedPeer, true);
  });

  it("rejects a credential of the wrong type or usage", () => {
    const cc = cred("cc", { type: "clientCertificate", usage: "outbound", secretRef: { name: "cc" } });
    const inbound = cred("in", {
      type: "password",
      usage: "inbound",
      username: "u",
      passwordSecretRef: { name: "in", key: "password" },
    });
    const v = clusterView({
      secrets: { cc: { type: "kubernetes.io/tls", keys: ["tls.crt", "tls.key"] }, in: ["password"] },
      credentials: [cc, inbound],
    });
    const wrongType = policy("t", {
      domains: ["t.example"],
      outbound: { tls: { mode: "required" }, auth: { credentialRef: { name: "cc" } } },
    });
    const wrongUsage = policy("u", {
      domains: ["u.example"],
      outbound: { tls: { mode: "required" }, auth: { credentialRef: { name: "in" } } },
    });
    const r = compileRelayConfig(relay(), [wrongType, wrongUsage], v);
    assert.equal(r.problems.get("mail/t")![0]!.reason, "InvalidReference");
    assert.equal(r.problems.get("mail/u")![0]!.reason, "InvalidReference");
    const ok = policy("ok", {
      domains: ["ok.example"],
      outbound: { tls: { mode: "required", clientCertificateRef: { name: "cc" } } },
    });
    const r2 = compileRelayConfig(relay(), [ok], v);
    assert.deepEqual(r2.config.credentials.cc, {
      type: "clientCertificate",
      usage: "outbound",
      certFile: "secrets/cc/tls.crt",
      keyFile: "secrets/cc/tls.key",
    });
    const opaque = clusterView({ secrets: { cc: ["tls.crt", "tls.key"] }, credentials: [cc] });
    assert.match(
      compileRelayConfig(relay(), [ok], opaque).problems.get("mail/ok")![0]!.message,
      /not kubernetes.io\/tls/,
    );
  });

  it("turns the catch-all policy into defaultOutbound", () => {
    const star = policy("all", {
      domains: ["*"],
      outbound: { tls: { mode: "required", minVersion: "TLSv1.3" } },
    });
    const r = compileRelayConfig(relay(), [star], clusterView());
    assert.equal(r.config.defaultOutbound.tls.mode, "required");
    assert.equal(r.config.defaultOutbound.tls.minVersion, "TLSv1.3");
    // the relay knows the default route is a policy's (TLS-Required: No does not relax it)
    assert.equal(r.config.defaultOutboundPolicy, "mail/all");
    assert.equal(compileRelayConfig(relay(), [], clusterView()).config.defaultOutboundPolicy, undefined);
    assert.deepEqual(r.config.policies, []);
    assert.deepEqual(r.included, ["mail/all"]);
  });

  it("changes the restart hash for listener changes only", () => {
    const base = compileRelayConfig(relay(), [policy("a", { domains: ["a.example"] })], clusterView());
    const mode = compileRelayConfig(
      relay(),
      [policy("a", { domains: ["a.example"], outbound: { tls: { mode: "none" } } })],
      clusterView(),
    );
    const port = compileRelayConfig(
      relay({ listeners: { smtp: { port: 2525 } } }),
      [policy("a", { domains: ["a.example"] })],
      clusterView(),
    );
    assert.notEqual(base.hash, mode.hash);
    assert.equal(base.restartHash, mode.restartHash);
    assert.notEqual(base.restartHash, port.restartHash);
  });

  it("lists a policy's references (Secrets through its credentials too)", () => {
    const p = policy("p", {
      domains: ["p.example"],
      outbound: {
        tls: { mode: "verify", caBundle: { secretRef: { name: "ca", key: "ca.crt" } } },
        auth: { credentialRef: { name: "partner-login" } },
      },
    });
    const refs = policyReferences(p, new Map([["partner-login", login]]));
    assert.deepEqual([...refs.secrets].sort(), ["ca", "partner-login"]);
    assert.deepEqual([...refs.credentials], ["partner-login"]);
  });
});

describe("render", () => {
  const r = relay();
  const { compiled, objects: objs } = renderRelay(r, clusterView());
  const byKind = (k: string) => objs.find((o) => o.kind === k) as KubeObject & { spec: any };

  it("renders every object with a controller owner reference", () => {
    assert.deepEqual(
      objs.map((o) => o.kind),
      // the NetworkPolicy before the ConfigMap: egress for a new next hop before the config using it
      ["ServiceAccount", "NetworkPolicy", "ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"],
    );
    for (const o of objs)
      assert.deepEqual(o.metadata.ownerReferences, [
        {
          apiVersion: relayOwner.apiVersion,
          kind: relayOwner.kind,
          name: relayOwner.name,
          uid: relayOwner.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
  });

  it("locks the relay pod down", () => {
    const pod = byKind("StatefulSet").spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const c = pod.containers[0];
    assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.deepEqual(c.args, ["relay", "--config", "/etc/sealpost"]);
    assert.equal(
      byKind("StatefulSet").spec.template.metadata.annotations["sealpost.dev/restart-hash"],
      compiled.restartHash,
    );
  });

  it("leaves disabled listeners out of the Service, the pod and the NetworkPolicy", () => {
    const r2 = relay({ listeners: { smtps: { enabled: false } } });
    const o2 = renderRelay(r2, clusterView()).objects;
    const svc = o2.find((o) => o.kind === "Service") as KubeObject & { spec: { ports: { port: number }[] } };
    assert.deepEqual(
      svc.spec.ports.map((p) => p.port),
      [25, 587],
    );
  });

  it("allows the admin port from the operator's pods (first peer; metricsFrom follows)", () => {
    const np = byKind("NetworkPolicy").spec;
    const admin = np.ingress.find((i: { from?: unknown }) => i.from);
    assert.deepEqual(admin.ports, [{ protocol: "TCP", port: 8080 }]);
    assert.deepEqual(admin.from[0].namespaceSelector.matchLabels, {
      "kubernetes.io/metadata.name": "sealpost-system",
    });
  });

  it("renders the server Certificate from the issuerRef", () => {
    const c = renderServerCertificate(relayOwner, "relay.example.com", r.spec.certificate.issuerRef!);
    assert.deepEqual(c.spec.issuerRef, { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" });
    assert.deepEqual(c.spec.dnsNames, ["relay.example.com"]);
    assert.equal(c.spec.secretName, "edge-tls");
  });
});
