// The cipher suites of an outbound session whose TLS is mandatory (level encrypt, verify, dane, or
// pinned keys: a policy that defers rather than send in clear): TLS 1.3's suites and TLS 1.2's AEAD
// suites with forward secrecy (ECDHE or DHE with AES-GCM or ChaCha20-Poly1305; DHE groups of 2048
// bits at least: MIN_DH_BITS), about Postfix's smtp_tls_mandatory_ciphers = high without its CBC
// suites. (DHE was left out at first, and a partner speaking only DHE-RSA-AES256-GCM was deferred:
// the review of this list, round 7.) Node's default list, through its
// "HIGH", also holds CBC suites with HMAC-SHA1/SHA-2 and plain RSA key transport (no forward
// secrecy): a partner under mode verify was delivered over AES128-SHA (crypto review, round 7), while
// the Postfix import told migrants such suites were left out. A partner that speaks nothing stronger
// is deferred (a handshake failure), never sent in clear. Opportunistic sessions keep Node's default
// list, as Postfix's smtp_tls_ciphers is broader than its mandatory list: there a weaker suite is
// still better than clear text. Pure data.
export const MANDATORY_CIPHERS = [
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "TLS_AES_128_GCM_SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "DHE-RSA-AES256-GCM-SHA384",
  "DHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256",
].join(":");

/** The smallest DHE group a mandatory session accepts (Node's own floor is 1024 bits). */
export const MIN_DH_BITS = 2048;

const MANDATORY = new Set(MANDATORY_CIPHERS.split(":"));

/**
 * Whether a negotiated suite (its OpenSSL name, as TLSSocket#getCipher().name gives it) is one a
 * mandatory session would offer: what the shadow mode and `sealpost check` judge a session by.
 */
export function isMandatorySuite(name: string | undefined): boolean {
  return name !== undefined && MANDATORY.has(name);
}
