// MailDomainPolicy: how mail to a partner's domains must travel (outbound) and what the partner's own
// sending servers must do to hand mail to us (inbound). The relay never downgrades: a requirement it
// cannot meet defers the message and retries, it never sends in clear instead.
import { z } from "zod";
import { API_VERSION } from "./api-version.js";
import { cel, exactlyOne } from "./cel.js";
import { domainPattern, POLICY_DOMAIN_PATTERN } from "./dns-names.js";
import { cidr, host, port } from "./network.js";
import { ObjectMeta } from "./object-meta.js";
import { localRef, pemBundleRefs } from "./references.js";
import { Openpgp } from "./openpgp.js";
import { int64, statusBase, timestamp } from "./status.js";
import { REQUIREMENTS, TLS_MODES, TLS_VERSIONS } from "../../relay/contract/config.js";
import { AUTHENTICATING_MODES, floorDescriptions } from "./tls-floors.js";
import {
  activeExceptionsStatus,
  EXCEPTION_SPEC_RULES,
  PolicyExceptions,
  PolicyExceptionsStatus,
} from "./policy-exceptions.js";
import {
  AuditStatus,
  AuditTls,
  certificateExpiryWarning,
  PartnerCertificatesStatus,
  Pins,
} from "./tls-confidence.js";
import {
  FALLBACK_OUTBOUND_RULES,
  FALLBACK_TLS_RULES,
  RecipientCertificates,
  TlsFallback,
} from "./tls-fallback.js";
import { TransitReportStatus } from "./transit-report.js";
import { CheckStatus } from "./preflight-check.js";

export const TlsMode = z
  .enum(TLS_MODES)
  .describe(
    [
      "How the connection to the partner is protected. Each mode's floor is what it guarantees whatever DNS, the partner or an attacker on the path says; a situation below the floor defers the message (never a fallback to something weaker). Levels: none (clear), may (STARTTLS when offered), encrypt (TLS, peer not authenticated), verify (certificate chain and name), dane (TLSA records).",
      ...floorDescriptions(),
    ].join("\n"),
  );
export type TlsMode = z.infer<typeof TlsMode>;

/** Modes that use TLS with this partner whenever it can be set up: a client certificate makes sense with them. */
const CLIENT_CERT_MODES = [
  "required",
  "verify",
  "mta-sts",
  "dane",
  "pinned",
] as const satisfies readonly TlsMode[];
const celList = (modes: readonly string[]) => `[${modes.map((m) => `'${m}'`).join(", ")}]`;
const AUTH_CEL_MODES = celList(AUTHENTICATING_MODES);

export const TlsVersion = z.enum(TLS_VERSIONS);
export type TlsVersion = z.infer<typeof TlsVersion>;

export const InboundRequirement = z.enum(REQUIREMENTS);
export type InboundRequirement = z.infer<typeof InboundRequirement>;

const CaBundle = pemBundleRefs()
  .describe(
    "PEM certificates of the CAs the partner's certificate must chain to (mode verify), from a ConfigMap or a Secret in the policy's namespace.",
  )
  .meta(cel(exactlyOne("configMapRef", "secretRef", "caBundle")));

export const OutboundTls = z
  .object({
    mode: TlsMode,
    minVersion: TlsVersion.optional().describe(
      "Lowest TLS version accepted from the partner: TLSv1.2 or TLSv1.3. Absent: TLSv1.2. Not allowed with mode none.",
    ),
    caBundle: CaBundle.optional(),
    trustSystemRoots: z
      .boolean()
      .optional()
      .describe(
        "mode verify: also accept certificates from the public CAs the relay image trusts. Mode verify needs this or caBundle, so that trusting the whole Web PKI is a choice, not an accident.",
      ),
    matchNames: z
      .array(domainPattern("A name, or *.domain for any one of its subdomains."))
      .min(1)
      .max(16)
      .optional()
      .describe(
        "mode verify: names the partner's certificate must carry (one is enough), e.g. mx.partner.example. Absent: the nextHop host when one is set; otherwise the recipient domain or any name under it (Postfix secure's nexthop, dot-nexthop), since an MX name from DNS that is not DNSSEC-validated may be an attacker's.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    clientCertificateRef: localRef(
      "A RelayCredential of type clientCertificate and usage outbound: the certificate the relay presents to the partner. Needs a TLS mode that always encrypts (required, verify, mta-sts, dane, pinned). A credential of the wrong type or usage is reported in the policy's Accepted condition.",
      "Name of the RelayCredential in the same namespace.",
    ).optional(),
    pins: Pins.optional(),
    audit: AuditTls.optional(),
    certificateExpiryWarning,
    fallback: TlsFallback.optional(),
  })
  .describe("TLS for connections to the partner's servers (STARTTLS on port 25 or nextHop's port).")
  .meta(
    cel(
      {
        rule: "self.mode != 'none' || !has(self.minVersion)",
        message:
          "minVersion needs a TLS mode; mode none never uses TLS: remove minVersion or choose another mode",
        fieldPath: ".minVersion",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.mode != 'verify' || has(self.caBundle) || (has(self.trustSystemRoots) && self.trustSystemRoots)",
        message:
          "mode verify needs something to verify against: set caBundle (the partner's CA) or trustSystemRoots: true (public CAs)",
        fieldPath: ".caBundle",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.mode == 'verify' || !has(self.caBundle)",
        message:
          "caBundle is only used by mode verify; other modes do not check it (mta-sts uses public CAs, dane TLSA records): use mode verify or remove caBundle",
        fieldPath: ".caBundle",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.mode == 'verify' || !has(self.trustSystemRoots)",
        message: "trustSystemRoots is only used by mode verify: use mode verify or remove it",
        fieldPath: ".trustSystemRoots",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.mode == 'verify' || !has(self.matchNames)",
        message: "matchNames is only checked by mode verify: use mode verify or remove matchNames",
        fieldPath: ".matchNames",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.mode != 'pinned' || has(self.pins)",
        message:
          "mode pinned needs at least one key to pin: add spec.outbound.tls.pins (the partner's pin-sha256, and a backup pin for its next key)",
        fieldPath: ".pins",
        reason: "FieldValueRequired",
      },
      {
        rule: "!has(self.pins) || !(self.mode in ['none', 'opportunistic'])",
        message:
          "pins are checked inside TLS, which modes none and opportunistic do not require: use mode pinned (the pin alone authenticates) or required, verify, mta-sts or dane",
        fieldPath: ".pins",
        reason: "FieldValueForbidden",
      },
      {
        rule: `!has(self.clientCertificateRef) || self.mode in ${celList(CLIENT_CERT_MODES)}`,
        message:
          "a client certificate needs a TLS mode that always encrypts (required, verify, mta-sts, dane or pinned); with none or opportunistic it may never be presented",
        fieldPath: ".clientCertificateRef",
        reason: "FieldValueForbidden",
      },
      ...FALLBACK_TLS_RULES,
    ),
  );
export type OutboundTls = z.infer<typeof OutboundTls>;

const Smime = z
  .object({
    recipientCertificates: RecipientCertificates,
    missingCertificate: z
      .enum(["defer", "bounce", "sendClear"])
      .default("defer")
      .describe(
        "What to do with a recipient who has no usable certificate (none for the address, expired, not yet valid, key usage without encryption, or an RSA key under 2048 bits): defer (retry until one is added or the queue lifetime ends), bounce (return to sender now), sendClear (deliver unencrypted; only TLS protects it).",
      ),
    sign: z
      .boolean()
      .default(false)
      .describe(
        "Also sign the message (before encrypting it) with signingCredentialRef's certificate, or without it the relay's server certificate. Only mail the relay is entitled to sign is signed: from relayFrom or a relay-wide account, sender in localDomains, and exactly one From: address, in the envelope sender's domain; anything else (a partner's mail, a From: of another domain) is encrypted, not signed, and its log line says why (notSigned).",
      ),
    signingCredentialRef: localRef(
      "The RelayCredential (type clientCertificate, usage outbound) whose certificate and key sign: an S/MIME certificate (extendedKeyUsage emailProtection) for the senders' addresses, which their partners' clients accept. Its restrictTo.domains, if any, must cover this policy's domains. Absent: the relay's server certificate, which most clients do not accept for S/MIME. Only with sign: true.",
      "Name of the RelayCredential in the same namespace.",
    ).optional(),
    contentEncryption: z
      .enum(["aes-256-cbc", "aes-256-gcm"])
      .default("aes-256-cbc")
      .describe(
        "How the content is encrypted: aes-256-cbc (CMS EnvelopedData, which every S/MIME client decrypts) or aes-256-gcm (CMS AuthEnvelopedData, RFC 5083/5084: authenticated encryption, so a changed ciphertext is refused instead of decrypted to altered text; RFC 8551 requires S/MIME 4.0 receivers to support it, but older clients cannot open it). Choose aes-256-gcm when the partner's mail clients support it.",
      ),
  })
  .describe(
    "Encrypt each message to its recipients' certificates (S/MIME, CMS EnvelopedData) before it leaves: only the recipients can read it, whatever the servers in between do.",
  )
  .meta(
    cel({
      rule: "!has(self.signingCredentialRef) || self.sign",
      message: "signingCredentialRef names the certificate that signs: set sign: true, or remove it",
      fieldPath: ".signingCredentialRef",
      reason: "FieldValueForbidden",
    }),
  );

export const PolicyOutbound = z
  .object({
    tls: OutboundTls,
    auth: z
      .object({
        credentialRef: localRef(
          "A RelayCredential of type password and usage outbound, with a restrictTo; the wrong type or usage, a credential without restrictTo, or one whose restrictTo does not cover this policy's domains and nextHop, is reported in the policy's Accepted condition.",
          "Name of the RelayCredential in the same namespace.",
        ),
        allowUnauthenticatedPeer: z
          .boolean()
          .optional()
          .describe(
            "Also send the password to a peer whose certificate is not verified (tls.mode required; mta-sts without an enforce policy; dane hosts without usable TLSA records). RISK: anyone who can intercept or redirect the connection (a spoofed MX or a machine on the path) presents a certificate of its own and collects the password. Absent/false: the password only goes to a peer authenticated by verify, an enforced MTA-STS policy or DANE; otherwise the message is deferred (AUTH_PEER_UNAUTHENTICATED). Never sent in clear either way.",
          ),
      })
      .optional()
      .describe(
        "Log in to the partner's server with SMTP AUTH. Only ever inside TLS, and by default only to a peer whose certificate was verified: needs tls.mode verify, mta-sts or dane, or required with allowUnauthenticatedPeer.",
      ),
    nextHop: z
      .object({
        host: host("DNS name or IP address of the server, e.g. smtp.partner.example."),
        port: port("TCP port; 25 for server-to-server mail, 587 for submission with AUTH.").default(25),
      })
      .optional()
      .describe("Send to this server instead of the domain's MX hosts."),
    messageEncryption: z
      .object({ smime: Smime.optional(), openpgp: Openpgp.optional() })
      .optional()
      .describe(
        "Encryption of the message itself, on top of TLS for the connection: S/MIME or OpenPGP, one per policy.",
      )
      .meta(cel(exactlyOne("smime", "openpgp", "messageEncryption"))),
  })
  .describe("How mail to these domains leaves the relay.")
  .meta(
    cel(
      {
        rule: `!has(self.auth) || self.tls.mode in ${AUTH_CEL_MODES} || (self.tls.mode == 'required' && has(self.auth.allowUnauthenticatedPeer) && self.auth.allowUnauthenticatedPeer)`,
        message:
          "SMTP AUTH sends the password to the partner, so it needs a mode that verifies the peer (verify, mta-sts or dane); mode required never verifies it: set auth.allowUnauthenticatedPeer: true to accept that an attacker on the path can collect the password; with none or opportunistic it could travel in clear",
        fieldPath: ".auth",
        reason: "FieldValueForbidden",
      },
      ...FALLBACK_OUTBOUND_RULES,
    ),
  );
export type PolicyOutbound = z.infer<typeof PolicyOutbound>;

export const PolicyInbound = z
  .object({
    hosts: z
      .array(cidr("An address or CIDR range, e.g. 203.0.113.0/24 or 2001:db8:5::/48."))
      .min(1)
      .max(64)
      .describe(
        "The partner's sending servers, as IP addresses or CIDR ranges: within the MailRelay's spec.inbound.partnerHosts when it sets them, else outside its relayFrom, and no IPv6 range holding the IPv4-mapped block ::ffff:0:0/96 (::/0, say: older relays match it against every IPv4 sender); otherwise the policy is not accepted on that relay (InvalidSpec). An IPv6 range matches IPv6 senders only.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    require: InboundRequirement.describe(
      "What these hosts must do before the relay accepts mail from them: none, tls (STARTTLS first), auth (SMTP AUTH; the relay offers AUTH only inside TLS, so this implies TLS), tls+auth (both, stated explicitly). The relay applies the stricter of this and the MailRelay's inbound.require.",
    ),
    credentialRef: localRef(
      "The RelayCredential (type password, usage inbound) these hosts must log in with; it is then accepted from these hosts only. Logged in, they may send to the relay's localDomains only (a credential with allowRelay is not accepted here, InvalidReference), with MAIL FROM only in domains the relay routes by a policy naming the credential, never its localDomains (the credential's senderDomains narrow these), and their mail is never S/MIME-signed by the relay. Not one of the MailRelay's own accounts (its spec.inbound.credentialRefs, relay-wide logins): a policy naming one is not accepted on that relay (InvalidReference). Named by several policies, it is accepted only from hosts every one of them lists, never the union, and sends as each one's domains where that policy routes them (so an exception subdomain's policy may name its parent's login); while one of them is not accepted, no host may log in with it. Absent: any inbound credential of the relay that no other policy names. Only with require auth or tls+auth.",
      "Name of the RelayCredential in the same namespace.",
    ).optional(),
  })
  .describe("Rules for mail the partner's servers send to us.")
  .meta(
    cel({
      rule: "!has(self.credentialRef) || self.require in ['auth', 'tls+auth']",
      message: "credentialRef is only used when the hosts must log in: set require to auth or tls+auth",
      fieldPath: ".credentialRef",
      reason: "FieldValueForbidden",
    }),
  );
export type PolicyInbound = z.infer<typeof PolicyInbound>;

export const MailDomainPolicySpec = z
  .object({
    domains: z
      .array(
        z
          .string()
          .max(253)
          .regex(POLICY_DOMAIN_PATTERN, "must be a lower-case domain, *.domain or *")
          .describe("A recipient domain pattern."),
      )
      .min(1)
      .max(64)
      .describe(
        "Recipient domains this policy decides, lower case: partner.example (exactly that domain), *.partner.example (its subdomains, not the domain itself), or \"*\" alone (every domain no other policy matches; never a MailRelay's localDomains, which only a policy naming them exactly decides). The catch-all is the relay administrator's: with the chart's admission policy, only a requester who may update MailRelays in the namespace may create a policy claiming \"*\" or change one that claims it (its spec or labels, or giving it up); the operator does not know who wrote a policy, so without that admission policy whoever may write MailDomainPolicies may claim it where no older claim exists. A wildcard over a public suffix of the Public Suffix List (*.co.uk, *.github.io) names no partner and is refused (Accepted=False, reason InvalidSpec); it claims nothing, so those domains keep their route, unless the operator accepted and recorded its claim before the list named its base (an update of the list): then their mail stays deferred until the pattern is removed. Internationalised domains are written in their A-label form (bücher.example as xn--bcher-kva.example); the relay maps every spelling of a recipient domain (U-labels, full-width letters, ideographic full stop, upper case) to that form before matching, and refuses an address whose domain has no such form (553 5.1.3). When several policies match, the most specific wins. Two policies with the same pattern, or a newer policy naming a domain or wildcard under an older policy's wildcard (eu.partner.example or *.eu.partner.example under *.partner.example): the older claim on that relay keeps it (the later of when the policy began claiming the pattern, at its creation or at the edit that added it, and when the relay began selecting the policy: status.claims, status.selectedBy) and the newer one gets Accepted=False, reason DomainConflict; claims equally old are all in conflict and the domain's mail is deferred until they are told apart or one is removed. An exception to a wildcard must be older than it. A relay whose configuration would be over its size limit (900 KiB gzipped) with every policy it selects leaves out the policies it took in last until it fits (Accepted=False, reason ConfigTooLarge). While a policy is not accepted (a conflict, a missing or wrong reference, ConfigTooLarge), the relay defers the mail to the domains it owns (4.3.5) rather than sending it under another policy or the default.",
      )
      .meta({
        "x-kubernetes-list-type": "set",
        ...cel({
          rule: "!self.exists(d, d == '*') || self.size() == 1",
          message: 'the catch-all "*" must be the only domain of its policy',
        }),
      }),
    outbound: PolicyOutbound,
    inbound: PolicyInbound.optional(),
    exceptions: PolicyExceptions,
  })
  .describe(
    "A partner's domains and the protection their mail gets. Selected by a MailRelay's policySelector.",
  )
  .meta(cel(...EXCEPTION_SPEC_RULES));
export type MailDomainPolicySpec = z.infer<typeof MailDomainPolicySpec>;
export type MailDomainPolicySpecInput = z.input<typeof MailDomainPolicySpec>;

export const MailDomainPolicyStatus = z
  .object({
    ...statusBase,
    domains: z
      .string()
      .max(256)
      .optional()
      .describe("spec.domains as one line (for kubectl get), e.g. partner.example, *.partner.example."),
    claims: z
      .array(
        z.object({
          domain: z.string().max(253).describe("A pattern of spec.domains, canonical."),
          since: timestamp(
            "When this policy began claiming it: its creation, or the edit that added the pattern.",
          ),
        }),
      )
      .max(64)
      .optional()
      .describe(
        "When this policy began claiming each of its spec.domains, recorded by the operator the first time it saw the claim. Of two policies a relay selects that claim one domain, the earlier claim keeps it, a claim's age on a relay being the later of this and selectedBy's: editing an older policy to add a domain claims it from the edit, not from the policy's creation.",
      ),
    selectedBy: z
      .array(
        z.object({
          relay: z.string().max(253).describe("The MailRelay's name."),
          uid: z.string().max(64).describe("The MailRelay's uid (a relay created again is another)."),
          since: timestamp("When that relay began selecting this policy."),
        }),
      )
      .max(64)
      .optional()
      .describe(
        "Since when each MailRelay selects this policy, recorded by the operator the first time it saw it: on a relay, this policy's claims date from no earlier than this, so a policy labelled onto a relay later is the newcomer there for every domain another of its policies claims.",
      ),
    footprint: z
      .object({
        bytes: z
          .number()
          .int()
          .nonnegative()
          .describe("The policy's size in its relays' configuration, compressed, in bytes."),
        since: timestamp(
          "When it last grew by more than 1 KiB over that, or named more than 1 KiB of new domains (or was created).",
        ),
      })
      .optional()
      .describe(
        "How much room this policy takes in its relays' configuration, and since when, recorded by the operator. A relay whose configuration would be over its size limit leaves out first the policies it took in last or that grew last (the later of this and selectedBy's date): a policy that grows to take room is the newcomer, whenever it was created; an edit that adds less than 1 KiB, compressed, and less than 1 KiB of new domain names (a tightened TLS mode, one more domain) does not change its date.",
      ),
    lastDelivery: z
      .object({
        time: timestamp("When the message was accepted by the partner."),
        host: z.string().max(253).optional().describe("The server that accepted it."),
        tlsVersion: z
          .string()
          .max(32)
          .optional()
          .describe("TLS version of the connection; absent: clear text."),
        cipher: z.string().max(128).optional().describe("TLS cipher suite of the connection."),
        peerVerified: z
          .boolean()
          .describe("Whether the partner's certificate was verified (chain and name, or DANE/MTA-STS)."),
      })
      .optional()
      .describe("The most recent delivery under this policy, as a relay reported it."),
    counters: z
      .object({
        deliveries: int64("Messages delivered.").optional(),
        deferrals: int64(
          "Delivery attempts deferred, e.g. because TLS could not be established or verified.",
        ).optional(),
        bounces: int64("Messages returned to their senders.").optional(),
      })
      .optional()
      .describe(
        "Totals since the relay pods started, summed over pods; for a trend, use the relay's metrics.",
      ),
    audit: AuditStatus,
    partnerCertificates: PartnerCertificatesStatus,
    report: TransitReportStatus,
    exceptions: PolicyExceptionsStatus,
    activeExceptions: activeExceptionsStatus,
    check: CheckStatus,
  })
  .describe(
    "Set by the operator. Conditions: Accepted (references resolve to objects of the right type, no older policy claims its domains; when False its message says what the relay does meanwhile: it defers the mail to the domains this policy owns), Enforced (every relay pod runs it), Ready (both); with spec.outbound.tls.audit, SafeToEnforce (whether the audited policy would have deferred any session of the last days); once a relay saw the partner's certificates, PartnerCertificates (False: one expires within certificateExpiryWarning, or its key is not among the pins); with spec.exceptions, Exceptions (False: one is Refused); with the sealpost.dev/check annotation, Checked (whether its value was answered: status.check). report: the transport security report of the last days.",
  );
export type MailDomainPolicyStatus = z.infer<typeof MailDomainPolicyStatus>;

export const MailDomainPolicy = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("MailDomainPolicy"),
  metadata: ObjectMeta,
  spec: MailDomainPolicySpec,
  status: MailDomainPolicyStatus.optional(),
});
export type MailDomainPolicy = z.infer<typeof MailDomainPolicy>;
