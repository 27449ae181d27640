// sealpost.dev/v1alpha1: the API as zod schemas (the single source of truth), the TypeScript types the
// operator and relay use (z.infer), and what the CRD generator needs to know about each kind.
import type { z } from "zod";
import type { CelRule } from "./cel.js";
import { MailDomainPolicySpec, MailDomainPolicyStatus } from "./maildomainpolicy.js";
import { MailRelaySpec, MailRelayStatus } from "./mailrelay.js";
import { RelayCredentialSpec, RelayCredentialStatus } from "./relaycredential.js";

export * from "./api-version.js";
export * from "./cel.js";
export * from "./dns-names.js";
export * from "./label-selector.js";
export * from "./network.js";
export * from "./object-meta.js";
export * from "./quantities.js";
export * from "./references.js";
export * from "./status.js";
export * from "./maildomainpolicy.js";
export * from "./mailrelay.js";
export * from "./relay-pod.js";
export * from "./relaycredential.js";
export * from "./tls-reporting.js";
export { DEFAULT_CERTIFICATE_EXPIRY_WARNING } from "./tls-confidence.js";
export { DEFAULT_MAX_DURATION, HARD_CAP } from "./policy-exceptions.js";
export * from "./units.js";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

/** A kind as its CRD presents it. */
export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
  /** CEL rules on the whole object (x-kubernetes-validations at the root: metadata.name is visible). */
  objectRules?: CelRule[];
}

const ready: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the object is in force (the Ready condition).",
};
/** The Ready condition's message, at `kubectl get -o wide` (priority 1): why an object is not in force. */
const message: PrinterColumn = {
  name: "Message",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].message',
  description: "The Ready condition's message.",
  priority: 1,
};
const age: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the object was created.",
};

export const kinds: readonly KindDefinition[] = [
  {
    kind: "MailRelay",
    plural: "mailrelays",
    singular: "mailrelay",
    shortNames: ["mr"],
    description:
      "A Sealpost mail relay: pods that accept mail on SMTP ports and deliver it under the MailDomainPolicies it selects, never in a weaker way than a policy demands.",
    spec: MailRelaySpec,
    status: MailRelayStatus,
    // a relay's server certificate and Secret are <relay>-tls, a RelayCredential's <credential>-client-tls:
    // relay foo-client and credential foo would render the same objects (issue 15 leftover b)
    objectRules: [
      {
        rule: "!self.metadata.name.endsWith('-client')",
        message:
          "metadata.name must not end in -client: the relay's certificate <name>-tls would be the one a RelayCredential named <name without -client> renders (<credential>-client-tls); choose another name",
      },
    ],
    printerColumns: [
      {
        name: "Hostname",
        type: "string",
        jsonPath: ".spec.hostname",
        description: "EHLO and certificate name.",
      },
      { name: "Replicas", type: "integer", jsonPath: ".spec.replicas", description: "Desired relay pods." },
      {
        name: "Ready-Replicas",
        type: "integer",
        jsonPath: ".status.readyReplicas",
        description: "Relay pods ready to accept mail.",
      },
      ready,
      age,
      message,
    ],
  },
  {
    kind: "MailDomainPolicy",
    plural: "maildomainpolicies",
    singular: "maildomainpolicy",
    shortNames: ["mdp"],
    description:
      "How mail to and from a partner's domains must be protected: outbound TLS mode, certificates, SMTP AUTH, S/MIME; inbound TLS/AUTH requirements for the partner's servers. Fail closed: a requirement that cannot be met defers the mail.",
    spec: MailDomainPolicySpec,
    status: MailDomainPolicyStatus,
    printerColumns: [
      {
        name: "Mode",
        type: "string",
        jsonPath: ".spec.outbound.tls.mode",
        description: "Outbound TLS mode.",
      },
      {
        name: "Domains",
        type: "string",
        jsonPath: ".status.domains",
        description: "Recipient domains (as the operator last read them; a long list is cut short).",
      },
      ready,
      {
        name: "Last-Delivery",
        type: "date",
        jsonPath: ".status.lastDelivery.time",
        description: "The most recent delivery under this policy.",
      },
      {
        name: "TLS",
        type: "string",
        jsonPath: ".status.lastDelivery.tlsVersion",
        description: "TLS version of the most recent delivery.",
      },
      {
        name: "Deferrals",
        type: "integer",
        jsonPath: ".status.counters.deferrals",
        description: "Deferred delivery attempts since the relay pods started.",
      },
      {
        name: "Exceptions",
        type: "string",
        jsonPath: ".status.activeExceptions",
        description: "The time-limited exceptions (spec.exceptions) in force now.",
      },
      age,
      message,
    ],
  },
  {
    kind: "RelayCredential",
    plural: "relaycredentials",
    singular: "relaycredential",
    shortNames: ["rcred"],
    description:
      "An SMTP AUTH account (username and a password in a Secret), used by the relay to log in to a partner (outbound) or by a partner to log in to the relay (inbound); or a TLS client certificate the relay presents to a partner (outbound only).",
    spec: RelayCredentialSpec,
    status: RelayCredentialStatus,
    printerColumns: [
      { name: "Type", type: "string", jsonPath: ".spec.type", description: "password or clientCertificate." },
      { name: "Usage", type: "string", jsonPath: ".spec.usage", description: "outbound or inbound." },
      ready,
      age,
      message,
    ],
  },
];

export const CATEGORIES = ["sealpost"];
