// A MailDomainPolicy's OpenPGP gateway encryption (spec.outbound.messageEncryption.openpgp), beside
// S/MIME: PGP/MIME (RFC 3156) to keys from a keyring or the recipient domain's Web Key Directory.
// The relay side is relay/outbound/openpgp.ts and wkd.ts.
import { z } from "zod";
import { cel } from "./cel.js";
import { keyRef, localRef } from "./references.js";

export const OPENPGP_KEYRING_SUFFIX = ".asc";

export const Openpgp = z
  .object({
    recipientKeys: z
      .object({
        secretRef: localRef(
          "A Secret whose every key ending in .asc holds recipient public keys (ASCII-armored, one or several).",
          "Name of the Secret in the same namespace.",
        ).optional(),
        configMapRef: localRef(
          "A ConfigMap whose every key ending in .asc holds recipient public keys (ASCII-armored, one or several).",
          "Name of the ConfigMap in the same namespace.",
        ).optional(),
        webKeyDirectory: z
          .boolean()
          .default(false)
          .describe(
            "Look up a recipient the keyring has no usable key for in its domain's Web Key Directory (https://openpgpkey.<domain>/.well-known/openpgpkey/..., else https://<domain>/... when that host does not exist), over HTTPS with a verified certificate; found keys are cached on the queue volume. A lookup that fails (unreachable, invalid certificate, a redirect off https or off the domain, an internal address, an oversized answer, a key without the recipient's address) defers the recipient whatever missingKey says.",
          ),
      })
      .describe(
        "Where the recipients' OpenPGP public keys are. A key is used for the addresses in its user IDs; the keyring wins over the Web Key Directory.",
      )
      .meta(
        cel(
          {
            rule: "!(has(self.secretRef) && has(self.configMapRef))",
            message: "recipientKeys: set at most one of secretRef or configMapRef",
          },
          {
            rule: "has(self.secretRef) || has(self.configMapRef) || (has(self.webKeyDirectory) && self.webKeyDirectory)",
            message: "recipientKeys: set secretRef, configMapRef or webKeyDirectory: true",
          },
        ),
      ),
    missingKey: z
      .enum(["defer", "bounce", "sendClear"])
      .default("defer")
      .describe(
        "What to do with a recipient who has no usable key: defer (retry until one is added or published, or the queue lifetime ends), bounce (return to sender now), sendClear (deliver unencrypted; only TLS protects it). A failed Web Key Directory lookup always defers.",
      ),
    signingKeyRef: keyRef(
      "A Secret key holding the relay's OpenPGP secret key (ASCII-armored, without a passphrase). Set: mail of the relay's own senders is signed inside the encryption (RFC 3156 section 6.2) when its one From: address is in the envelope sender's domain; a partner's mail, or a From: of another domain, is encrypted, not signed (the log line's notSigned says why).",
      "Secret",
      "signing-key.asc",
    ).optional(),
  })
  .describe(
    "Encrypt each message to its recipients' OpenPGP keys (PGP/MIME, RFC 3156) before it leaves: only the recipients can read it, whatever the servers in between do. For partners without an S/MIME PKI.",
  );
export type Openpgp = z.infer<typeof Openpgp>;
