// The relay's whole configuration: the contract between the operator (which compiles MailRelay,
// MailDomainPolicy and RelayCredential objects into it, see operator/compile/) and the relay (which
// loads it from its config directory and enforces it). Secrets never appear here, only the paths of
// the files that hold them, relative to the config directory: the operator mounts the referenced
// Secrets there as projected volumes, and the relay reads them when it loads the config.
//
// Layout of the config directory (as kubelet writes it; the tests and the demo write it the same way):
//   <dir>/config.json                        this document (from the relay's ConfigMap)
//   <dir>/tls/tls.crt, tls.key               the server certificate (cert-manager Secret)
//   <dir>/secrets/<secret>/<key>             passwords, client keys, CA bundles, S/MIME certificates
import { z } from "zod";
import { canonicalPattern, DIGEST_LENGTH } from "./domains.js";
import { OwnDomains } from "./own-domains.js";
import { DkimSigning } from "./dkim-config.js";
import { parseDnsServer } from "./dns-server.js";

/** Postfix's default_destination_concurrency_limit: deliveries in flight to one destination. */
export const DEFAULT_DESTINATION_CONCURRENCY = 20;
/** The share of a retry delay drawn at random (relay/queue/backoff.ts): 10,000 deferrals never come due at once. */
export const DEFAULT_RETRY_JITTER = 0.25;

export const CONFIG_FILE = "config.json";
/**
 * The contract's version, raised with every change an older relay would misread. The relay reads
 * every version up to its own (an older operator's config: what it lacks defaults to the strict
 * side) and refuses a newer one, as it refuses a field it does not know (every object here is
 * strict): a relay one release behind its operator (a rolling upgrade, a MailRelay's spec.image)
 * keeps its last good config rather than drop a security field it cannot read. 2: the first
 * version written for strict relays; relays reading only 1 stripped unknown fields.
 */
export const CONFIG_VERSION = 2;

/** A file inside the config directory, relative to it (no absolute paths, no `..`). */
export const ConfigPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
    message: "must be a path relative to the config directory, without '..'",
  });

/** What a client must do before it may send (inbound). */
export const REQUIREMENTS = ["none", "tls", "auth", "tls+auth"] as const;
export const Requirement = z.enum(REQUIREMENTS);
export type Requirement = z.infer<typeof Requirement>;

/** How outbound TLS is decided (relay/outbound/tls-policy.ts); the API offers exactly these. */
export const TLS_MODES = [
  "none",
  "opportunistic",
  "required",
  "verify",
  "mta-sts",
  "dane",
  "pinned",
] as const;
export const TlsMode = z.enum(TLS_MODES);
export type TlsMode = z.infer<typeof TlsMode>;

export const TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;
export const TlsVersion = z.enum(TLS_VERSIONS);
export type TlsVersion = z.infer<typeof TlsVersion>;

/** IPv4 or IPv6 CIDR, e.g. 203.0.113.0/24 or 2001:db8::/32; a bare address means a single host. */
export const Cidr = z.string().min(2);

/**
 * An exact domain (partner.example) or a wildcard for its subdomains (*.partner.example), in the
 * canonical form the relay compares (relay/contract/domains.ts: A-labels, lower case, no trailing dot).
 */
export const DomainPattern = z
  .string()
  .regex(
    /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/,
    "a domain name or *.domain",
  )
  .refine((p) => canonicalPattern(p) === p, {
    message: "must be in canonical form: IDNA A-labels (xn--...), lower case, no trailing dot",
  });

/**
 * The longest wait node's timers take (2^31 - 1 ms, about 24.8 days), in seconds: a longer one fires
 * at once (TimeoutOverflowWarning), so an attempt deadline of 600 hours timed every delivery out.
 */
export const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
/** The shortest retry wait a config may set (queue.retry), in seconds. */
export const MIN_RETRY_SECONDS = 0.1;
/** A timeout in seconds that a timer can wait for. */
const timerSeconds = z.number().positive().max(MAX_TIMER_SECONDS);

export const HostPort = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(25),
});
export type HostPort = z.infer<typeof HostPort>;

export const Listener = z.strictObject({
  enabled: z.boolean().default(true),
  port: z.number().int().min(1).max(65535),
  /** Address to bind; tests use 127.0.0.1. */
  host: z.string().default("0.0.0.0"),
  /** PROXY protocol v1/v2 from a load balancer: only from trustedCidrs, and then required. */
  proxyProtocol: z
    .object({ enabled: z.boolean().default(false), trustedCidrs: z.array(Cidr).default([]) })
    .optional(),
});

export const PasswordCredential = z.strictObject({
  type: z.literal("password"),
  usage: z.enum(["outbound", "inbound"]),
  username: z.string().min(1),
  passwordFile: ConfigPath,
  /**
   * Inbound only (relay/inbound/authority.ts): logged in with it, the client may send to any domain;
   * absent/false: to localDomains only.
   */
  allowRelay: z.boolean().optional(),
  /**
   * Inbound only: the domains a client logged in with it may use in MAIL FROM (553 5.7.1 otherwise);
   * absent: the domains of the policies whose host rules name it, or else localDomains.
   */
  senderDomains: z.array(DomainPattern).optional(),
});

export const ClientCertificateCredential = z.strictObject({
  type: z.literal("clientCertificate"),
  usage: z.enum(["outbound", "inbound"]),
  certFile: ConfigPath,
  keyFile: ConfigPath,
});

export const Credential = z.discriminatedUnion("type", [PasswordCredential, ClientCertificateCredential]);
export type Credential = z.infer<typeof Credential>;

/**
 * A public-key pin: the SHA-256 of the certificate's SubjectPublicKeyInfo (DER), base64, as RFC 7469's
 * pin-sha256 (`openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`).
 */
export const SPKI_PIN_PATTERN = "^[A-Za-z0-9+/]{43}=$";
export const SpkiPin = z
  .string()
  .regex(new RegExp(SPKI_PIN_PATTERN), "an SPKI SHA-256 pin: 44 characters of base64");

/**
 * A stricter TLS policy evaluated on every session beside the enforced one (shadow mode,
 * relay/outbound/tls-audit.ts): never enforced, only counted and logged as "would have deferred".
 */
export const AuditTls = z.strictObject({
  mode: TlsMode,
  minVersion: TlsVersion.default("TLSv1.2"),
  /** PEM bundle the audited verify mode checks the chain against; absent: the system roots. */
  caFile: ConfigPath.optional(),
  matchNames: z.array(z.string().min(1)).optional(),
  pins: z.array(SpkiPin).min(1).max(16).optional(),
});
export type AuditTls = z.infer<typeof AuditTls>;

/**
 * The modes an exception may relax a policy to: those that need no lookup of their own (the route's
 * lookups are the policy's), never `none` (clear text only via opportunistic, when STARTTLS is not offered).
 */
export const EXCEPTION_MODES = ["opportunistic", "required", "verify"] as const;

/**
 * A time-limited relaxation of one policy (MailDomainPolicy spec.exceptions): for `domain` (and only
 * `host`, when set) between `from` and `until` (RFC 3339). The relay applies it only while its own
 * clock is in [from, until) (relay/outbound/tls-exception.ts), so it ends without the operator.
 */
export const TlsException = z.strictObject({
  name: z.string().min(1),
  domain: z.string().min(1),
  host: z.string().min(1).optional(),
  mode: z.enum(EXCEPTION_MODES).optional(),
  minVersion: TlsVersion.optional(),
  skipPins: z.literal(true).optional(),
  from: z.string().min(1),
  until: z.string().min(1),
});
export type TlsException = z.infer<typeof TlsException>;

export const OutboundTls = z.strictObject({
  mode: TlsMode,
  minVersion: TlsVersion.default("TLSv1.2"),
  /** PEM bundle to verify the peer against; absent: the system roots (only under verify/mta-sts). */
  caFile: ConfigPath.optional(),
  /** Names the peer certificate must carry (verify); absent: the next hop's host name. */
  matchNames: z.array(z.string().min(1)).optional(),
  /** Name of a clientCertificate credential (usage outbound) to present. */
  clientCredential: z.string().optional(),
  /**
   * The partner's public keys (SPKI SHA-256): the leaf's key must be one of them, on top of the mode
   * (mode pinned: the pin alone authenticates, Postfix `fingerprint`). Else the host is refused.
   */
  pins: z.array(SpkiPin).min(1).max(16).optional(),
  /** Shadow mode: a stricter policy evaluated beside this one, never enforced. */
  audit: AuditTls.optional(),
  /** Time-limited relaxations (tls-exception.ts); the relay checks their window itself. */
  exceptions: z.array(TlsException).max(16).optional(),
});
export type OutboundTls = z.infer<typeof OutboundTls>;

export const SmimeEncryption = z.strictObject({
  /** Files holding recipient certificates (PEM, one or several), matched by their email SAN. */
  certificateFiles: z.array(ConfigPath).min(1),
  /** What to do with a recipient that has no certificate. */
  missingCertificate: z.enum(["defer", "bounce", "sendClear"]).default("defer"),
  sign: z.boolean().default(false),
  /**
   * Name of an outbound clientCertificate credential whose certificate and key sign (an S/MIME
   * certificate: emailProtection); absent: the relay's server certificate (tls.certFile/keyFile).
   */
  signingCredential: z.string().optional(),
  /**
   * Content encryption: aes-256-cbc (CMS EnvelopedData, what every S/MIME client decrypts) or
   * aes-256-gcm (AuthEnvelopedData, RFC 5083/5084: authenticated, RFC 8551's MUST for receivers).
   */
  contentEncryption: z.enum(["aes-256-cbc", "aes-256-gcm"]).default("aes-256-cbc"),
});

/**
 * TLS modes an alternate next hop (fallback route) may have: those whose floor authenticates the peer
 * (dane's is opportunistic for a host without TLSA records, so it is not one of them).
 */
export const FALLBACK_ROUTE_MODES = ["verify", "pinned"] as const;

/**
 * What a policy does when its TLS requirement cannot be met on any of the partner's hops
 * (relay/outbound/fallback.ts decides; tls-policy.ts resolves the fallback session's level):
 * defer (absent: the same), smime (encrypt the message to the recipients' certificates and send it
 * over the TLS `session` allows: required, or opportunistic only when the policy says so), route (an
 * alternate next hop under its own TLS requirement, one that authenticates the peer).
 */
export const TlsFallback = z.discriminatedUnion("action", [
  z.strictObject({ action: z.literal("defer") }),
  z.strictObject({
    action: z.literal("smime"),
    /** The fallback session's TLS mode: required (TLS, peer not authenticated) or, explicitly, opportunistic. */
    session: z.enum(["required", "opportunistic"]).default("required"),
    smime: z.strictObject({
      certificateFiles: z.array(ConfigPath).min(1),
      sign: z.boolean().default(false),
      signingCredential: z.string().optional(),
      contentEncryption: z.enum(["aes-256-cbc", "aes-256-gcm"]).default("aes-256-cbc"),
    }),
  }),
  z.strictObject({
    action: z.literal("route"),
    nextHop: HostPort,
    tls: z
      .object({
        mode: z.enum(FALLBACK_ROUTE_MODES),
        minVersion: TlsVersion.default("TLSv1.2"),
        caFile: ConfigPath.optional(),
        matchNames: z.array(z.string().min(1)).optional(),
        pins: z.array(SpkiPin).min(1).max(16).optional(),
      })
      .refine((t) => t.mode !== "pinned" || t.pins !== undefined, {
        message: "mode pinned needs pins",
        path: ["pins"],
      }),
  }),
]);
export type TlsFallback = z.infer<typeof TlsFallback>;
/** OpenPGP gateway encryption (PGP/MIME, RFC 3156; relay/outbound/openpgp.ts). */
export const OpenpgpEncryption = z
  .object({
    /** Keyring files (armored or binary public keys), matched by the user IDs' addresses. */
    keyringFiles: z.array(ConfigPath).default([]),
    /** Look keys the keyrings lack up in the recipient domain's Web Key Directory (wkd.ts). */
    webKeyDirectory: z.boolean().default(false),
    /** What to do with a recipient that has no key (a failed WKD lookup always defers). */
    missingKey: z.enum(["defer", "bounce", "sendClear"]).default("defer"),
    /** File holding the relay's OpenPGP secret key (no passphrase); present: sign inside the encryption. */
    signingKeyFile: ConfigPath.optional(),
  })
  .refine((o) => o.keyringFiles.length > 0 || o.webKeyDirectory, {
    message: "openpgp needs keyringFiles or webKeyDirectory",
  });

export const Outbound = z.strictObject({
  tls: OutboundTls,
  /** Name of a password credential (usage outbound); only ever used inside TLS. */
  authCredential: z.string().optional(),
  /**
   * Send the password also to an encrypted peer the resolved TLS level does not authenticate
   * (encrypt, may): an active attacker can collect it. Absent/false: only verify or dane peers.
   */
  authUnauthenticatedPeer: z.boolean().optional(),
  /** Explicit next hop; absent: MX lookup of the recipient domain. */
  nextHop: HostPort.optional(),
  smime: SmimeEncryption.optional(),
  /** When the TLS requirement cannot be met on any hop (TlsFallback); absent: defer. */
  tlsFallback: TlsFallback.optional(),
  openpgp: OpenpgpEncryption.optional(),
});
export type Outbound = z.infer<typeof Outbound>;

export const InboundRule = z.strictObject({
  /** The partner's sending hosts. */
  hosts: z.array(Cidr).min(1),
  require: Requirement,
  /** Names of inbound credentials these hosts may log in with; absent: any inbound credential. */
  credentials: z.array(z.string()).optional(),
});

export const Policy = z.strictObject({
  /** namespace/name of the MailDomainPolicy, for logs, metrics and status. */
  name: z.string().min(1),
  domains: z.array(DomainPattern).min(1),
  outbound: Outbound,
  inbound: InboundRule.optional(),
});
export type Policy = z.infer<typeof Policy>;

/**
 * The domains of a MailDomainPolicy the operator could not compile (a missing or wrong reference, a
 * spec it refuses, a conflict it lost on some other domain): mail to them is deferred (4xx) with
 * `reason` until the policy is fixed, never sent under a weaker policy or the default. "*" is a broken
 * catch-all: every domain no policy matches defers (local domains excepted).
 */
export const DeferredPolicy = z
  .strictObject({
    /** namespace/name of the MailDomainPolicy. */
    name: z.string().min(1),
    domains: z.array(z.union([DomainPattern, z.literal("*")])).default([]),
    /**
     * Patterns deferred by digest (domains.ts domainDigest), not by name: those of a policy left out
     * because the config would not fit with it (ConfigTooLarge), which must take little room.
     */
    domainDigests: z
      .array(z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${DIGEST_LENGTH}}$`)))
      .min(1)
      .optional(),
    /** Why, as the policy's Accepted condition says it. */
    reason: z.string().min(1),
    /**
     * Its host rule while it is left out, for a problem or the config's size (hosts and requirement,
     * no credentials: its login is out with it): its partner's hosts must still meet it
     * (relay/inbound/rules.ts), never fall to the relay's default requirement (session 13's review).
     */
    inbound: InboundRule.omit({ credentials: true }).optional(),
  })
  .refine((p) => p.domains.length > 0 || p.domainDigests !== undefined, {
    message: "a deferred policy names at least one domain pattern (domains or domainDigests)",
    path: ["domains"],
  });
export type DeferredPolicy = z.infer<typeof DeferredPolicy>;

export const RelayConfig = z.strictObject({
  version: z
    .number()
    .int()
    .min(1)
    .max(CONFIG_VERSION, {
      message: `written for a newer relay (this one reads versions 1 to ${CONFIG_VERSION}): upgrade the relay's image to the operator's`,
    }),
  /** namespace/name of the MailRelay and the generation the operator compiled. */
  relay: z.string().min(1),
  generation: z.number().int().nonnegative().default(0),
  /** EHLO name and the DNS name of the server certificate. */
  hostname: z.string().min(1),
  /**
   * Addresses that reach this relay from outside the pod (its Service's ClusterIPs, externalIPs and
   * load-balancer ingress IPs, as Postfix's proxy_interfaces): a next hop on one of them is myself
   * (relay/outbound/loop.ts) on the listeners' ports, which the Service exposes under the same numbers.
   */
  selfAddresses: z.array(z.union([z.ipv4(), z.ipv6()])).default([]),
  listeners: z.strictObject({
    /** Port 25: STARTTLS offered. */
    smtp: Listener.default({ enabled: true, port: 25, host: "0.0.0.0" }),
    /** Port 465: implicit TLS (RFC 8314). */
    smtps: Listener.default({ enabled: true, port: 465, host: "0.0.0.0" }),
    /** Port 587: submission, AUTH required. */
    submission: Listener.default({ enabled: true, port: 587, host: "0.0.0.0" }),
  }),
  admin: z
    .object({
      port: z.number().int().min(0).max(65535).default(8080),
      host: z.string().default("0.0.0.0"),
      /**
       * Bearer token for the /queue endpoints and the /status details (read at each request);
       * absent: /queue answers 403 and /status only its public part.
       */
      tokenFile: ConfigPath.optional(),
      /** Names the Host header of an admin request may carry besides IP literals, localhost and hostname. */
      hosts: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  /** Server certificate and key (PEM), reloaded when they change. */
  tls: z.strictObject({ certFile: ConfigPath, keyFile: ConfigPath }),
  /**
   * The fleet's own key (relay/queue/handover.ts): the queue handover's AUTH credential and MAC.
   * Absent: no handover is sent or accepted.
   */
  fleet: z.strictObject({ keyFile: ConfigPath }).optional(),
  inbound: z.strictObject({
    /** Requirement for every connecting host; a policy's host rule can only make it stricter. */
    require: Requirement.default("none"),
    /** Internal senders allowed to relay to any domain. */
    relayFrom: z.array(Cidr).default([]),
    /** Domains accepted from anyone and forwarded to internalNextHop. */
    localDomains: z.array(DomainPattern).default([]),
    internalNextHop: HostPort.optional(),
    /**
     * The recipients that exist in localDomains (relay/inbound/authority.ts): `user@domain` or
     * `@domain` (every address of that domain), from the list and from the files (one per line,
     * `#` comments). Others get 550 5.1.1 at RCPT TO. Absent: every address of a local domain.
     */
    localRecipients: z
      .object({
        addresses: z.array(z.string().min(2)).default([]),
        files: z.array(ConfigPath).default([]),
      })
      .optional(),
    /**
     * The MailRelay is being deleted (the operator's queue finalizer): no new mail. A new session and
     * MAIL FROM get 421 4.3.2, a transaction reaching DATA gets 421 (nothing queued); the queue keeps
     * delivering, and /status says `stopped` once no message is still being received.
     */
    stopped: z.boolean().optional(),
    /** Messages with this many Received: headers or more are refused (554 5.4.6): a mail loop. */
    hopLimit: z.number().int().positive().default(50),
    maxMessageSize: z
      .number()
      .int()
      .positive()
      .default(50 * 1024 * 1024),
    maxRecipients: z.number().int().positive().default(100),
    /** Abuse limits (relay/inbound/limits.ts, throttle.ts); timeouts apply to new listeners only. */
    limits: z
      .object({
        maxConnections: z.number().int().positive().default(500),
        maxConnectionsPerIp: z.number().int().positive().default(20),
        /** No input from the client for this long: 421 and close (RFC 5321 4.5.3.2: >= 5 min). */
        idleTimeoutSeconds: timerSeconds.default(300),
        /** A whole session, however busy: 421 and close. */
        sessionTimeoutSeconds: timerSeconds.default(1800),
        authMaxFailuresPerIp: z.number().int().positive().default(10),
        authMaxFailuresPerAccount: z.number().int().positive().default(5),
        authWindowSeconds: z.number().positive().default(900),
        /**
         * IPv6 clients are counted per network of this prefix length (connections, AUTH failures):
         * one host usually holds a whole /64.
         */
        ipv6PrefixLength: z.number().int().min(1).max(128).default(64),
        /**
         * IPv6 ranges whose clients are counted by their whole address instead: the cluster's own
         * networks, where each pod holds one address (a pod sharing a /64 with the fleet peers would
         * otherwise spend their connections and AUTH failures).
         */
        ipv6ExactClients: z.array(Cidr).max(64).default([]),
        /** Error replies after which a session is closed, 421 4.7.0 (Postfix smtpd_hard_error_limit). */
        hardErrorLimit: z.number().int().positive().default(20),
        /** Commands of any kind after which a session is closed, 421 4.7.0. */
        maxCommandsPerSession: z.number().int().positive().default(10_000),
      })
      .prefault({}),
  }),
  credentials: z.record(z.string(), Credential).default({}),
  policies: z.array(Policy).default([]),
  /** Domains whose policy has a problem: deferred, never routed by a weaker policy (DeferredPolicy). */
  deferredPolicies: z.array(DeferredPolicy).default([]),
  /**
   * Inbound credentials a policy the operator left out names (its inbound.credentialRef; never a
   * relay-wide account): a login several policies name gets only what every one of them allows
   * (relay/inbound/authority.ts), and one left out allows nothing, so no host may log in with it until
   * that policy is back, whatever another policy naming it says.
   */
  heldCredentials: z.array(z.string().min(1)).default([]),
  /**
   * DKIM signing per sending domain (dkim-config.ts): mail from a trusted sender whose From: is one of
   * these domains is signed after any message encryption (relay/outbound/message-transforms.ts).
   */
  dkim: z.array(DkimSigning).default([]),
  /** For recipient domains no policy matches (local domains excepted: see relay/outbound/route.ts). */
  defaultOutbound: Outbound.default({ tls: { mode: "opportunistic", minVersion: "TLSv1.2" } }),
  /**
   * The catch-all ("*") MailDomainPolicy that defaultOutbound was compiled from, if any: its mode is
   * the administrator's, as any policy's, so `TLS-Required: No` does not relax it
   * (relay/outbound/tls-policy.ts).
   */
  defaultOutboundPolicy: z.string().min(1).optional(),
  queue: z.strictObject({
    /** Spool directory on the pod's volume (absolute, outside the config directory). */
    dir: z.string().min(1),
    /** Seconds a message may stay queued before it bounces. */
    maxAge: z
      .number()
      .int()
      .positive()
      .default(5 * 24 * 3600),
    retry: z
      .object({
        /**
         * Seconds; at least 0.1 (the MailRelay API: 1s): 1 ms had a deferred message attempted a
         * thousand times a second. The tests' relays retry after 0.2-1 s.
         */
        initial: z.number().min(MIN_RETRY_SECONDS).default(60),
        max: z.number().min(MIN_RETRY_SECONDS).default(3600),
        /** Share of each retry delay drawn at random, shortening it (relay/queue/backoff.ts). */
        jitter: z.number().min(0).max(1).default(DEFAULT_RETRY_JITTER),
      })
      .prefault({}),
    /** Concurrent deliveries. */
    workers: z.number().int().positive().default(16),
    /**
     * Bytes of message data the deliveries may hold in memory at once (relay/queue/memory-budget.ts):
     * an attempt waits until its share fits. Large bodies are streamed from disk (about 4 MiB per
     * transaction); S/MIME holds a message several times over.
     */
    memoryBytes: z
      .number()
      .int()
      .positive()
      .default(128 * 1024 * 1024),
    /**
     * Bytes of the queue volume kept free for the queue's own writes (relay/queue/space-reserve.ts):
     * while less is free, new mail is refused with 452 4.3.1 at MAIL FROM (a SIZE= counted), and at
     * the end of DATA if the message would take it; deliveries, DSNs and the rest still write there.
     * Absent: 1.5 x inbound.maxMessageSize, at least 8 MiB; 0: no reserve.
     */
    minFreeBytes: z.number().int().min(0).optional(),
    /**
     * Scale-down drain (relay/queue/drain.ts): hand the queued messages over by SMTP to this target
     * (the fleet's Service); absent: a drain delivers them normally.
     */
    handover: HostPort.optional(),
  }),
  /** Bounds of outbound delivery (relay/outbound/attempt-limits.ts); Postfix names in comments. */
  delivery: z
    .object({
      /** Next-hop addresses tried per attempt, each once (smtp_mx_address_limit). */
      mxAddressLimit: z.number().int().positive().default(5),
      /** Sessions (hops whose server answered) per attempt (smtp_mx_session_limit). */
      mxSessionLimit: z.number().int().positive().default(2),
      /**
       * Deliveries at once to one destination (its next hop, else its domain), over all workers
       * (default_destination_concurrency_limit; relay/outbound/destination-slots.ts).
       */
      destinationConcurrencyLimit: z.number().int().positive().default(DEFAULT_DESTINATION_CONCURRENCY),
      /** Overall deadline of one delivery attempt (all hops): the recipients are deferred. */
      attemptTimeoutSeconds: timerSeconds.default(600),
      /** Overall deadline of one MTA-STS policy fetch or TLS-RPT POST. */
      fetchTimeoutSeconds: timerSeconds.default(60),
      /**
       * Internal ranges a destination chosen by DNS (MX, mta-sts.<domain>, https: TLS-RPT) may be
       * in (relay/net/address-class.ts); everything else non-public is refused. Tests: 127.0.0.0/8.
       */
      allowedInternalCidrs: z.array(Cidr).default([]),
    })
    .prefault({}),
  /** DNS servers (ip or ip:port) for MX lookups; absent: the system resolver. Tests use loopback. */
  dns: z
    .strictObject({
      servers: z
        .array(
          z
            .string()
            .refine(
              (s) => parseDnsServer(s) !== undefined,
              "must be an IP address, optionally with a port 1-65535: 10.0.0.10, 10.0.0.10:5353, [fd00::53]:53",
            ),
        )
        .optional(),
    })
    .default({}),
  /**
   * MTA-STS policy fetch (mode mta-sts). For tests only: caFile trusts a private CA for
   * https://mta-sts.<domain>/ instead of the system roots; httpsPort replaces 443. Leave unset.
   */
  mtaSts: z
    .object({ caFile: ConfigPath.optional(), httpsPort: z.number().int().min(1).max(65535).optional() })
    .default({}),
  /** For our own domains: MTA-STS published, TLS-RPT reports received (own-domains.ts). */
  ownDomains: OwnDomains.optional(),
  /**
   * OpenPGP Web Key Directory lookups (relay/outbound/wkd.ts): cacheTtlSeconds is how long a found key
   * is used before it is fetched again. For tests only: caFile trusts a private CA instead of the
   * system roots for https://openpgpkey.<domain>/ and https://<domain>/; httpsPort replaces 443.
   */
  wkd: z
    .object({
      cacheTtlSeconds: z.number().int().min(60).max(604_800).default(3600),
      caFile: ConfigPath.optional(),
      httpsPort: z.number().int().min(1).max(65535).optional(),
    })
    .prefault({}),
  /**
   * TLS-RPT (RFC 8460): absent: nothing recorded. Sessions are counted per policy domain in
   * <queue.dir>/tlsrpt/; each finished UTC day is reported to the domain's _smtp._tls rua URIs.
   */
  tlsRpt: z
    .object({
      organizationName: z.string().min(1),
      contactInfo: z.string().min(1),
      /** Envelope/header sender of mailto: reports; default tlsrpt-noreply@<hostname>. */
      from: z.string().optional(),
      /** For tests only: trusts a private CA for https: rua endpoints. */
      caFile: ConfigPath.optional(),
    })
    .optional(),
});
export type RelayConfig = z.infer<typeof RelayConfig>;
export type RelayConfigInput = z.input<typeof RelayConfig>;
