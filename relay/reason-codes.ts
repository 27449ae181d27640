// Every reason code the relay can log, with what it means and what to do: the one list the
// troubleshooting table (docs/reason-codes.md, written by scripts/gen-reason-codes.ts) is made from.
// It is typed against the closed list of codes (relay/contract/failure.ts: FailureCode, OutcomeCode),
// so a code without an entry here, or an entry for no code, is a type error. scripts/gen-reason-codes.ts
// also finds where each code arises in relay/ (the table's "Raised in") and refuses to write the table
// while an entry no longer occurs there (test/unit/reason-codes.test.ts fails then too).
//
// outcome: what happens to the recipient. defer: kept in the queue and retried until queue.maxAge,
// then bounced (EXPIRED); bounce: returned to the sender now with a DSN; refuse: the SMTP client gets
// the error and the message is never accepted; config: the relay keeps its previous configuration.

import type { ReasonCode } from "./contract/failure.js";

export type ReasonOutcome = "delivered" | "defer" | "bounce" | "refuse" | "config";

export interface ReasonCodeDoc {
  outcome: ReasonOutcome;
  /** What happened, in the words of someone reading a log line. */
  meaning: string;
  /** What to check or change. */
  fix: string;
}

export const REASON_CODES = {
  // ---- TLS with the next hop ----
  TLS_NOT_OFFERED: {
    outcome: "defer",
    meaning: "The partner's server did not offer STARTTLS, and the policy requires TLS.",
    fix: "Ask the partner to enable STARTTLS; if it usually offers it, a firewall on the path may strip it (SMTP inspection). Never lower the policy to deliver anyway unless clear text is acceptable.",
  },
  TLS_PIN_MISMATCH: {
    outcome: "defer",
    meaning:
      "The key of the partner server's certificate is not among the policy's pins (tls.pins); the message names the pin-sha256 seen. Nothing was sent to that server. Shadow mode counts it as would-fail for audit.pins.",
    fix: "If the partner rotated its key as announced, add the new pin (keep the old one until the rotation is done; list a backup pin ahead of the next rotation). If not, the server may not be the partner's: do not add the pin before the partner confirms it.",
  },
  TLS_STARTTLS_REFUSED: {
    outcome: "defer",
    meaning: "The server advertised STARTTLS but answered the STARTTLS command with an error.",
    fix: "A TLS-inspecting firewall or an overloaded server; check the reply text in `sealpost queue show` and contact the partner.",
  },
  TLS_HANDSHAKE_FAILED: {
    outcome: "defer",
    meaning:
      "The TLS handshake failed (no common protocol or cipher, or the negotiated TLS version is below the policy's minVersion).",
    fix: "Compare the partner's TLS versions with the policy's minVersion (`openssl s_client -starttls smtp -connect host:25`); Sealpost never uses TLS below 1.2.",
  },
  TLS_VERIFY_FAILED: {
    outcome: "defer",
    meaning:
      "The partner's certificate did not verify: unknown CA, expired, or none of the expected names (mode verify, or an MTA-STS enforce policy).",
    fix: "Check the chain against the policy's caBundle or trustSystemRoots and the names against matchNames (the message names the certificate error).",
  },
  TLS_REQUIRED: {
    outcome: "defer",
    meaning: "The session was not encrypted, or not as the policy requires, when the message was to be sent.",
    fix: "See the message for what was observed; usually the same causes as TLS_NOT_OFFERED.",
  },
  REQUIRETLS_UNMET: {
    outcome: "bounce",
    meaning:
      "The sender asked for REQUIRETLS (RFC 8689), but the next hop's TLS level under the policy does not authenticate the peer. For a local domain delivered over the internal next hop in such a mode the relay refuses the recipient at RCPT TO instead (550 5.7.10), so no such message is accepted only to bounce.",
    fix: "Deliver such mail under a policy with mode verify, mta-sts or dane, or ask the sender not to require TLS.",
  },
  REQUIRETLS_NOT_SUPPORTED: {
    outcome: "bounce",
    meaning: "The message requires REQUIRETLS, and the next hop does not offer the REQUIRETLS extension.",
    fix: "The partner's server must support RFC 8689, or the sender must drop the requirement.",
  },
  // ---- MTA-STS ----
  MTA_STS_MX_MISMATCH: {
    outcome: "defer",
    meaning: "The MX host is not listed in the domain's MTA-STS enforce policy.",
    fix: "The partner's MX records and its MTA-STS policy disagree (or DNS is spoofed); the partner must update the policy's mx lines.",
  },
  MTA_STS_POLICY_INVALID: {
    outcome: "defer",
    meaning:
      "The domain's MTA-STS policy file is malformed (version, mode, max_age, mx lines, type or size).",
    fix: "Fetch https://mta-sts.<domain>/.well-known/mta-sts.txt and tell the partner what is wrong; a cached enforce policy is used meanwhile.",
  },
  MTA_STS_FETCH_FAILED: {
    outcome: "defer",
    meaning: "The MTA-STS policy could not be fetched over HTTPS (address, HTTP status, certificate).",
    fix: "Check that the relay pods may reach mta-sts.<domain>:443 (NetworkPolicy, egress proxy) and that its certificate is valid.",
  },
  MTA_STS_DNS_FAILED: {
    outcome: "defer",
    meaning: "The _mta-sts TXT lookup failed (not an empty answer: a DNS error).",
    fix: "Check the resolver in the MailRelay's dns.servers and the partner's DNS.",
  },
  // ---- DANE ----
  DANE_REQUIRED: {
    outcome: "defer",
    meaning:
      "Mode dane, but the MX (or nextHop address) RRset is not DNSSEC-validated, so DANE cannot apply.",
    fix: "Use a validating resolver in the MailRelay's dns.servers; if the partner's zone is unsigned, dane is the wrong mode for it.",
  },
  DANE_TLSA_MISMATCH: {
    outcome: "defer",
    meaning: "No TLSA record matches the certificate chain the server presented.",
    fix: "The partner rotated its certificate without updating TLSA records (or the connection is intercepted); tell the partner.",
  },
  DKIM_KEY_UNAVAILABLE: {
    outcome: "defer",
    meaning:
      "The sender's domain is signed with DKIM (MailRelay spec.dkim), but its key is not mounted: the mail waits instead of leaving unsigned.",
    fix: "See the MailRelay's Accepted condition: create the RelayCredential of type dkim and its Secret key.",
  },
  DKIM_KEY_INVALID: {
    outcome: "defer",
    meaning:
      "The DKIM private key of the sender's domain does not load (not a PEM RSA private key): the mail waits instead of leaving unsigned.",
    fix: "Put the PEM private key (openssl genpkey -algorithm RSA) into the Secret key the dkim RelayCredential names.",
  },
  DKIM_SIGN_FAILED: {
    outcome: "defer",
    meaning: "Signing the message with DKIM failed; it waits instead of leaving unsigned.",
    fix: "The message says why.",
  },
  DANE_DNSSEC_INVALID: {
    outcome: "defer",
    meaning: "The validating resolver answered SERVFAIL: the DNSSEC signatures of the zone do not validate.",
    fix: "Check the partner's zone with a DNSSEC debugger; mail waits until it validates again.",
  },
  DANE_DNS_FAILED: {
    outcome: "defer",
    meaning: "A DNS lookup DANE needs (MX, address or TLSA) failed.",
    fix: "Check the resolver in dns.servers and the partner's DNS.",
  },
  // ---- routing and DNS ----
  DNS_FAILED: {
    outcome: "defer",
    meaning: "The MX lookup for the recipient domain failed.",
    fix: "Check the resolver (dns.servers, or the pod's resolv.conf) and the domain's DNS.",
  },
  DOMAIN_NOT_FOUND: {
    outcome: "bounce",
    meaning: "The recipient domain does not exist (NXDOMAIN).",
    fix: "A typo in the address; nothing to fix on the relay.",
  },
  NULL_MX: {
    outcome: "bounce",
    meaning: "The domain publishes a null MX (RFC 7505): it accepts no mail.",
    fix: "Nothing to fix on the relay; the address does not receive mail.",
  },
  MX_UNRESOLVABLE: {
    outcome: "defer",
    meaning: "None of the domain's mail exchangers has an address.",
    fix: "Check the partner's DNS (the MX names' A/AAAA records).",
  },
  MX_ADDRESS_FORBIDDEN: {
    outcome: "defer",
    meaning:
      "The mail exchangers resolve only to addresses the relay does not connect to (private, loopback, link-local, the cluster's networks).",
    fix: "For a real internal next hop, allow it with the MailRelay's delivery.allowedInternalCidrs; otherwise DNS points somewhere it must not.",
  },
  NEXT_HOP_UNRESOLVABLE: {
    outcome: "defer",
    meaning: "The policy's nextHop host has no address.",
    fix: "Fix outbound.nextHop.host in the MailDomainPolicy, or the name's DNS.",
  },
  NO_NEXT_HOP: {
    outcome: "defer",
    meaning: "No next hop was left to try for this attempt.",
    fix: "Look at the other codes logged for the same attempt; usually every host was refused by the policy.",
  },
  MAIL_LOOPS: {
    outcome: "bounce",
    meaning:
      "The first next hop is the relay itself (an MX or nextHop pointing back at it): mail would loop.",
    fix: "Fix the MX records or the policy's nextHop; for a local domain, route it to the internal server.",
  },
  INVALID_DOMAIN: {
    outcome: "bounce",
    meaning: "The recipient domain has no valid IDNA (A-label) form.",
    fix: "A malformed address; nothing to fix on the relay.",
  },
  POLICY_PROBLEM: {
    outcome: "defer",
    meaning:
      "The MailDomainPolicy that owns the recipient domain is not accepted (domain conflict, missing or wrong reference): the relay holds its mail rather than sending it under another policy.",
    fix: "`kubectl describe maildomainpolicy <name>`: the Accepted condition's message says what to fix.",
  },
  // ---- the connection and the partner's replies ----
  CONNECT_FAILED: {
    outcome: "defer",
    meaning: "The TCP connection to the next hop failed or was closed before the SMTP greeting.",
    fix: "Check egress from the relay pods (NetworkPolicy, firewall, port 25 blocked by the provider) and whether the partner's server is up.",
  },
  CONNECT_REJECTED: {
    outcome: "defer",
    meaning: "The server answered the greeting or EHLO with an error.",
    fix: "Read the reply text (`sealpost queue show`); often a blocklist or rate limit on the partner's side.",
  },
  CONNECTION_LOST: {
    outcome: "defer",
    meaning: "The connection broke during the transaction.",
    fix: "Usually transient; persistent ones point to a middlebox or a server crashing on the message.",
  },
  TEMPORARY_REJECT: {
    outcome: "defer",
    meaning:
      "The server answered with a 4xx reply (greylisting, rate limit, mailbox temporarily unavailable).",
    fix: "Nothing to do unless it persists; the reply text says why.",
  },
  REJECTED: {
    outcome: "bounce",
    meaning: "The server rejected the recipient or the message with a 5xx reply.",
    fix: "The reply text (in the DSN and `sealpost queue show`) says why: unknown user, policy, content.",
  },
  ATTEMPT_TIMEOUT: {
    outcome: "defer",
    meaning:
      "The delivery attempt passed its deadline (the MailRelay's delivery.attemptTimeout, default 10m).",
    fix: "A slow or tarpitting server; raise the deadline only if the partner is known to be slow.",
  },
  // ---- SMTP AUTH ----
  AUTH_REQUIRES_TLS: {
    outcome: "defer",
    meaning:
      "The policy has an AUTH credential but the session is not encrypted: a password is never sent in clear.",
    fix: "Use a TLS mode that always encrypts and verifies (verify, mta-sts, dane) for a policy with auth.",
  },
  AUTH_PEER_UNAUTHENTICATED: {
    outcome: "defer",
    meaning:
      "The policy has an AUTH credential, but the peer's certificate was not verified: the password only goes to a verified peer.",
    fix: "Use mode verify (with the server's CA) for this partner; auth.allowUnauthenticatedPeer accepts the risk of sending the password to whoever answers.",
  },
  AUTH_NOT_OFFERED: {
    outcome: "defer",
    meaning: "The server does not offer AUTH, and the policy requires logging in.",
    fix: "Check the nextHop's port (587 for submission) and that the server offers AUTH after STARTTLS.",
  },
  AUTH_FAILED: {
    outcome: "defer",
    meaning: "The server refused the username or password.",
    fix: "Check the RelayCredential's username and the password in its Secret.",
  },
  CREDENTIAL_INVALID: {
    outcome: "defer",
    meaning:
      "A credential the policy uses is unusable: a client certificate (presented in TLS, or signing S/MIME) whose certificate or key is not PEM, or whose key is not the certificate's; a password that is empty, more than one line, not UTF-8 text (raw random bytes, which cannot be compared), or an example's REPLACE-ME placeholder. Only the policies using it wait; the rest of the configuration is enforced.",
    fix: "Put a PEM certificate and its private key (tls.crt, tls.key), or a password of one line of printable text (base64 of random bytes, for one), in the RelayCredential's Secret; the relay retries once the pods see the new files.",
  },
  CREDENTIAL_MISSING: {
    outcome: "defer",
    meaning:
      "A credential the policy uses (password, client certificate, S/MIME signing certificate) is not in the relay's mounted configuration.",
    fix: "Check the RelayCredential's Accepted condition and its Secret; the operator mounts it once it is accepted.",
  },
  // ---- S/MIME ----
  SMIME_NO_CERTIFICATE: {
    outcome: "defer",
    meaning:
      "The policy encrypts with S/MIME and the recipient has no certificate (missingCertificate: defer; with bounce, the recipient bounces).",
    fix: "Add the recipient's certificate to the policy's recipientCertificates, or change missingCertificate.",
  },
  SMIME_CERT_INVALID: {
    outcome: "bounce",
    meaning: "A recipient certificate does not parse.",
    fix: "Replace the certificate in the recipientCertificates Secret or ConfigMap (PEM).",
  },
  SMIME_ENCRYPT_FAILED: {
    outcome: "defer",
    meaning: "S/MIME encryption failed for the message.",
    fix: "The message says why; check the recipient certificate's key type and usage.",
  },
  SMIME_SIGN_FAILED: {
    outcome: "defer",
    meaning: "Signing the message failed.",
    fix: "The message says why; check the relay's signing certificate and key.",
  },
  SMIME_SIGNER_INVALID: {
    outcome: "defer",
    meaning:
      "The relay's signing certificate or key is unusable (empty, unsupported key type, key and certificate do not match).",
    fix: "Fix the signing credential's Secret.",
  },
  SMIME_SIGNER_MISSING: {
    outcome: "defer",
    meaning: "The policy signs, but no signing certificate is loaded.",
    fix: "Check the signing credential and its Accepted condition.",
  },
  SMIME_UNAVAILABLE: {
    outcome: "defer",
    meaning: "The policy asks for S/MIME, but the relay's configuration has no S/MIME section for it.",
    fix: "The operator and the relay disagree (a version skew during an upgrade); it clears when the pods run the same version.",
  },
  TOO_LARGE_FOR_MEMORY: {
    outcome: "defer",
    meaning:
      "Encrypting (S/MIME, OpenPGP) or DKIM-signing the message would hold more than half of the relay pod's memory (many times the message's size), so the attempt is not started; nothing is sent in clear.",
    fix: "Raise the MailRelay's spec.resources.limits.memory (the reply says how much the message needs), or lower spec.inbound.maxMessageSize so such messages are refused when they are sent.",
  },
  // ---- OpenPGP ----
  OPENPGP_NO_KEY: {
    outcome: "defer",
    meaning:
      "The policy encrypts with OpenPGP and the recipient has no usable key in the keyrings nor in its domain's Web Key Directory (missingKey: defer; with bounce, the recipient bounces).",
    fix: "Add the recipient's public key to the policy's recipientKeys, have the partner publish it by WKD, or change missingKey.",
  },
  OPENPGP_KEY_LOOKUP_FAILED: {
    outcome: "defer",
    meaning:
      "The recipient's Web Key Directory lookup failed or its answer was refused (unreachable, certificate not valid, a redirect off https or off the domain, an internal address, an oversized answer, a key for another address). Deferred whatever missingKey says, so a broken lookup never sends clear text.",
    fix: "The message says which URL and why; it clears when the partner's WKD answers correctly, or add the key to recipientKeys.",
  },
  OPENPGP_ENCRYPT_FAILED: {
    outcome: "defer",
    meaning: "OpenPGP encryption failed for the message.",
    fix: "The message says why; check the recipient key.",
  },
  OPENPGP_SIGNER_INVALID: {
    outcome: "defer",
    meaning:
      "The relay's OpenPGP signing key is unusable (does not parse, protected by a passphrase, no signing-capable key).",
    fix: "Store an unprotected OpenPGP secret key with a signing (sub)key in the Secret signingKeyRef names.",
  },
  OPENPGP_SIGNER_MISSING: {
    outcome: "defer",
    meaning: "The policy signs OpenPGP mail, but no signing key is loaded.",
    fix: "Check the policy's signingKeyRef and its Accepted condition.",
  },
  OPENPGP_UNAVAILABLE: {
    outcome: "defer",
    meaning: "The policy asks for OpenPGP, but the relay's configuration has no OpenPGP section for it.",
    fix: "The operator and the relay disagree (a version skew during an upgrade); it clears when the pods run the same version.",
  },
  // ---- the queue ----
  EXPIRED: {
    outcome: "bounce",
    meaning:
      "The message stayed in the queue longer than the MailRelay's queue.maxAge; the DSN carries the last error.",
    fix: "Look at the last error in the DSN; raise queue.maxAge only if partners are known to be away for long.",
  },
  ADMIN_BOUNCE: {
    outcome: "bounce",
    meaning:
      "An administrator gave up on the message with `sealpost queue delete <id>`, which bounces it to the sender.",
    fix: "Nothing; the relay's log has the admin request.",
  },
  MESSAGE_UNREADABLE: {
    outcome: "defer",
    meaning: "The message file in the spool could not be read.",
    fix: "Check the queue volume (disk errors, a restore that copied the journal without the spool).",
  },
  DELIVERY_ERROR: {
    outcome: "defer",
    meaning:
      "A delivery step failed in a way it does not report as a result (an error thrown by the relay's own code or a library it calls); its recipients are deferred like any other, retried (a duplicate if the step had already handed the message over, never a loss), and bounced at queue.maxAge if it keeps failing.",
    fix: "A bug: the relay's log has the error (a queue-error line with this code and the queue id); report it with that line.",
  },
  // ---- accepting mail ----
  MESSAGE_REFUSED: {
    outcome: "refuse",
    meaning:
      "The relay's checks refused the message once its data was read (a 5xx to the client, e.g. a handover header from outside the fleet); nothing was queued.",
    fix: "The relay's log line for the message (handover-refused) says which check refused it.",
  },
  MESSAGE_TOO_BIG: {
    outcome: "refuse",
    meaning: "The message exceeds the relay's size limit (552 to the client).",
    fix: "Raise the MailRelay's inbound.maxMessageSize (default 50Mi) or send smaller messages.",
  },
  QUEUE_RESERVE: {
    outcome: "refuse",
    meaning:
      "The message would have taken the queue volume's reserve (spec.queue.minFree), which is kept for the mail already queued (452 4.3.1 to the client, which retries); nothing was queued.",
    fix: "Let the queue drain (the relay's log line queue-reserve says when the volume went short), or give the MailRelay a larger spec.queue.size.",
  },
  QUEUE_WRITE_FAILED: {
    outcome: "refuse",
    meaning: "The relay could not write the message to its queue volume (451 to the client, which retries).",
    fix: "Check the queue volume: full, read-only, or failing.",
  },
  // ---- delivered ----
  DELIVERED: {
    outcome: "delivered",
    meaning: "The server accepted the recipient.",
    fix: "Nothing.",
  },
  // ---- configuration reloads ----
  CONFIG_UNREADABLE: {
    outcome: "config",
    meaning: "The relay could not read its configuration file.",
    fix: "Check the ConfigMap mount; the relay keeps running with the previous configuration.",
  },
  CONFIG_INVALID: {
    outcome: "config",
    meaning: "The configuration does not parse or is inconsistent.",
    fix: "The operator and the relay are of different versions, or the ConfigMap was edited by hand; the message names the field.",
  },
  CONFIG_FILES_MISSING: {
    outcome: "config",
    meaning: "Files the configuration names (certificates, credentials) are not mounted yet.",
    fix: "Usually transient while Secrets propagate; persistent: check the Secrets the operator reports in the MailRelay's status.",
  },
  BAD_CIDR: {
    outcome: "config",
    meaning: "A CIDR range in the configuration is invalid.",
    fix: "Fix the range in the MailRelay or MailDomainPolicy (the API rejects most; this catches a hand-edited ConfigMap).",
  },
  BAD_SELECTION: {
    outcome: "refuse",
    meaning:
      "A bulk queue command (sealpost queue hold|release|requeue|delete|bounce|flush) named no selection or an unreadable --older-than; no message was touched.",
    fix: "Give --domain, --reason, --older-than (90s, 30m, 2h, 3d) or --all (sealpost queue --help).",
  },
} as const satisfies Record<ReasonCode, ReasonCodeDoc>;
