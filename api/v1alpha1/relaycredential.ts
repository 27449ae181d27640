// RelayCredential: an SMTP AUTH account or a client certificate ours to log in to a partner (usage
// outbound), or an SMTP AUTH account a partner or client logs in to us with (usage inbound); or a DKIM signing key (type
// dkim, usage outbound) that a MailRelay's spec.dkim names for one of its domains. Only references to Secrets
// live here; the secret material never enters the object.
import { z } from "zod";
import { API_VERSION } from "./api-version.js";
import { type CelRule } from "./cel.js";
import { domainName, domainPattern } from "./dns-names.js";
import { host } from "./network.js";
import { ObjectMeta } from "./object-meta.js";
import { IssuerRef, keyRef, localRef } from "./references.js";
import { DKIM_ALGORITHMS, DKIM_SELECTOR_PATTERN } from "../../relay/contract/dkim-config.js";
import { statusBase } from "./status.js";

export const CredentialType = z
  .enum(["password", "clientCertificate", "dkim"])
  .describe(
    "password: a username and a password (SMTP AUTH PLAIN/LOGIN, only ever inside TLS). clientCertificate (usage outbound only): the TLS client certificate and key the relay presents during the handshake, or the certificate and key a policy's S/MIME signs with (smime.signingCredentialRef). dkim: a DKIM private key (usage outbound) that a MailRelay's spec.dkim names for a domain it signs.",
  );
export type CredentialType = z.infer<typeof CredentialType>;

export const CredentialUsage = z
  .enum(["outbound", "inbound"])
  .describe(
    "outbound: the relay logs in to a partner with it (referenced from a MailDomainPolicy's outbound section). inbound (type password only): a partner or an internal client logs in to the relay with it.",
  );
export type CredentialUsage = z.infer<typeof CredentialUsage>;

/** A field only inbound credentials use. */
const inboundOnly = (field: string): CelRule => ({
  rule: `self.usage == 'inbound' || !has(self.${field})`,
  message: `${field} only applies to what a client logged in with an inbound credential may do: remove it or set usage inbound`,
  fieldPath: `.${field}`,
  reason: "FieldValueForbidden",
});

/** A field that only one credential type uses: its absence elsewhere keeps a spec from saying two things. */
const onlyFor = (field: string, type: CredentialType): CelRule => ({
  rule: `self.type == '${type}' || !has(self.${field})`,
  message: `${field} is only used by type ${type}: remove it or change type`,
  fieldPath: `.${field}`,
  reason: "FieldValueForbidden",
});
const requiredFor = (field: string, type: CredentialType, why: string): CelRule => ({
  rule: `self.type != '${type}' || has(self.${field})`,
  message: `type ${type} needs ${field}: ${why}`,
  fieldPath: `.${field}`,
  reason: "FieldValueRequired",
});

const Dkim = z
  .object({
    selector: z
      .string()
      .min(1)
      .max(253)
      .regex(new RegExp(DKIM_SELECTOR_PATTERN), "must be a DKIM selector: labels of letters, digits, - and _")
      .describe(
        "The selector (s=): receivers fetch the public key from the TXT record <selector>._domainkey.<domain>, e.g. 2026a. Publish the record before the relay signs with the key; rotate by adding a new selector.",
      ),
    privateKeySecretRef: keyRef(
      "The Secret key holding the private key (PEM, PKCS#1 or PKCS#8; RSA of at least 1024 bits, 2048 recommended: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048). Only the relay pods read it (mounted); the operator never reads its value. A key that does not load defers the domain's mail (DKIM_KEY_INVALID), never sends it unsigned.",
      "Secret",
      "private.key",
    ),
    algorithm: z
      .enum(DKIM_ALGORITHMS)
      .default("rsa-sha256")
      .describe(
        "The signature algorithm (a=). rsa-sha256 (RFC 6376, RFC 8301), what every receiver verifies. ed25519-sha256 (RFC 8463) is not offered yet: the relay's signer (nodemailer's) signs RSA only.",
      ),
  })
  .describe(
    "type dkim: the DKIM key. Relaxed/relaxed canonicalisation; the signature covers From, To, Subject, Date, Message-ID, MIME-Version and Content-Type.",
  );

export const RelayCredentialSpec = z
  .object({
    type: CredentialType,
    usage: CredentialUsage,
    username: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe(
        "type password: the login name (for inbound credentials, the name the partner logs in with). Cannot change, nor can type and usage: on a relay one username is one login, and the oldest RelayCredential with it keeps it (a relay-wide account of the MailRelay before any); the others are refused from every host and reported on the MailRelay.",
      ),
    passwordSecretRef: keyRef(
      "type password: the Secret key holding the password (for inbound credentials, the password the partner must present). A Secret of type Opaque or kubernetes.io/basic-auth of its own: the relay sends an outbound password to the hosts restrictTo allows, so a Secret of another type (TLS keys, tokens) or one of a MailRelay's own (its certificate, fleet key, admin token) is refused (Accepted=False, InvalidReference). With the chart's admission policy, whoever creates or changes the credential must be allowed to read (get) the Secret.",
      "Secret",
      "password",
    ).optional(),
    secretRef: localRef(
      "type clientCertificate: an existing Secret of type kubernetes.io/tls (tls.crt, tls.key): the certificate and key the relay presents. A Secret of another type is reported in the Accepted condition.",
      "Name of the Secret in the same namespace.",
    ).optional(),
    issuerRef: IssuerRef.optional().describe(
      "type clientCertificate: have cert-manager issue the certificate instead of referencing a Secret. The operator creates the kubernetes.io/tls Secret <name>-client-tls itself (named in status.secretName, its uid in status.issuedSecretUID, owned by the credential), then a Certificate for dnsNames that cert-manager issues into it. A Secret of that name the operator did not create for this credential (another application's, one created by someone else before or after, or one left by a deleted credential of the same name) is never used or overwritten: Accepted=False, InvalidReference; delete it so the operator creates its own, or rename the credential.",
    ),
    dnsNames: z
      .array(domainName("A DNS name, e.g. relay.example.com."))
      .min(1)
      .max(16)
      .optional()
      .describe(
        "With issuerRef: the names the issued certificate carries, usually the relay's hostname (the name the partner checks). With the chart's admission policy each must be granted to the namespace (annotation sealpost.dev/allowed-hostnames), as a MailRelay's spec.hostname.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    dkim: Dkim.optional(),
    allowRelay: z
      .boolean()
      .optional()
      .describe(
        "usage inbound: a client logged in with this credential may send to any domain, not only to the relay's localDomains. This makes the relay an open relay for whoever holds the password (spam and phishing from your IP addresses under your domains' reputation, S/MIME-signed by the relay when the sender is in localDomains): grant it to your own mail clients and applications, not to partners: only a relay-wide account (a MailRelay's spec.inbound.credentialRefs) may have it, and a MailDomainPolicy whose inbound.credentialRef names a credential with it is not accepted (InvalidReference). Default false: local domains only.",
      ),
    senderDomains: z
      .array(domainPattern("A domain or *.domain the client may send as, e.g. example.com."))
      .min(1)
      .max(64)
      .optional()
      .describe(
        "usage inbound: the domains a client logged in with this credential may use in MAIL FROM (other senders get 553 5.7.1, like Postfix's reject_sender_login_mismatch; the null sender is allowed). Absent: for a credential named in a MailDomainPolicy's inbound.credentialRef, that policy's domains; otherwise the relay's localDomains. For a credential a policy names (a partner's login), these only narrow: it sends only as domains the relay routes by a policy naming it, never the relay's localDomains.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    restrictTo: z
      .object({
        domains: z
          .array(domainPattern("A recipient domain, or *.domain for its subdomains."))
          .min(1)
          .max(64)
          .optional()
          .describe(
            "The recipient domains a MailDomainPolicy using this credential may cover: each of the policy's domains must be one of these, or under a *.domain here. A catch-all policy is never covered. For a password, a policy that sets outbound.nextHop needs that host within these domains or listed in nextHops.",
          )
          .meta({ "x-kubernetes-list-type": "set" }),
        nextHops: z
          .array(host("A next-hop host name or IP address, e.g. smtp.partner.example."))
          .min(1)
          .max(16)
          .optional()
          .describe(
            "The only servers this credential may be sent to: a policy using it must set outbound.nextHop to one of these hosts (a policy that delivers to the domain's MX hosts is refused).",
          )
          .meta({ "x-kubernetes-list-type": "set" }),
      })
      .optional()
      .describe(
        "usage outbound: where this credential may be used, so that a policy author cannot send it to a server of their own. A MailDomainPolicy that uses it elsewhere is not accepted (Accepted=False, InvalidReference, naming the domain or next hop). Required for a password: without domains or nextHops here no policy may send it (any policy author in the namespace could name a server of their own), and a policy that sets its own outbound.nextHop may send a password only to a host listed in nextHops (domains alone let it go only to the domain's MX hosts); a client certificate without it may be used by any policy in the namespace.",
      ),
  })
  .describe("The account or certificate, and which way it is used.")
  .meta({
    "x-kubernetes-validations": [
      {
        // on a relay one username is one login and the oldest credential keeps it (the operator's
        // compile/login-names.ts, by creation time): a username or usage changed later would take an
        // established login with an older object (attack review, session 9)
        rule: "self.type == oldSelf.type && self.usage == oldSelf.usage && (has(self.username) ? has(oldSelf.username) && self.username == oldSelf.username : !has(oldSelf.username))",
        message:
          "type, usage and username cannot change: they say which login a credential is and since when (on a relay one username is one login, and the oldest credential keeps it); create a new RelayCredential instead",
        fieldPath: ".username",
        reason: "FieldValueForbidden",
      },
      {
        // the fleet's own login (relay/queue/handover.ts FLEET_USER): an account of that name would
        // share its failure counter, so wrong passwords sent for it would lock a draining pod's
        // handover out (in-cluster review, session 11)
        rule: "self.usage != 'inbound' || !has(self.username) || self.username.lowerAscii() != 'sealpost-fleet'",
        message:
          "sealpost-fleet is the relay fleet's own login (a draining pod hands its queue over with it): choose another username",
        fieldPath: ".username",
        reason: "FieldValueInvalid",
      },
      requiredFor("username", "password", "the login name"),
      requiredFor("passwordSecretRef", "password", "the Secret key holding the password"),
      requiredFor("dkim", "dkim", "the selector and the Secret key holding the private key"),
      onlyFor("dkim", "dkim"),
      {
        rule: "self.type != 'dkim' || self.usage == 'outbound'",
        message: "a dkim key signs the relay's outgoing mail: set usage outbound",
        fieldPath: ".usage",
        reason: "FieldValueInvalid",
      },
      {
        // a partner presenting a client certificate is not matched against one: accepting the
        // object would let its author believe such a login is checked
        rule: "self.type != 'clientCertificate' || self.usage == 'outbound'",
        message:
          "a partner cannot log in to the relay with a client certificate: use type password for usage inbound, or limit the partner by its hosts (a MailDomainPolicy's inbound.hosts with require tls)",
        fieldPath: ".usage",
        reason: "FieldValueInvalid",
      },
      {
        rule: "self.type != 'dkim' || !has(self.restrictTo)",
        message:
          "restrictTo limits where a login or certificate is sent; a dkim key is never sent: remove it (the MailRelay's spec.dkim says which domain it signs)",
        fieldPath: ".restrictTo",
        reason: "FieldValueForbidden",
      },
      onlyFor("username", "password"),
      onlyFor("passwordSecretRef", "password"),
      inboundOnly("allowRelay"),
      inboundOnly("senderDomains"),
      {
        rule: "self.type != 'clientCertificate' || has(self.secretRef) || has(self.issuerRef)",
        message:
          "type clientCertificate needs secretRef (an existing kubernetes.io/tls Secret) or issuerRef (cert-manager issues the certificate)",
        fieldPath: ".secretRef",
        reason: "FieldValueRequired",
      },
      onlyFor("secretRef", "clientCertificate"),
      onlyFor("issuerRef", "clientCertificate"),
      {
        rule: "!has(self.secretRef) || !has(self.issuerRef)",
        message: "set secretRef (use this Secret) or issuerRef (issue a new certificate), not both",
        fieldPath: ".issuerRef",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.usage == 'outbound' || !has(self.restrictTo)",
        message: "restrictTo limits where the relay sends a credential: only for usage outbound",
        fieldPath: ".restrictTo",
        reason: "FieldValueForbidden",
      },
      {
        rule: "has(self.issuerRef) == has(self.dnsNames)",
        message:
          "issuerRef and dnsNames go together: the issued certificate needs names, and names need an issuer",
        fieldPath: ".dnsNames",
      },
    ],
  });
export type RelayCredentialSpec = z.infer<typeof RelayCredentialSpec>;
export type RelayCredentialSpecInput = z.input<typeof RelayCredentialSpec>;

export const RelayCredentialStatus = z
  .object({
    ...statusBase,
    secretName: z
      .string()
      .max(253)
      .optional()
      .describe("type clientCertificate: the kubernetes.io/tls Secret in use (issued or referenced)."),
    issuedSecretUID: z
      .string()
      .max(64)
      .optional()
      .describe(
        "issuerRef: the uid of the Secret <name>-client-tls the operator created (empty, for cert-manager to fill) before it applied the Certificate. Only the Secret of this uid is used; one of that name created by anyone else is refused.",
      ),
  })
  .describe(
    "Set by the operator. Conditions: Accepted (the referenced Secret exists with the expected keys and type; an issued certificate is ready), Ready.",
  );
export type RelayCredentialStatus = z.infer<typeof RelayCredentialStatus>;

export const RelayCredential = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("RelayCredential"),
  metadata: ObjectMeta,
  spec: RelayCredentialSpec,
  status: RelayCredentialStatus.optional(),
});
export type RelayCredential = z.infer<typeof RelayCredential>;
