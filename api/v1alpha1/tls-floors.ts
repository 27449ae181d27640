// What each outbound TLS mode guarantees whatever DNS, the partner or an attacker on the path says:
// its floor, written once. The relay's policy engine (relay/outbound/tls-policy.ts) never resolves a
// next hop to a level below its mode's floor (a property test checks that for every mode and hop
// situation), and the API's TlsMode description (kubectl explain) is built from the same text.
//
// Resolved levels, weakest first (Postfix's smtp_tls_security_level names):
//   none     no TLS
//   may      STARTTLS when offered, unauthenticated; clear text when not offered
//   encrypt  TLS or no delivery, peer not authenticated
//   verify   TLS with a certificate chain to a trusted CA and a matching name, or no delivery
//   dane     TLS with a chain matching the host's DNSSEC-signed TLSA records, or no delivery
//   fingerprint  TLS with a leaf key among the policy's pins (Postfix `fingerprint`), no CA needed
// verify, dane and fingerprint authenticate the peer: same strength, different trust anchors.

export const TLS_LEVELS = ["none", "may", "encrypt", "verify", "dane", "fingerprint"] as const;
export type TlsLevel = (typeof TLS_LEVELS)[number];

/** Strength order of the levels (verify and dane both authenticate the peer). */
export const LEVEL_STRENGTH: Readonly<Record<TlsLevel, number>> = {
  none: 0,
  may: 1,
  encrypt: 2,
  verify: 3,
  dane: 3,
  fingerprint: 3,
};

/** The levels that authenticate the peer: the only ones a password is sent to by default. */
export function authenticates(level: TlsLevel): boolean {
  return LEVEL_STRENGTH[level] >= LEVEL_STRENGTH.verify;
}

export interface ModeFloor {
  /** The weakest level a next hop under this mode is ever resolved to (else: no delivery). */
  floor: TlsLevel;
  /** Whether the mode can authenticate the peer (verify or dane): always, when the partner publishes it, never. */
  authenticatesPeer: "always" | "when-published" | "never";
  /** The guarantee in plain words, including where an RFC falls back to opportunistic TLS. */
  text: string;
}

/** Each mode's floor, keyed by the API's TLS mode names. */
export const MODE_FLOORS = {
  none: {
    authenticatesPeer: "never",
    floor: "none",
    text: "never STARTTLS, always clear text (only for peers that break on TLS).",
  },
  opportunistic: {
    authenticatesPeer: "never",
    floor: "may",
    text: "STARTTLS when offered, certificate not checked; clear text when the server does not offer it (or an attacker strips it). The Internet default.",
  },
  required: {
    authenticatesPeer: "never",
    floor: "encrypt",
    text: "STARTTLS or no delivery; the certificate is not checked, so an active attacker can still read the mail.",
  },
  verify: {
    authenticatesPeer: "always",
    floor: "verify",
    text: "STARTTLS with a certificate that chains to caBundle (or to public CAs, with trustSystemRoots) and carries one of matchNames, or no delivery. Without matchNames: the nextHop host when one is set, else the recipient domain or one of its subdomains (an MX name from DNS that is not DNSSEC-validated is never trusted as the name).",
  },
  "mta-sts": {
    authenticatesPeer: "when-published",
    floor: "may",
    text: "with an enforce policy (fetched, or still cached when a refetch fails, RFC 8461 section 5.1): only the policy's mx hosts, over TLS verified against public CAs, or no delivery. Without one (nothing published, policy mode testing or none, or a fetch failed and no enforce policy is cached) RFC 8461's fallback applies: opportunistic TLS, clear text when STARTTLS is not offered. Never applied to the internal next hop of a local domain.",
  },
  dane: {
    authenticatesPeer: "when-published",
    floor: "may",
    text: "the MX RRset (or nextHop's address) must be DNSSEC-validated, else no delivery (needs a validating resolver, MailRelay dns.servers). Per MX host: usable TLSA records -> the certificate must match them; a signed TLSA RRset without usable records -> TLS required, unauthenticated; a lookup failure skips the host. A host whose signed DNS says it has no TLSA records, or whose address or TLSA RRset is unsigned, gets RFC 7672's fallback: opportunistic TLS, clear text when STARTTLS is not offered.",
  },
  pinned: {
    authenticatesPeer: "always",
    floor: "fingerprint",
    text: "STARTTLS with a certificate whose public key (SPKI SHA-256) is one of pins, or no delivery; no CA or name is checked: the pin authenticates the partner (Postfix fingerprint). List the next key too (a backup pin), so that a planned key rotation does not defer mail.",
  },
} as const satisfies Record<string, ModeFloor>;

export type FlooredMode = keyof typeof MODE_FLOORS;

/** How far a mode authenticates the peer, weakest first. */
const AUTH_RANK: Readonly<Record<ModeFloor["authenticatesPeer"], number>> = {
  never: 0,
  "when-published": 1,
  always: 2,
};

/**
 * Whether mode `a` guarantees less than mode `b` in some situation: a lower floor, or the peer
 * authenticated in fewer cases (opportunistic, never; mta-sts, when the domain publishes a policy;
 * verify, always). Modes that trade one for the other (required against mta-sts) are weaker both
 * ways. Pure.
 */
export function weakerMode(a: FlooredMode, b: FlooredMode): boolean {
  const fa = MODE_FLOORS[a];
  const fb = MODE_FLOORS[b];
  return (
    LEVEL_STRENGTH[fa.floor] < LEVEL_STRENGTH[fb.floor] ||
    AUTH_RANK[fa.authenticatesPeer] < AUTH_RANK[fb.authenticatesPeer]
  );
}

/** "- mode: text" lines for the API description (kubectl explain). */
export function floorDescriptions(): string[] {
  return Object.entries(MODE_FLOORS).map(([m, f]) => `- ${m} (floor ${f.floor}): ${f.text}`);
}

/** The modes that can authenticate the peer (always or when the partner publishes a policy). */
export const AUTHENTICATING_MODES = Object.entries(MODE_FLOORS)
  .filter(([, f]) => f.authenticatesPeer !== "never")
  .map(([m]) => m as FlooredMode);
