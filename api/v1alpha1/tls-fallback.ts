// spec.outbound.tls.fallback (issue 20 item 2): what a MailDomainPolicy does when its TLS
// requirement cannot be met on any of the partner's servers: defer (the default, as without it),
// S/MIME-encrypt to the recipient's certificate and send over TLS (or, only when said so, over an
// opportunistic session), or route to an alternate next hop (an encryption portal) under its own TLS
// requirement, which must authenticate the peer. maildomainpolicy.ts composes it into OutboundTls and
// adds the rules that read the policy around it (FALLBACK_TLS_RULES, FALLBACK_OUTBOUND_RULES).
import { z } from "zod";
import { cel, exactlyOne, type CelRule } from "./cel.js";
import { domainPattern } from "./dns-names.js";
import { host, port } from "./network.js";
import { localRef, pemBundleRefs } from "./references.js";
import { Pins } from "./tls-confidence.js";
import { FALLBACK_ROUTE_MODES, TLS_VERSIONS } from "../../relay/contract/config.js";

/** Where S/MIME recipient certificates come from (messageEncryption.smime and the smime fallback). */
export const RecipientCertificates = z
  .object({
    secretRef: localRef(
      "A Secret whose every key ending in .crt or .pem holds recipient certificates (PEM).",
      "Name of the Secret in the same namespace.",
    ).optional(),
    configMapRef: localRef(
      "A ConfigMap whose every key ending in .crt or .pem holds recipient certificates (PEM).",
      "Name of the ConfigMap in the same namespace.",
    ).optional(),
  })
  .describe(
    "Where the recipients' S/MIME certificates are (public certificates only, no keys). A certificate is used for the recipient addresses in its email subjectAltName.",
  )
  .meta(cel(exactlyOne("secretRef", "configMapRef", "recipientCertificates")));

const ONLY_VERIFY = (field: string): CelRule => ({
  rule: `self.mode == 'verify' || !has(self.${field})`,
  message: `fallback.route.tls.${field} is only used by mode verify: use mode verify or remove it`,
  fieldPath: `.${field}`,
  reason: "FieldValueForbidden",
});

const RouteTls = z
  .object({
    mode: z
      .enum(FALLBACK_ROUTE_MODES)
      .describe(
        "How the alternate next hop is authenticated: verify (certificate chain to caBundle, or public CAs with trustSystemRoots, and one of matchNames; absent matchNames: the host) or pinned (its key is one of pins). Modes that may leave the peer unauthenticated or the session clear are not offered.",
      ),
    minVersion: z
      .enum(TLS_VERSIONS)
      .optional()
      .describe(
        "Lowest TLS version accepted from the alternate next hop. Absent: TLSv1.2. Not lower than the relay's catch-all policy's minVersion, else the policy is left out (InvalidSpec).",
      ),
    caBundle: pemBundleRefs()
      .optional()
      .describe(
        "PEM certificates of the CAs the alternate next hop's certificate must chain to (mode verify).",
      )
      .meta(cel(exactlyOne("configMapRef", "secretRef", "fallback.route.tls.caBundle"))),
    trustSystemRoots: z
      .boolean()
      .optional()
      .describe("mode verify: accept certificates from the public CAs the relay image trusts."),
    matchNames: z
      .array(domainPattern("A name, or *.domain for any one of its subdomains."))
      .min(1)
      .max(16)
      .optional()
      .describe("mode verify: names the alternate next hop's certificate must carry. Absent: its host.")
      .meta({ "x-kubernetes-list-type": "set" }),
    pins: Pins.optional(),
  })
  .describe("The alternate next hop's own TLS requirement: it must authenticate the peer.")
  .meta(
    cel(
      {
        rule: "self.mode != 'verify' || has(self.caBundle) || (has(self.trustSystemRoots) && self.trustSystemRoots)",
        message:
          "fallback.route.tls mode verify needs something to verify against: set caBundle (the portal's CA) or trustSystemRoots: true (public CAs)",
        fieldPath: ".caBundle",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.mode != 'pinned' || has(self.pins)",
        message: "fallback.route.tls mode pinned needs pins: add the alternate next hop's pin-sha256",
        fieldPath: ".pins",
        reason: "FieldValueRequired",
      },
      ONLY_VERIFY("caBundle"),
      ONLY_VERIFY("trustSystemRoots"),
      ONLY_VERIFY("matchNames"),
    ),
  );

const pairing = (action: "smime" | "route", fix: string): CelRule[] => [
  {
    rule: `self.action != '${action}' || has(self.${action})`,
    message: `fallback action ${action} needs fallback.${action}: ${fix}`,
    fieldPath: `.${action}`,
    reason: "FieldValueRequired",
  },
  {
    rule: `self.action == '${action}' || !has(self.${action})`,
    message: `fallback.${action} is only used by action ${action}: set action: ${action} or remove fallback.${action}`,
    fieldPath: `.${action}`,
    reason: "FieldValueForbidden",
  },
];

export const TlsFallback = z
  .object({
    action: z
      .enum(["defer", "smime", "route"])
      .default("defer")
      .describe(
        "defer: keep the message queued and retry, as without a fallback. smime: encrypt the message to the recipient's certificate (fallback.smime) and send it to the partner over the TLS fallback.smime.session allows; a recipient without a certificate is deferred. route: send it to fallback.route, an alternate next hop such as an encryption portal, under its own TLS requirement; if that is not met either, the message is deferred.",
      ),
    smime: z
      .object({
        recipientCertificates: RecipientCertificates,
        contentEncryption: z
          .enum(["aes-256-cbc", "aes-256-gcm"])
          .default("aes-256-cbc")
          .describe(
            "aes-256-cbc (CMS EnvelopedData, every S/MIME client) or aes-256-gcm (AuthEnvelopedData, RFC 5083/5084).",
          ),
        sign: z
          .boolean()
          .default(false)
          .describe(
            "Also sign the message with the relay's certificate: only mail the relay is entitled to sign (as messageEncryption.smime.sign: its own senders' mail, one From: address in the envelope sender's domain).",
          ),
        session: z
          .enum(["required", "opportunistic"])
          .default("required")
          .describe(
            "The TLS of the session that carries the encrypted message: required (TLS, the server's certificate not checked: the fallback for a partner whose certificate, name, pin, DANE or MTA-STS check fails) or opportunistic (also a session in clear when STARTTLS is missing or stripped: the content stays encrypted, the envelope and the headers outside the encryption (From, To, Subject) travel in clear). opportunistic must be chosen explicitly. Under a relay's catch-all policy (the one whose domains are *) the session must not be weaker than the catch-all's mode, else the policy is left out (InvalidSpec): under a catch-all that verifies, use action route to a verified next hop.",
          ),
      })
      .optional()
      .describe("action smime: the recipients' certificates and how the message is encrypted and sent."),
    route: z
      .object({
        host: host("DNS name or IP address of the alternate next hop, e.g. portal.example.com."),
        port: port("TCP port of the alternate next hop.").default(25),
        tls: RouteTls,
      })
      .optional()
      .describe(
        "action route: the alternate next hop (e.g. an encryption portal) and its TLS requirement. No SMTP AUTH and no client certificate of the policy is presented to it.",
      ),
  })
  .describe(
    "What to do when the TLS requirement cannot be met on any of the partner's servers: STARTTLS missing or refused, a session not encrypted, certificate verification, DANE, MTA-STS, the minimum TLS version or a pin failed on every server tried. Never on the partner's reply (4xx/5xx), a connection failure or timeout, or DNS errors: the mail then waits for the next attempt. Each fallback is logged (the delivery log's fallback field), counted (sealpost_relay_tls_fallback_recipients_total) and recorded in the encryption receipt. A message with REQUIRETLS never takes the smime fallback. Absent: defer.",
  )
  .meta(
    cel(
      ...pairing("smime", "set fallback.smime.recipientCertificates (the recipients' S/MIME certificates)"),
      ...pairing(
        "route",
        "set fallback.route.host and fallback.route.tls (the alternate next hop, e.g. an encryption portal)",
      ),
    ),
  );
export type TlsFallback = z.infer<typeof TlsFallback>;

/** Rules on spec.outbound.tls that read the fallback beside the mode. */
export const FALLBACK_TLS_RULES: CelRule[] = [
  {
    rule: "!has(self.fallback) || self.fallback.action == 'defer' || !(self.mode in ['none', 'opportunistic'])",
    message:
      "a fallback applies when the TLS requirement cannot be met; modes none and opportunistic never refuse a server (they send in clear): remove fallback or choose mode required, verify, mta-sts, dane or pinned",
    fieldPath: ".fallback",
    reason: "FieldValueForbidden",
  },
];

/** Rules on spec.outbound that read the fallback beside the message encryption. */
export const FALLBACK_OUTBOUND_RULES: CelRule[] = [
  {
    rule: "!has(self.tls.fallback) || self.tls.fallback.action != 'smime' || !has(self.messageEncryption)",
    message:
      "every message is already S/MIME-encrypted (messageEncryption.smime), so a smime fallback changes nothing: use fallback action route or defer",
    fieldPath: ".tls.fallback.action",
    reason: "FieldValueForbidden",
  },
];
