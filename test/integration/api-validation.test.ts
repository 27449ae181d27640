// The apiserver itself enforces the API: each invalid manifest below is rejected at create time with an
// error that names the offending field, so a mail administrator learns what to fix from kubectl, not
// from a relay that quietly does something else. Every case is one change to a valid base object.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { CLUSTER_NETWORKS } from "../../api/v1alpha1/mailrelay.js";
import {
  API_VERSION,
  GROUP,
  kinds,
  VERSION,
  type MailDomainPolicySpecInput,
  type MailRelaySpecInput,
  type RelayCredentialSpecInput,
} from "../../api/v1alpha1/index.js";
import { startControlPlane, type ControlPlane } from "../support/controlplane.js";
import { installSealpostCrds } from "../support/api-crds.js";

const NAMESPACE = "default";

const relay: MailRelaySpecInput = {
  hostname: "relay.example.com",
  certificate: { issuerRef: { name: "corp-ca", kind: "ClusterIssuer" } },
  inbound: {
    relayFrom: ["10.0.0.0/8"],
    localDomains: ["example.com"],
    internalNextHop: { host: "exchange" },
  },
  policySelector: { matchLabels: { relay: "edge" } },
};
const policy: MailDomainPolicySpecInput = {
  domains: ["partner.example", "*.partner.example"],
  outbound: {
    tls: {
      mode: "verify",
      caBundle: { configMapRef: { name: "partner-ca" } },
      matchNames: ["mx.partner.example"],
    },
    auth: { credentialRef: { name: "partner-login" } },
    nextHop: { host: "smtp.partner.example", port: 25 },
  },
  inbound: { hosts: ["203.0.113.0/24"], require: "tls+auth", credentialRef: { name: "partner-inbound" } },
};
const credential: RelayCredentialSpecInput = {
  type: "password",
  usage: "outbound",
  username: "relay-edge",
  passwordSecretRef: { name: "partner-login" },
};

type Kind = "MailRelay" | "MailDomainPolicy" | "RelayCredential";
const bases: Record<Kind, unknown> = {
  MailRelay: relay,
  MailDomainPolicy: policy,
  RelayCredential: credential,
};

type Spec = Record<string, unknown>;

interface Case {
  name: string;
  kind: Kind;
  /** The change to a copy of the kind's valid base spec: dotted paths (domains[0], outbound.tls.mode) to new values. */
  set?: Record<string, unknown>;
  unset?: string[];
  /** The path the apiserver must blame. */
  field: string;
}

const P = "MailDomainPolicy";
const R = "MailRelay";
const C = "RelayCredential";
const noPassword = ["username", "passwordSecretRef"];

const cases: Case[] = [
  // MailDomainPolicy: domains
  {
    kind: P,
    name: "domain with an empty label",
    set: { "domains[0]": "partner..example" },
    field: "spec.domains[0]",
  },
  {
    kind: P,
    name: "domain in upper case",
    set: { "domains[0]": "Partner.Example" },
    field: "spec.domains[0]",
  },
  {
    kind: P,
    name: "wildcard inside a domain",
    set: { "domains[1]": "mx.*.partner.example" },
    field: "spec.domains[1]",
  },
  { kind: P, name: "catch-all * next to other domains", set: { "domains[2]": "*" }, field: "spec.domains" },
  { kind: P, name: "no domains", set: { domains: [] }, field: "spec.domains" },
  // MailDomainPolicy: outbound TLS
  {
    kind: P,
    name: "unknown TLS mode",
    set: { "outbound.tls.mode": "starttls" },
    field: "spec.outbound.tls.mode",
  },
  { kind: P, name: "TLS mode missing", unset: ["outbound.tls.mode"], field: "spec.outbound.tls.mode" },
  {
    kind: P,
    name: "TLS 1.1 as minimum",
    set: { "outbound.tls.minVersion": "TLSv1.1" },
    field: "spec.outbound.tls.minVersion",
  },
  {
    kind: P,
    name: "verify without a CA bundle or system roots",
    unset: ["outbound.tls.caBundle"],
    field: "spec.outbound.tls.caBundle",
  },
  {
    kind: P,
    name: "CA bundle from a ConfigMap and a Secret at once",
    set: { "outbound.tls.caBundle.secretRef": { name: "partner-ca" } },
    field: "spec.outbound.tls.caBundle",
  },
  {
    kind: P,
    name: "CA bundle with mode required (it would not be checked)",
    set: { "outbound.tls.mode": "required" },
    // the valid base policy's AUTH would also be refused under required (issue 14 finding 5)
    unset: ["outbound.tls.matchNames", "outbound.auth"],
    field: "spec.outbound.tls.caBundle",
  },
  {
    kind: P,
    name: "matchNames with mode dane",
    set: { "outbound.tls.mode": "dane" },
    unset: ["outbound.tls.caBundle"],
    field: "spec.outbound.tls.matchNames",
  },
  {
    kind: P,
    name: "minVersion with mode none",
    set: { "outbound.tls": { mode: "none", minVersion: "TLSv1.2" } },
    unset: ["outbound.auth"],
    field: "spec.outbound.tls.minVersion",
  },
  {
    kind: P,
    name: "client certificate with mode opportunistic",
    set: { "outbound.tls": { mode: "opportunistic", clientCertificateRef: { name: "edge-client" } } },
    unset: ["outbound.auth"],
    field: "spec.outbound.tls.clientCertificateRef",
  },
  // MailDomainPolicy: AUTH, next hop, S/MIME
  {
    kind: P,
    name: "SMTP AUTH without TLS (mode none)",
    set: { "outbound.tls": { mode: "none" } },
    field: "spec.outbound.auth",
  },
  {
    kind: P,
    name: "SMTP AUTH over opportunistic TLS",
    set: { "outbound.tls": { mode: "opportunistic" } },
    field: "spec.outbound.auth",
  },
  {
    kind: P,
    name: "finding 5: SMTP AUTH to an unverified peer (mode required) without allowUnauthenticatedPeer",
    set: { "outbound.tls": { mode: "required" } },
    field: "spec.outbound.auth",
  },
  {
    kind: P,
    name: "next hop port out of range",
    set: { "outbound.nextHop.port": 70000 },
    field: "spec.outbound.nextHop.port",
  },
  {
    kind: P,
    name: "next hop host with a space",
    set: { "outbound.nextHop.host": "smtp partner" },
    field: "spec.outbound.nextHop.host",
  },
  {
    kind: P,
    name: "S/MIME without recipient certificates",
    set: { "outbound.messageEncryption": { smime: { recipientCertificates: {} } } },
    field: "spec.outbound.messageEncryption.smime.recipientCertificates",
  },
  {
    kind: P,
    name: "unknown S/MIME missing-certificate action",
    set: {
      "outbound.messageEncryption": {
        smime: { recipientCertificates: { secretRef: { name: "certs" } }, missingCertificate: "drop" },
      },
    },
    field: "spec.outbound.messageEncryption.smime.missingCertificate",
  },
  // MailDomainPolicy: OpenPGP (issue 20 item 6)
  {
    kind: P,
    name: "S/MIME and OpenPGP on one policy",
    set: {
      "outbound.messageEncryption": {
        smime: { recipientCertificates: { secretRef: { name: "certs" } } },
        openpgp: { recipientKeys: { webKeyDirectory: true } },
      },
    },
    field: "spec.outbound.messageEncryption",
  },
  {
    kind: P,
    name: "messageEncryption with neither S/MIME nor OpenPGP",
    set: { "outbound.messageEncryption": {} },
    field: "spec.outbound.messageEncryption",
  },
  {
    kind: P,
    name: "OpenPGP without any source of recipient keys",
    set: { "outbound.messageEncryption": { openpgp: { recipientKeys: { webKeyDirectory: false } } } },
    field: "spec.outbound.messageEncryption.openpgp.recipientKeys",
  },
  {
    kind: P,
    name: "OpenPGP keyring in both a Secret and a ConfigMap",
    set: {
      "outbound.messageEncryption": {
        openpgp: { recipientKeys: { secretRef: { name: "keys" }, configMapRef: { name: "keys" } } },
      },
    },
    field: "spec.outbound.messageEncryption.openpgp.recipientKeys",
  },
  {
    kind: P,
    name: "unknown OpenPGP missing-key action",
    set: {
      "outbound.messageEncryption": {
        openpgp: { recipientKeys: { webKeyDirectory: true }, missingKey: "drop" },
      },
    },
    field: "spec.outbound.messageEncryption.openpgp.missingKey",
  },
  // MailDomainPolicy: inbound
  {
    kind: P,
    name: "CIDR prefix too long",
    set: { "inbound.hosts[0]": "203.0.113.0/33" },
    field: "spec.inbound.hosts[0]",
  },
  {
    kind: P,
    name: "CIDR with host bits set",
    set: { "inbound.hosts[0]": "10.0.0.1/8" },
    field: "spec.inbound.hosts[0]",
  },
  {
    kind: P,
    name: "host name instead of an address",
    set: { "inbound.hosts[0]": "mx.partner.example" },
    field: "spec.inbound.hosts[0]",
  },
  {
    kind: P,
    name: "IPv6 prefix too long",
    set: { "inbound.hosts[0]": "2001:db8::/129" },
    field: "spec.inbound.hosts[0]",
  },
  {
    kind: P,
    name: "unknown inbound requirement",
    set: { "inbound.require": "starttls" },
    field: "spec.inbound.require",
  },
  {
    kind: P,
    name: "inbound credential without AUTH required",
    set: { "inbound.require": "tls" },
    field: "spec.inbound.credentialRef",
  },
  {
    kind: P,
    name: "misspelt field (strict decoding)",
    set: { "outbound.tls.mdoe": "verify" },
    field: "spec.outbound.tls.mdoe",
  },
  // MailRelay
  { kind: R, name: "negative replicas", set: { replicas: -1 }, field: "spec.replicas" },
  {
    kind: R,
    name: "host name with an underscore",
    set: { hostname: "relay_1.example.com" },
    field: "spec.hostname",
  },
  { kind: R, name: "listener port 0", set: { "listeners.smtp.port": 0 }, field: "spec.listeners.smtp.port" },
  {
    kind: R,
    name: "two listeners on one port",
    set: { "listeners.smtps.port": 587 },
    field: "spec.listeners",
  },
  {
    kind: R,
    name: "every listener disabled",
    set: {
      listeners: { smtp: { enabled: false }, smtps: { enabled: false }, submission: { enabled: false } },
    },
    field: "spec.listeners",
  },
  {
    kind: R,
    name: "certificate from an issuer and a Secret at once",
    set: { "certificate.secretRef": { name: "relay-tls" } },
    field: "spec.certificate",
  },
  { kind: R, name: "queue maxAge in days", set: { "queue.maxAge": "5d" }, field: "spec.queue.maxAge" },
  { kind: R, name: "queue size in GB", set: { "queue.size": "10GB" }, field: "spec.queue.size" },
  {
    kind: R,
    name: "queue reserve as large as the queue volume (every new message refused)",
    set: { "queue.size": "1Gi", "queue.minFree": "1Gi" },
    field: "spec.queue.minFree",
  },
  {
    kind: R,
    name: "policy material mounted once a week (a new CA bundle would wait that long)",
    set: { policyMountInterval: "168h" },
    field: "spec.policyMountInterval",
  },
  {
    kind: R,
    name: "first retry later than the longest retry",
    set: { "queue.retry": { initial: "2h", max: "1h" } },
    field: "spec.queue.retry.initial",
  },
  {
    kind: R,
    name: "retry interval longer than the queue lifetime",
    set: { "queue.maxAge": "30m" },
    field: "spec.queue.retry.max",
  },
  {
    kind: R,
    name: "relayFrom CIDR malformed",
    set: { "inbound.relayFrom[0]": "10.0.0.0/8/8" },
    field: "spec.inbound.relayFrom[0]",
  },
  {
    kind: R,
    name: "a first retry sooner than a second (1ms: a thousand attempts a second)",
    set: { "queue.retry": { initial: "1ms", max: "1h" } },
    field: "spec.queue.retry.initial",
  },
  {
    kind: R,
    name: "a listener on the pod's admin port",
    set: { "listeners.smtp.port": 8080 },
    field: "spec.listeners.smtp.port",
  },
  {
    kind: R,
    name: "with spec.mtaSts, a listener on the pod's MTA-STS endpoint port",
    set: { mtaSts: {}, "listeners.submission.port": 8443 },
    field: "spec.listeners",
  },
  {
    kind: R,
    name: "an attempt deadline longer than a day (600h: node's timers fired it at once)",
    set: { "delivery.attemptTimeout": "600h" },
    field: "spec.delivery.attemptTimeout",
  },
  {
    kind: R,
    name: "a fetch deadline longer than an hour",
    set: { "delivery.fetchTimeout": "2h" },
    field: "spec.delivery.fetchTimeout",
  },
  {
    kind: R,
    name: "a DNS server that is no IP address (node:dns refuses it: the relay could not apply it)",
    set: { dns: { servers: ["10.0.0.300"] } },
    field: "spec.dns.servers[0]",
  },
  {
    kind: R,
    name: "a DNS server's port above 65535",
    set: { dns: { servers: ["10.0.0.10:53", "10.0.0.10:99999"] } },
    field: "spec.dns.servers[1]",
  },
  {
    kind: R,
    name: "a bracketed DNS server that is no IPv6 address, or port 0",
    set: { dns: { servers: ["[fd00::53]:0"] } },
    field: "spec.dns.servers[0]",
  },
  {
    kind: R,
    name: "local domains without an internal next hop",
    unset: ["inbound.internalNextHop"],
    field: "spec.inbound.internalNextHop",
  },
  {
    kind: R,
    name: "label selector In without values",
    set: { policySelector: { matchExpressions: [{ key: "relay", operator: "In" }] } },
    field: "spec.policySelector.matchExpressions[0].values",
  },
  // RelayCredential
  { kind: C, name: "unknown credential type", set: { type: "apiKey" }, field: "spec.type" },
  { kind: C, name: "unknown usage", set: { usage: "both" }, field: "spec.usage" },
  {
    kind: C,
    name: "restrictTo on an inbound credential",
    set: { usage: "inbound", restrictTo: { domains: ["partner.example"] } },
    field: "spec.restrictTo",
  },
  {
    kind: C,
    name: "password without its Secret",
    unset: ["passwordSecretRef"],
    field: "spec.passwordSecretRef",
  },
  { kind: C, name: "password without a username", unset: ["username"], field: "spec.username" },
  {
    kind: C,
    name: "an inbound login named as the fleet's own (any case)",
    set: { usage: "inbound", username: "Sealpost-Fleet" },
    field: "spec.username",
  },
  {
    kind: C,
    name: "password credential with an issuer",
    set: { issuerRef: { name: "corp-ca" }, dnsNames: ["relay.example.com"] },
    field: "spec.issuerRef",
  },
  {
    kind: C,
    name: "client certificate without Secret or issuer",
    set: { type: "clientCertificate" },
    unset: noPassword,
    field: "spec.secretRef",
  },
  {
    kind: C,
    name: "client certificate with a password Secret",
    set: { type: "clientCertificate", secretRef: { name: "edge-client-tls" } },
    unset: ["username"],
    field: "spec.passwordSecretRef",
  },
  {
    kind: C,
    name: "client certificate from a Secret and an issuer at once",
    set: {
      type: "clientCertificate",
      secretRef: { name: "edge-client-tls" },
      issuerRef: { name: "corp-ca" },
      dnsNames: ["relay.example.com"],
    },
    unset: noPassword,
    field: "spec.issuerRef",
  },
  {
    kind: C,
    name: "issued client certificate without names",
    set: { type: "clientCertificate", issuerRef: { name: "corp-ca" } },
    unset: noPassword,
    field: "spec.dnsNames",
  },
  {
    // the relay does not match a partner's client certificate against a credential: the object
    // would read as a login that is checked
    kind: C,
    name: "client certificate for inbound use",
    set: { type: "clientCertificate", usage: "inbound", secretRef: { name: "partner-client-tls" } },
    unset: noPassword,
    field: "spec.usage",
  },
  // issue 15 finding 3: what a logged-in client may do belongs to inbound credentials only
  {
    kind: C,
    name: "allowRelay on an outbound credential",
    set: { allowRelay: true },
    field: "spec.allowRelay",
  },
  {
    kind: C,
    name: "senderDomains on an outbound credential",
    set: { senderDomains: ["example.com"] },
    field: "spec.senderDomains",
  },
  {
    kind: R,
    name: "localRecipients without addresses or a ConfigMap",
    set: { "inbound.localRecipients": {} },
    field: "spec.inbound.localRecipients",
  },
  {
    kind: R,
    name: "localRecipients entry without an @",
    set: { "inbound.localRecipients": { addresses: ["bob"] } },
    field: "spec.inbound.localRecipients.addresses[0]",
  },
  // issue 17: relay pod settings never override the operator's own keys
  {
    kind: R,
    name: "podLabels overriding the operator's selector label",
    set: { podLabels: { team: "mail", "app.kubernetes.io/name": "other" } },
    field: "spec.podLabels",
  },
  {
    kind: R,
    name: "podLabels setting a sealpost.dev/ label",
    set: { podLabels: { "sealpost.dev/relay": "other" } },
    field: "spec.podLabels",
  },
  {
    kind: R,
    name: "podAnnotations setting the operator's restart hash",
    set: { podAnnotations: { "sealpost.dev/restart-hash": "x" } },
    field: "spec.podAnnotations",
  },
  { kind: R, name: "image that is no image reference", set: { image: "Not An Image" }, field: "spec.image" },
  {
    kind: R,
    name: "TLS reporting enabled without contact-info (RFC 8460 requires it)",
    set: { tlsReporting: { enabled: true } },
    field: "spec.tlsReporting.contactInfo",
  },
  {
    kind: R,
    name: "TLS report sender that would add a header",
    set: {
      tlsReporting: { enabled: true, contactInfo: "x", reportFrom: "a@example.com\r\nBcc: b@evil.example" },
    },
    field: "spec.tlsReporting.reportFrom",
  },
  {
    kind: R,
    name: "toleration with an unknown effect",
    set: { tolerations: [{ key: "mail", effect: "Sometimes" }] },
    field: "spec.tolerations[0].effect",
  },
  {
    kind: R,
    name: "mtaSts with a certificate cert-manager does not issue",
    set: { mtaSts: {}, certificate: { secretRef: { name: "relay-tls" } } },
    field: "spec.mtaSts",
  },
  {
    kind: R,
    name: "mtaSts without a domain to publish for (only wildcard local domains)",
    set: { mtaSts: {}, "inbound.localDomains": ["*.example.com"] },
    field: "spec.mtaSts",
  },
  {
    kind: R,
    name: "mtaSts maxAge below a day",
    set: { mtaSts: { maxAge: "1h" } },
    field: "spec.mtaSts.maxAge",
  },
];

/** A copy of `base` with the case's change: "a.b[0]" addresses a field of a nested object or list element. */
function changed(base: unknown, c: Case): Spec {
  const spec = structuredClone(base) as Spec;
  const walk = (path: string): [Spec, string] => {
    const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
    const last = keys.pop()!;
    let node = spec;
    for (const k of keys) node = (node[k] ??= {}) as Spec;
    return [node, last];
  };
  for (const path of c.unset ?? []) {
    const [node, key] = walk(path);
    delete node[key];
  }
  for (const [path, value] of Object.entries(c.set ?? {})) {
    const [node, key] = walk(path);
    node[key] = value;
  }
  return spec;
}

interface Status {
  message?: string;
  details?: { causes?: { field?: string; message?: string }[] };
}

describe("the apiserver rejects invalid Sealpost objects, naming the field", () => {
  let cp: ControlPlane;
  let objects: k8s.CustomObjectsApi;
  before(async () => {
    cp = await startControlPlane();
    await installSealpostCrds(cp);
    objects = cp.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  });
  after(async () => {
    await cp?.stop();
  });

  const create = (kind: Kind, spec: unknown) =>
    objects.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NAMESPACE,
      plural: kinds.find((k) => k.kind === kind)!.plural,
      body: { apiVersion: API_VERSION, kind, metadata: { name: "under-test" }, spec },
      dryRun: "All",
      fieldValidation: "Strict",
    });

  it("accepts the valid bases the cases start from", async () => {
    for (const [kind, spec] of Object.entries(bases)) await create(kind as Kind, spec);
  });

  it("accepts a listener on 8443 without spec.mtaSts (the pod binds 8443 only for the endpoint)", async () => {
    await create(R, { ...relay, listeners: { submission: { port: 8443 } } });
  });

  it("accepts the DNS server forms the API documents (ip, ip:port, [v6], [v6]:port)", async () => {
    for (const servers of [
      ["10.0.0.10", "10.0.0.10:5353", "[fd00::53]:53"],
      ["fd00::53", "[fd00::53]"],
    ])
      await create(R, { ...relay, dns: { servers } });
  });

  it("accepts and keeps every relay pod setting (issue 17), affinity unpruned", async () => {
    const pod = {
      image: "registry.example.com/sealpost:0.2.0@sha256:" + "a".repeat(64),
      imagePullSecrets: [{ name: "regcred" }],
      nodeSelector: { "node-role.example.com/mail": "true" },
      tolerations: [{ key: "mail", operator: "Exists", effect: "NoSchedule" }],
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: {
                topologyKey: "kubernetes.io/hostname",
                labelSelector: { matchLabels: { "sealpost.dev/relay": "edge" } },
              },
            },
          ],
        },
      },
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway" },
      ],
      priorityClassName: "mail-critical",
      podLabels: { team: "mail" },
      podAnnotations: { "mesh.example.com/inject": "false" },
    };
    const created = (await create("MailRelay", { ...relay, ...pod })) as { spec: Record<string, unknown> };
    for (const [k, v] of Object.entries(pod)) assert.deepEqual(created.spec[k], v, k);
  });

  it("issue 20 item 6: accepts an OpenPGP policy (keyring, WKD, signing key) and fills in its defaults", async () => {
    const spec = {
      domains: ["partner.example"],
      outbound: {
        tls: { mode: "required" },
        messageEncryption: {
          openpgp: {
            recipientKeys: { secretRef: { name: "partner-keys" }, webKeyDirectory: true },
            signingKeyRef: { name: "relay-openpgp" },
          },
        },
      },
    };
    const created = (await create("MailDomainPolicy", spec)) as {
      spec: { outbound: { messageEncryption: unknown } };
    };
    assert.deepEqual(created.spec.outbound.messageEncryption, {
      openpgp: {
        recipientKeys: { secretRef: { name: "partner-keys" }, webKeyDirectory: true },
        missingKey: "defer",
        signingKeyRef: { name: "relay-openpgp", key: "signing-key.asc" },
      },
    });
    // WKD alone is a source of keys
    await create("MailDomainPolicy", {
      ...spec,
      outbound: {
        ...spec.outbound,
        messageEncryption: { openpgp: { recipientKeys: { webKeyDirectory: true } } },
      },
    });
  });

  it("has at least 20 cases, each naming its own field", () => {
    assert.ok(cases.length >= 20, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, "case names are unique");
  });

  for (const c of cases) {
    it(`${c.kind}: ${c.name} → ${c.field}`, async () => {
      const err = await create(c.kind, changed(bases[c.kind], c)).then(
        () => assert.fail(`accepted, but must be rejected for ${c.field}`),
        (e: k8s.ApiException<string>) => e,
      );
      assert.ok([400, 422].includes(err.code), `HTTP ${err.code}: ${err.body}`);
      const status = JSON.parse(err.body) as Status;
      const message = status.message ?? "";
      assert.ok(message.includes(c.field), `the error must name ${c.field}: ${message}`);
      // Only that field is blamed, which shows the base is otherwise valid and the rule is precise.
      for (const cause of status.details?.causes ?? []) {
        const field = (cause.field ?? "").replace(/^\./, "");
        if (field === "<nil>" || field === "") continue;
        assert.ok(field.startsWith(c.field), `unexpected error on ${field}: ${message}`);
      }
    });
  }

  it("MailRelay: a name ending in -client is refused (its certificate would be a RelayCredential's), naming metadata.name", async () => {
    const named = (name: string) =>
      objects.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NAMESPACE,
        plural: "mailrelays",
        body: { apiVersion: API_VERSION, kind: "MailRelay", metadata: { name }, spec: bases.MailRelay },
        dryRun: "All",
      });
    const err = await named("foo-client").then(
      () => assert.fail("relay foo-client and credential foo would both render foo-client-tls"),
      (e: k8s.ApiException<string>) => e,
    );
    assert.ok([400, 422].includes(err.code), `HTTP ${err.code}: ${err.body}`);
    assert.match((JSON.parse(err.body) as Status).message ?? "", /metadata\.name must not end in -client/);
    await named("foo-clients");
    await named("client");
  });

  it("fills in the documented defaults of a minimal MailRelay", async () => {
    const created = (await create("MailRelay", {
      hostname: "relay.example.com",
      certificate: { secretRef: { name: "relay-tls" } },
    })) as { spec: Record<string, unknown> };
    assert.deepEqual(
      { ...created.spec, hostname: undefined, certificate: undefined },
      {
        hostname: undefined,
        certificate: undefined,
        replicas: 2,
        listeners: {
          smtp: { enabled: true, port: 25 },
          smtps: { enabled: true, port: 465 },
          submission: { enabled: true, port: 587 },
        },
        inbound: {
          require: "none",
          maxMessageSize: "50Mi",
          maxRecipients: 100,
          hopLimit: 50,
          ipv6ClientPrefixLength: 64,
          hardErrorLimit: 20,
          maxCommandsPerSession: 10000,
        },
        queue: { size: "10Gi", maxAge: "120h", retry: { initial: "60s", max: "1h" } },
        delivery: {
          mxAddressLimit: 5,
          mxSessionLimit: 2,
          destinationConcurrencyLimit: 20,
          attemptTimeout: "10m",
          fetchTimeout: "60s",
        },
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        networkPolicy: {
          egressExcept: [...CLUSTER_NETWORKS],
          internalEgress: [],
          metricsFrom: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
              podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
            },
          ],
        },
        service: { type: "ClusterIP", clusterNetworks: [...CLUSTER_NETWORKS] },
        // issue 19 item 5: the longest a policy exception may last on this relay
        policyExceptions: { maxDuration: "168h" },
        // how often policy material may roll the relay's pods (operator/render/mounted-sources.ts)
        policyMountInterval: "1h",
      },
    );
  });
});
