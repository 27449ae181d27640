// MailRelay: one relay fleet (a StatefulSet the operator runs), its listeners, certificate, queue and
// inbound defaults, and which MailDomainPolicies it enforces.
import { z } from "zod";
import { API_VERSION } from "./api-version.js";
import { cel } from "./cel.js";
import { domainName, domainPattern } from "./dns-names.js";
import { labelSelector } from "./label-selector.js";
import { cidr, host, port } from "./network.js";
import { ObjectMeta } from "./object-meta.js";
import { DURATION_PATTERN, duration, cpuQuantity, quantity } from "./quantities.js";
import { RelayPolicyExceptions } from "./policy-exceptions.js";
import { IssuerRef, keyRef, localRef } from "./references.js";
import { int64, statusBase, timestamp } from "./status.js";
import { InboundRequirement } from "./maildomainpolicy.js";
import { relayPodFields } from "./relay-pod.js";
import { MtaStsSpec, OwnDomainsStatus, ownDomainsRules, TlsRptReceiverSpec } from "./own-domains.js";
import { TlsReporting } from "./tls-reporting.js";
import { MTA_STS_CONTAINER_PORT } from "../../relay/contract/own-domains.js";
import { ADMIN_CONTAINER_PORT as ADMIN_PORT } from "../../relay/contract/relay-pods.js";

/**
 * Address ranges that are never the Internet: private (RFC 1918, RFC 4193), shared (RFC 6598),
 * link-local (incl. the cloud metadata address 169.254.169.254) and loopback. The default of
 * spec.service.clusterNetworks (where SNAT'd clients appear to come from) and of
 * spec.networkPolicy.egressExcept (what Internet-bound egress may not reach).
 */
export const CLUSTER_NETWORKS = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "127.0.0.0/8",
  "fc00::/7",
  "fe80::/10",
  "::1/128",
] as const;

/**
 * A CEL comparison of duration fields that only runs when each field is well-formed: a malformed one
 * is already reported by its pattern, and a second error about a "type conversion" would only confuse.
 */
const durations = (fields: string[], comparison: string) =>
  fields.map((f) => `!self.${f}.matches('${DURATION_PATTERN.source}')`).join(" || ") + ` || ${comparison}`;

/**
 * A rule on a duration field itself, `min` to `max` (either may be absent): on the field, not its
 * object, so a stored value it refuses blocks only an edit of that field (CRD validation ratcheting
 * skips a rule whose own value is unchanged), not of its neighbours.
 */
const durationWithin = (field: string, min?: string, max?: string) =>
  cel({
    rule:
      `!self.matches('${DURATION_PATTERN.source}') || (` +
      [
        ...(min ? [`duration(self) >= duration('${min}')`] : []),
        ...(max ? [`duration(self) <= duration('${max}')`] : []),
      ].join(" && ") +
      ")",
    message: `${field} must be ${min && max ? `between ${min} and ${max}` : min ? `at least ${min}` : `at most ${max}`}`,
  });

const ProxyProtocol = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe("Expect a PROXY protocol (v1 or v2) header on every connection."),
    trustedCidrs: z
      .array(cidr("An address or CIDR range of the load balancer, e.g. 10.0.0.0/16."))
      .max(64)
      .default([])
      .describe(
        "Where the load balancer connects from. Connections from elsewhere are refused (421), and so are connections from these addresses without a valid header.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
  })
  .describe(
    "PROXY protocol from a TCP load balancer (e.g. AWS NLB with proxy protocol v2), so host rules and relayFrom see the real client address.",
  )
  .meta(
    cel({
      rule: "!self.enabled || size(self.trustedCidrs) > 0",
      message: "proxyProtocol.enabled needs trustedCidrs: the load balancer's addresses",
      fieldPath: ".trustedCidrs",
    }),
  );

const listener = (what: string, defaultPort: number) =>
  z
    .object({
      enabled: z.boolean().default(true).describe("Whether the relay listens for this service."),
      port: port(
        `Container and Service port (default ${defaultPort}); not ${ADMIN_PORT}, the pod's admin port, nor ${MTA_STS_CONTAINER_PORT} with spec.mtaSts (its endpoint's).`,
      ).default(defaultPort),
      proxyProtocol: ProxyProtocol.optional(),
    })
    .prefault({})
    .describe(what)
    .meta(
      cel({
        // the pod binds it itself: a listener on it could not start (EADDRINUSE), and a reload takes
        // listener changes only at the next restart, which then crash-loops (8443, the MTA-STS
        // endpoint's, is refused where spec.mtaSts is set: MailRelaySpec)
        rule: `!self.enabled || self.port != ${ADMIN_PORT}`,
        message: `port ${ADMIN_PORT} is the relay pod's admin port (/metrics, /status): give the listener another port`,
        fieldPath: ".port",
      }),
    );

const Listeners = z
  .object({
    smtp: listener(
      "SMTP (default port 25): mail from other servers and internal senders; STARTTLS offered.",
      25,
    ),
    smtps: listener("SMTPS (default port 465): submission with implicit TLS (RFC 8314).", 465),
    submission: listener(
      "Submission (default port 587): mail clients; STARTTLS then SMTP AUTH with an inbound RelayCredential required.",
      587,
    ),
  })
  .prefault({})
  .describe("The SMTP services the relay offers. All three are on by default.")
  .meta(
    cel(
      {
        rule: "self.smtp.enabled || self.smtps.enabled || self.submission.enabled",
        message: "at least one listener must be enabled",
      },
      {
        rule: "!(self.smtp.enabled && self.smtps.enabled && self.smtp.port == self.smtps.port) && !(self.smtp.enabled && self.submission.enabled && self.smtp.port == self.submission.port) && !(self.smtps.enabled && self.submission.enabled && self.smtps.port == self.submission.port)",
        message: "two enabled listeners use the same port: give each its own port",
      },
    ),
  );

const Certificate = z
  .object({
    issuerRef: IssuerRef.optional().describe(
      "Have cert-manager issue the certificate. The operator creates the kubernetes.io/tls Secret <name>-tls itself (its uid in status.issuedSecretUIDs.server, owned by the MailRelay), then a Certificate for spec.hostname that cert-manager issues into it (and likewise <name>-mta-sts with spec.mtaSts). A Secret of that name the operator did not create (another application's, one created by someone else before it, or one left by a deleted relay of the same name) is never mounted, served or overwritten: Ready=False, InvalidReference, and the StatefulSet is not applied; delete it so the operator creates its own.",
    ),
    secretRef: localRef(
      "An existing Secret of type kubernetes.io/tls for the hostname, if you manage the certificate yourself.",
      "Name of the Secret in the same namespace.",
    ).optional(),
  })
  .describe(
    "The relay's server certificate for STARTTLS and SMTPS, for spec.hostname: issued by cert-manager (issuerRef) or an existing Secret (secretRef). Renewals are picked up without dropping connections.",
  )
  .meta(
    cel({
      rule: "has(self.issuerRef) != has(self.secretRef)",
      message:
        "set exactly one of issuerRef (cert-manager issues the certificate) or secretRef (an existing TLS Secret)",
    }),
  );

const RelayInbound = z
  .object({
    require: InboundRequirement.default("none").describe(
      "What every connecting host must do before the relay accepts mail: none, tls (STARTTLS first), auth (SMTP AUTH, offered only inside TLS), tls+auth. A MailDomainPolicy's inbound rule can make it stricter for the partner's hosts, never looser. Port 587 always requires AUTH.",
    ),
    relayFrom: z
      .array(cidr("An address or CIDR range, e.g. 10.0.0.0/8."))
      .max(64)
      .optional()
      .describe(
        "Internal senders (e.g. your Exchange or application servers) allowed to send mail to any domain. Everyone else may only send to localDomains, unless logged in with an inbound RelayCredential. Unless partnerHosts lists them, a MailDomainPolicy whose inbound.hosts overlap these ranges is not accepted on this relay (InvalidSpec). Never list the cluster's node or pod addresses: kube-proxy gives a Service's clients a node's address (externalTrafficPolicy Cluster, or a NodePort Service someone makes with the relay's pods as its endpoints), and the pods reach the mail ports; where pods can forge source addresses, see docs/operations.md (Forged source addresses).",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    partnerHosts: z
      .array(cidr("An address or CIDR range, e.g. 203.0.113.0/24."))
      .max(64)
      .optional()
      .describe(
        "The address ranges MailDomainPolicies may name as a partner's sending hosts (their spec.inbound.hosts) on this relay. A policy's inbound rule makes the relay stricter for its hosts (STARTTLS, a login of the partner's own), so whoever may write a MailDomainPolicy could otherwise impose it on every sender, Internet mail servers included, by naming 0.0.0.0/0. A policy naming a host outside these ranges is not accepted on this relay (InvalidSpec), naming the host. Absent: any range outside relayFrom, so a policy could still ask any other sender, Internet mail servers included, to log in: set it when people you do not trust with the relay's inbound mail may write MailDomainPolicies. List here the range of a partner that sends from inside relayFrom (over a VPN, say). An empty list: no policy may name hosts. An IPv6 range never holds IPv4 addresses: ::/0 is every IPv6 sender, no IPv4 one (a range holding ::ffff:0:0/96 such as ::/0 is left out of relayFrom, trustedCidrs and allowedInternalCidrs, Accepted=False InvalidSpec, and a policy naming one as a host is not accepted: older relays read it as every IPv4 address too).",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    localDomains: z
      .array(domainPattern("A domain or *.domain, e.g. example.com."))
      .max(64)
      .optional()
      .describe(
        'Your own domains: mail to them is accepted from anyone (see localRecipients) and forwarded to internalNextHop (STARTTLS when offered). No MailDomainPolicy changes where or how its mail leaves: one naming a local domain exactly is refused for it (DomainConflict), and a *.domain wildcard or the catch-all "*" does not apply to it. Internationalised domains in their A-label form (xn--...), lower case; every spelling of the domain (U-labels, full-width letters, ideographic full stop) is matched.',
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    internalNextHop: z
      .object({
        host: host("DNS name or IP address, e.g. exchange.mail.svc."),
        port: port("TCP port.").default(25),
      })
      .optional()
      .describe("Your internal mail server, which receives mail for localDomains."),
    localRecipients: z
      .object({
        addresses: z
          .array(
            z
              .string()
              .min(2)
              .max(320)
              .regex(/^[^\s@]*@[^\s@]+$/, "must be user@domain or @domain")
              .describe("user@domain, or @domain for every address of that domain."),
          )
          .max(1000)
          .optional()
          .describe("The addresses, inline.")
          .meta({ "x-kubernetes-list-type": "set" }),
        configMapRef: keyRef(
          "A ConfigMap key with one address per line (user@domain or @domain; # starts a comment), for lists too long to inline, e.g. exported from your directory.",
          "ConfigMap",
          "recipients",
        ).optional(),
      })
      .optional()
      .describe(
        "The recipients that exist in localDomains (like Postfix's local recipient table): mail to any other address of a local domain is refused at RCPT TO with 550 5.1.1, so the relay never accepts mail it cannot deliver and never bounces it to a forged sender (backscatter). Absent: every address of a local domain is accepted and the internal server's rejections become bounces. Matching ignores case.",
      )
      .meta(
        cel({
          rule: "has(self.addresses) || has(self.configMapRef)",
          message: "localRecipients needs addresses or configMapRef",
        }),
      ),
    hopLimit: z
      .int32()
      .min(5)
      .max(500)
      .default(50)
      .describe(
        "A message arriving with this many Received: headers is refused with 554 5.4.6 (a mail loop; like Postfix's hopcount_limit). The relay adds its own Received: header and never delivers to itself.",
      ),
    ipv6ClientPrefixLength: z
      .int32()
      .min(32)
      .max(128)
      .default(64)
      .describe(
        "IPv6 clients are counted per network of this prefix length for the connection and AUTH failure limits (one host usually holds a whole /64; per /128 an attacker gets a fresh counter per address). Clients inside an IPv6 range of spec.service.clusterNetworks are counted per address: each pod holds one, and a pod sharing a /64 with the relay pods must not spend their share.",
      ),
    credentialRefs: z
      .array(
        localRef(
          "A RelayCredential of usage inbound; the wrong usage is reported in the relay's Accepted condition.",
          "Name of the RelayCredential in the same namespace.",
        ),
      )
      .max(64)
      .optional()
      .describe(
        "Accounts that may log in from any host (e.g. mail clients and applications on port 587), a partner's hosts included. Logged in, they send to localDomains, or to any domain when the credential has allowRelay, with MAIL FROM in the credential's senderDomains (default localDomains). A partner's account belongs in its MailDomainPolicy instead, which limits it to the partner's hosts.",
      )
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] }),
    maxMessageSize: quantity(
      "Largest message accepted, e.g. 50Mi; larger ones are refused with 552.",
    ).default("50Mi"),
    maxRecipients: z
      .int32()
      .min(1)
      .max(10000)
      .default(100)
      .describe(
        "Most recipients accepted per message (Postfix smtpd_recipient_limit); further RCPT TO get 452 4.5.3 and the client sends them in another transaction. Default 100.",
      ),
    hardErrorLimit: z
      .int32()
      .min(1)
      .max(1000)
      .default(20)
      .describe(
        "Error replies after which a session is closed with 421 4.7.0, for every client (Postfix smtpd_hard_error_limit). Refusals are counted, not stored. Default 20.",
      ),
    maxCommandsPerSession: z
      .int32()
      .min(100)
      .max(1000000)
      .default(10000)
      .describe(
        "Commands of any kind after which a session is closed with 421 4.7.0, for every client (no Postfix equivalent; bounds a session that makes no errors). Default 10000.",
      ),
  })
  .prefault({})
  .describe("Who may send mail through the relay, and to where.")
  .meta(
    cel({
      rule: "!has(self.localDomains) || size(self.localDomains) == 0 || has(self.internalNextHop)",
      message: "mail for localDomains is forwarded to internalNextHop: set internalNextHop",
      fieldPath: ".internalNextHop",
      reason: "FieldValueRequired",
    }),
  );

const Queue = z
  .object({
    size: quantity("Size of each pod's queue volume (a PersistentVolumeClaim), e.g. 10Gi.").default("10Gi"),
    storageClassName: z
      .string()
      .max(253)
      .optional()
      .describe("StorageClass of the queue volumes; absent: the cluster's default."),
    minFree: quantity(
      "Free space each pod keeps on its queue volume for the queue's own writes (like Postfix's queue_minfree), e.g. 100Mi. While less is free (less what the messages on their first attempt may still write), new mail is refused with 452 4.3.1 Insufficient system storage at MAIL FROM (a SIZE= counted) and at the end of DATA, and senders retry later; deliveries, bounces (DSNs), receipts and the queue's records keep writing into it, so a flooded queue still drains. Absent: 1.5 x spec.inbound.maxMessageSize, at least 8Mi. 0 turns it off (new mail may fill the volume: a bounce may then not be queued). Keep it well below size.",
    ).optional(),
    maxAge: duration(
      "How long a message may wait for delivery before it is returned to its sender with a failure notice, e.g. 120h (5 days).",
    ).default("120h"),
    retry: z
      .object({
        // 1ms had every deferred message attempted again a thousand times a second: the relay's CPU,
        // and the partner's connection limits, for as long as it stays deferred
        initial: duration("Wait before the first retry of a deferred message, e.g. 60s; at least 1s.")
          .meta(durationWithin("retry.initial", "1s"))
          .default("60s"),
        max: duration(
          "Longest wait between retries; the wait doubles from initial up to this, e.g. 1h.",
        ).default("1h"),
      })
      .prefault({})
      .describe("Retry schedule of deferred messages (exponential backoff).")
      .meta(
        cel({
          rule: durations(["initial", "max"], "duration(self.initial) <= duration(self.max)"),
          message: "retry.initial must not be longer than retry.max",
          fieldPath: ".initial",
        }),
      ),
  })
  .prefault({})
  .describe("The durable queue: every accepted message is on disk before the relay answers 250.")
  .meta(
    cel(
      {
        rule: durations(["maxAge"], "duration(self.maxAge) > duration('0s')"),
        message: "maxAge must be longer than 0s",
        fieldPath: ".maxAge",
      },
      {
        rule: durations(["retry.max", "maxAge"], "duration(self.retry.max) <= duration(self.maxAge)"),
        message: "retry.max must not be longer than maxAge, or a message would expire between two attempts",
        fieldPath: ".retry.max",
      },
      {
        // at or above the volume's size, every new message would be refused for good (452 4.3.1)
        rule: "!has(self.minFree) || !isQuantity(self.minFree) || !isQuantity(self.size) || quantity(self.minFree).isLessThan(quantity(self.size))",
        message:
          "queue.minFree must be below queue.size: at or above it every new message is refused; lower minFree or grow size",
        fieldPath: ".minFree",
      },
    ),
  );

/** ip, ip:port, [v6] or [v6]:port (what relay/contract/dns-server.ts parseDnsServer takes). */
const DNS_SERVER_PATTERN =
  /^(?:(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?|[0-9a-fA-F:]*:[0-9a-fA-F:.]*|\[[0-9a-fA-F:.]+\](?::\d{1,5})?)$/;
/**
 * What the pattern cannot say: the address is one (10.0.0.300 is not), the port is 1-65535. The relay's
 * resolver (node:dns setServers) throws on either, and its config schema refuses them.
 */
const DNS_SERVER_PORT_OK = (from: string) =>
  `int(self.substring(${from})) >= 1 && int(self.substring(${from})) <= 65535`;
const DNS_SERVER_RULE =
  "isIP(self) || (self.startsWith('[') ? " +
  `isIP(self.substring(1, self.indexOf(']'))) && (self.endsWith(']') || ${DNS_SERVER_PORT_OK("self.indexOf(']') + 2")})` +
  " : " +
  `self.contains(':') && !self.substring(0, self.lastIndexOf(':')).contains(':') && isIP(self.substring(0, self.lastIndexOf(':'))) && ${DNS_SERVER_PORT_OK("self.lastIndexOf(':') + 1")})`;
const DNS_SERVER_MESSAGE =
  "must be an IP address, optionally with a port 1-65535: 10.0.0.10, 10.0.0.10:5353, [fd00::53]:53";
const Delivery = z
  .object({
    mxAddressLimit: z
      .int32()
      .min(1)
      .max(100)
      .default(5)
      .describe(
        "Next-hop addresses one delivery attempt tries, each address once, in MX preference order (Postfix smtp_mx_address_limit); at most 10 MX names are looked up per attempt. Default 5.",
      ),
    mxSessionLimit: z
      .int32()
      .min(1)
      .max(100)
      .default(2)
      .describe(
        "SMTP sessions one delivery attempt may have, i.e. next hops whose server answered (a greeting, a refusal, a TLS or AUTH failure); unreachable addresses do not count (Postfix smtp_mx_session_limit). Default 2.",
      ),
    destinationConcurrencyLimit: z
      .int32()
      .min(1)
      .max(1000)
      .default(20)
      .describe(
        "Deliveries (connections) at once to one destination, over all queue workers of a relay pod: a policy's nextHop, else the recipient domain (Postfix default_destination_concurrency_limit). Past it a message waits for a slot without taking a queue worker, so a slow or silent partner never holds up other destinations; however many messages are queued for a partner, it never sees more sessions than this from one pod. Whatever this limit, one destination's messages hold at most three quarters of the pod's queue workers (12 of 16), so the rest always serve other destinations. Default 20.",
      ),
    attemptTimeout: duration(
      "Overall deadline of one delivery attempt over all its next hops, its DNS lookups included, e.g. 10m (1s to 24h); past it the connection is closed and the recipients are deferred. The per-stage timeouts (connect 30s, greeting 30s, idle 300s, like Postfix smtp_connect_timeout / smtp_helo_timeout) still apply inside it. Default 10m.",
    )
      .meta(durationWithin("attemptTimeout", "1s", "24h"))
      .default("10m"),
    fetchTimeout: duration(
      "Overall deadline of one MTA-STS policy fetch or TLS-RPT report POST, however slowly the server answers, e.g. 60s (1s to 1h). Default 60s.",
    )
      .meta(durationWithin("fetchTimeout", "1s", "1h"))
      .default("60s"),
    allowedInternalCidrs: z
      .array(cidr("An address or CIDR range, e.g. 10.20.0.0/16."))
      .max(64)
      .optional()
      .describe(
        "Internal ranges that destinations chosen by DNS (MX hosts, mta-sts.<domain>, https: TLS-RPT endpoints) may be in. Everything that is not a public unicast address (loopback, RFC 1918 private, link-local, CGNAT, ULA, ...) or is one of the pod's own addresses is refused otherwise, so a domain's DNS cannot aim the relay at the cluster's inside (SSRF); such mail is deferred with MX_ADDRESS_FORBIDDEN. The relay's NetworkPolicy opens the same ranges on the SMTP, next-hop and HTTPS ports (no networkPolicy.internalEgress entry needed). Explicit next hops (a MailDomainPolicy's nextHop, spec.inbound.internalNextHop) are trusted and need no entry. Absent: none.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
  })
  .prefault({})
  .describe(
    "Bounds of outbound delivery, so hostile DNS or slow servers cannot hold the delivery workers: at most queue workers (16) attempts run at once, over all messages and their route groups.",
  )
  .meta(cel());

export const MailRelaySpec = z
  .object({
    hostname: domainName(
      "The relay's public host name, lower case: its EHLO name, the name in its server certificate, and what your MX or SPF records should point at. e.g. relay.example.com. With the chart's admission policy it must be a name the cluster admin granted the namespace (annotation sealpost.dev/allowed-hostnames, e.g. \"relay.example.com,*.relay.corp.example\"); a name outside the grant is refused at apply.",
    ),
    replicas: z
      .int32()
      .min(0)
      .max(100)
      .default(2)
      .describe(
        "Number of relay pods. Each has its own queue volume; 0 stops the relay, keeping the queued messages on their volumes.",
      ),
    certificate: Certificate,
    listeners: Listeners,
    inbound: RelayInbound,
    queue: Queue,
    delivery: Delivery,
    resources: z
      .object({
        requests: z
          .object({
            cpu: cpuQuantity("CPU a relay pod is scheduled with, e.g. 100m or 1.").default("100m"),
            memory: quantity("Memory a relay pod is scheduled with, e.g. 128Mi.").default("128Mi"),
          })
          .prefault({})
          .describe("What the scheduler reserves for each relay pod."),
        limits: z
          .object({
            cpu: cpuQuantity(
              "CPU limit, e.g. 2; absent: none (throttling a mail server hurts latency).",
            ).optional(),
            memory: quantity(
              "Memory limit, e.g. 512Mi: the kernel kills a pod past it. A quarter of it is what deliveries may hold of message bodies at once (larger bodies are streamed from disk).",
            ).default("512Mi"),
          })
          .prefault({})
          .describe("What a relay pod may use at most."),
      })
      .prefault({})
      .describe(
        "CPU and memory of each relay pod (its container's resources). Defaults: requests 100m CPU and 128Mi, limit 512Mi of memory.",
      ),
    ...relayPodFields,
    service: z
      .object({
        type: z
          .enum(["ClusterIP", "NodePort", "LoadBalancer"])
          .default("ClusterIP")
          .describe("Kubernetes Service type; LoadBalancer to receive mail from the Internet."),
        annotations: z
          .record(z.string().max(317), z.string().max(4096))
          .optional()
          .describe("Annotations for the Service, e.g. for your cloud's load balancer."),
        externalTrafficPolicy: z
          .enum(["Cluster", "Local"])
          .optional()
          .describe(
            "For LoadBalancer and NodePort: Local keeps the client's source address (no SNAT; only nodes with a relay pod get traffic). Absent: Local. Cluster lets kube-proxy rewrite an Internet client's address to a node address inside clusterNetworks; the operator then refuses (Accepted=False, reason SnatInRelayFrom) a relayFrom that overlaps clusterNetworks on a listener without PROXY protocol, since anyone could relay.",
          ),
        clusterNetworks: z
          .array(cidr("An address range of your nodes or pods, e.g. 10.0.0.0/8."))
          .max(64)
          .default([...CLUSTER_NETWORKS])
          .describe(
            "The node and pod address ranges of the cluster: the source addresses kube-proxy gives external clients of a LoadBalancer or NodePort Service under externalTrafficPolicy Cluster. Checked against inbound.relayFrom in that case; its IPv6 ranges are also where inbound limits count clients per address (inbound.ipv6ClientPrefixLength). Default: every private, shared (100.64.0.0/10), link-local and loopback range; add your nodes' public addresses if they have any. Narrowing it below your real node and pod ranges makes the relay an open relay.",
          )
          .meta({ "x-kubernetes-list-type": "set" }),
        loadBalancerSourceRanges: z
          .array(cidr("A CIDR range allowed to connect, e.g. 203.0.113.0/24."))
          .max(64)
          .optional()
          .describe("For LoadBalancer: only these client ranges may connect (where the cloud supports it).")
          .meta({ "x-kubernetes-list-type": "set" }),
      })
      .prefault({})
      .describe("The Service in front of the relay pods."),
    networkPolicy: z
      .object({
        metricsFrom: z
          .array(
            z
              .object({
                namespaceSelector: labelSelector(
                  "Namespaces the scraper runs in (kubernetes.io/metadata.name names one). Absent: the relay's namespace.",
                ).optional(),
                podSelector: labelSelector(
                  "The scraper's pods. Absent: every pod of those namespaces.",
                ).optional(),
              })
              .describe("Pods allowed to reach the admin port (8080: /metrics, /status, /healthz)."),
          )
          .max(8)
          .default([
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
              podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
            },
          ])
          .describe(
            "Who may scrape the relay's admin port besides the operator. Default: pods labelled app.kubernetes.io/name=prometheus in namespace monitoring; [] allows only the operator (the chart's relay alerts then never fire). Every pod matched can read /metrics and /status.",
          ),
        egressExcept: z
          .array(cidr("A range Internet-bound traffic may not reach, e.g. 10.0.0.0/8."))
          .max(64)
          .default([...CLUSTER_NETWORKS])
          .describe(
            "Destinations left out of Internet-bound egress (SMTP 25/465/587, next-hop ports, HTTPS 443 for MTA-STS and TLS-RPT), so that DNS naming an internal address cannot make the relay reach the cluster's inside. Default: every private, shared, link-local (incl. 169.254.169.254, the cloud metadata service) and loopback range. The internal next hop, the fleet's own pods and internalEgress stay reachable. [] removes the restriction.",
          )
          .meta({ "x-kubernetes-list-type": "set" }),
        internalEgress: z
          .array(cidr("An internal destination, e.g. 10.20.0.25/32."))
          .max(64)
          .default([])
          .describe(
            "Internal destinations (inside egressExcept) the relay may reach on its SMTP and next-hop ports: the internal next hop when it is not a Service of this cluster (a Service name or IP address is allowed automatically), or a partner's nextHop over a private link. Each range opened here is reachable by whatever DNS answers.",
          )
          .meta({ "x-kubernetes-list-type": "set" }),
      })
      .prefault({})
      .describe(
        "The NetworkPolicy the operator renders for the relay pods: mail ports in from anywhere, the admin port from the operator and metricsFrom; out DNS (UDP and TCP 53), and SMTP and HTTPS to the Internet except egressExcept.",
      ),
    admin: z
      .object({
        tokenSecretRef: z
          .object({
            name: z.string().min(1).max(253).describe("Name of the Secret in the same namespace."),
            key: z.string().min(1).max(253).default("token").describe("Key holding the token."),
          })
          .optional()
          .describe(
            "A Secret with the bearer token for the relay's /queue admin endpoints (sealpost queue) and the details of /status (reload errors, per-policy delivery figures; the operator reads the token to fetch them). Absent: /queue is disabled, /status shows health only, and MailDomainPolicy delivery figures stay empty; /healthz, /readyz and /metrics need no token. Every admin request must name the pod by IP, localhost or spec.hostname in its Host header.",
          ),
      })
      .optional()
      .describe("The relay's admin port (8080)."),
    dns: z
      .object({
        servers: z
          .array(
            z
              .string()
              .max(64)
              .regex(
                DNS_SERVER_PATTERN,
                "must be an IP address, optionally with a port: 10.0.0.10, 10.0.0.10:5353, [fd00::53]:53",
              )
              .describe("A resolver's address, ip or ip:port ([v6]:port for IPv6).")
              .meta(cel({ rule: DNS_SERVER_RULE, message: DNS_SERVER_MESSAGE })),
          )
          .min(1)
          .max(3)
          .describe(
            "The resolvers the relay asks for MX, address, TLSA and MTA-STS lookups, in order. Mode dane trusts their AD bit (RFC 7672 section 1.3): they must validate DNSSEC and be reached over a trusted path (e.g. an unbound on the node or in the namespace). Without them the pod's resolvers are asked and their AD bit is never trusted (the cluster's default DNS, CoreDNS, does not validate, and passes on whatever AD bit its upstream sent): every answer is insecure and dane defers everything (DANE_REQUIRED).",
          ),
      })
      .optional()
      .describe(
        "DNS for outbound delivery. Absent: the pod's resolver (cluster DNS); needed for mode dane. The relay queries these servers directly (the pod's own dnsConfig is unchanged: Service names such as the internal next hop still resolve through cluster DNS); egress to them on port 53 (UDP and TCP) must be allowed.",
      ),
    tlsReporting: TlsReporting.optional(),
    dkim: z
      .array(
        z
          .object({
            domain: domainName(
              "The signing domain (d=), exact, e.g. example.com: mail whose From: address is in this domain (not its subdomains; list each one). It should be one of spec.inbound.localDomains: only mail of the relay's own senders is signed.",
            ),
            credentialRef: localRef(
              "The RelayCredential of type dkim (usage outbound) with the selector and the private key.",
              "Name of the RelayCredential in the same namespace.",
            ),
          })
          .describe("One signing domain and its key."),
      )
      .max(64)
      .optional()
      .describe(
        "DKIM signing (RFC 6376) of outgoing mail, per sending domain. The relay signs the bytes it sends, after S/MIME encryption, and only mail it is entitled to sign: from relayFrom or a relay-wide account (spec.inbound.credentialRefs; never a partner's, whatever its From: says), with the envelope sender in localDomains and in the signing domain itself (not a subdomain of it), and exactly one From: field in the whole header section with one address, in the signing domain. Everything else leaves unsigned, as before. When a listed domain's key is missing (Accepted=False, MissingReference) or does not load, that domain's mail is deferred (DKIM_KEY_UNAVAILABLE, DKIM_KEY_INVALID), never sent unsigned. Publish each selector's public key in DNS before adding it here.",
      )
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["domain"] }),
    policySelector: labelSelector(
      "Which MailDomainPolicies of this namespace the relay enforces, by label (e.g. matchLabels: {relay: edge}). Absent or {}: all of them.",
    ).optional(),
    mtaSts: MtaStsSpec.optional(),
    tlsRptReceiver: TlsRptReceiverSpec.optional(),
    policyExceptions: RelayPolicyExceptions,
    policyMountInterval: duration(
      "How often the Secrets and ConfigMaps that this relay's MailDomainPolicies name (CA bundles, client certificates, S/MIME and OpenPGP keys, their credentials' Secrets) may join its pod template, which rolls every relay pod (each drained, its SMTP sessions ended). A policy naming one the pods do not mount yet waits for the next turn (Accepted=False, reason MountPending; its mail deferred, never sent without it); one no policy names any more stays mounted until the template changes. e.g. 1h (the default): whoever may edit a selected policy can roll the relay's pods at most once an hour. 0s: at once, so every such edit may roll the pods; keep it above 0s when policy authors are not the relay's administrators. At most 24h.",
    ).default("1h"),
  })
  .describe("A relay fleet and what it enforces.")
  .meta(
    cel(
      ...ownDomainsRules,
      {
        rule: durations(["policyMountInterval"], "duration(self.policyMountInterval) <= duration('24h')"),
        message:
          "policyMountInterval must be at most 24h: a policy naming a Secret or ConfigMap new to the relay waits up to this long",
        fieldPath: ".policyMountInterval",
      },
      {
        // with spec.mtaSts the pod binds the endpoint's port itself (relay/contract/own-domains.ts)
        // (each listener its own CEL type: no list of them)
        rule:
          "!has(self.mtaSts) || !(" +
          ["smtp", "smtps", "submission"]
            .map(
              (l) => `(self.listeners.${l}.enabled && self.listeners.${l}.port == ${MTA_STS_CONTAINER_PORT})`,
            )
            .join(" || ") +
          ")",
        message: `with spec.mtaSts, port ${MTA_STS_CONTAINER_PORT} is the relay pod's MTA-STS endpoint: give the listener another port`,
        fieldPath: ".listeners",
      },
    ),
  );
export type MailRelaySpec = z.infer<typeof MailRelaySpec>;
export type MailRelaySpecInput = z.input<typeof MailRelaySpec>;

export const MailRelayStatus = z
  .object({
    ...statusBase,
    replicas: z.int32().min(0).optional().describe("Relay pods that exist."),
    readyReplicas: z.int32().min(0).optional().describe("Relay pods ready to accept mail."),
    configHash: z
      .string()
      .max(128)
      .optional()
      .describe("Hash of the compiled relay configuration; each pod reports the hash it runs."),
    policyCount: z.int32().min(0).optional().describe("MailDomainPolicies selected and compiled in."),
    certificate: z
      .object({
        ready: z.boolean().describe("Whether the server certificate is issued and valid."),
        secretName: z.string().max(253).optional().describe("The Secret holding it."),
        notAfter: timestamp("When it expires.").optional(),
      })
      .optional()
      .describe("The server certificate."),
    ownDomains: OwnDomainsStatus.optional(),
    issuedSecretUIDs: z
      .object({
        server: z
          .string()
          .max(64)
          .optional()
          .describe(
            "The uid of the Secret <name>-tls the operator created (empty, for cert-manager to fill) before it applied the server Certificate. Only the Secret of this uid is mounted by the relay pods; one of that name created by anyone else is refused (Ready=False, InvalidReference: delete it so the operator creates its own).",
          ),
        mtaSts: z
          .string()
          .max(64)
          .optional()
          .describe(
            "spec.mtaSts: the uid of the Secret <name>-mta-sts the operator created for the MTA-STS endpoint's Certificate. Only the Secret of this uid is served; one of that name created by anyone else is refused (Accepted=False, InvalidReference).",
          ),
      })
      .optional()
      .describe(
        "certificate.issuerRef: the Secrets the operator created for cert-manager to issue the relay's certificates into, by uid.",
      ),
    queuedMessages: int64("Messages waiting in the queues, summed over pods.").optional(),
    orphanedQueueVolumes: z
      .array(z.string().max(253))
      .max(1000)
      .optional()
      .describe(
        "Queue PVCs of the StatefulSet for ordinals >= spec.replicas (left by a scale-down): they may still hold queued mail that no pod delivers. See the Degraded condition (reason OrphanedQueueVolume) for how to drain them.",
      ),
  })
  .describe(
    "Set by the operator. Conditions: Accepted (spec and references valid), Enforced (every pod runs configHash), Degraded, Ready.",
  );
export type MailRelayStatus = z.infer<typeof MailRelayStatus>;

export const MailRelay = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("MailRelay"),
  metadata: ObjectMeta,
  spec: MailRelaySpec,
  status: MailRelayStatus.optional(),
});
export type MailRelay = z.infer<typeof MailRelay>;
