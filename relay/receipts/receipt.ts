// The encryption receipt of one delivered recipient, from the same facts as its delivery log line
// (relay/delivery-log.ts): the line, the attempt's record (hop, session, what authenticated it) and
// the S/MIME result. Pure.
import { createHash } from "node:crypto";
import type { Outbound, RelayConfig } from "../contract/config.js";
import type { Receipt, ReceiptAuthentication } from "../contract/receipt.js";
import type { DeliveryLine } from "../delivery-log.js";
import type { RecipientResult } from "../outbound/deliver.js";
import { DEFAULT_POLICY, LOCAL_OUTBOUND, LOCAL_POLICY } from "../outbound/route.js";
import { canonicalJson } from "./chain.js";

export interface ReceiptContext {
  config: RelayConfig;
  configHash: string;
  requireTls: boolean;
  /** The time of the result (epoch ms) when the attempt has none. */
  now: number;
}

/** Hex as `openssl x509 -fingerprint` prints it (smime.ts keeps plain lower-case hex). */
const colonHex = (hex: string): string => hex.toUpperCase().match(/../g)!.join(":");

/** What authenticated the session: the resolved level and the evidence the attempt recorded. */
function authenticationOf(r: RecipientResult): ReceiptAuthentication {
  const rec = r.attempt?.record;
  const s = rec?.session;
  if (!s?.tlsVersion) return "none";
  if (rec?.level === "dane" && s.daneRecord) return "dane";
  // the pin alone authenticated the key (mode pinned); a session whose key matched no pin never delivers
  if (rec?.level === "fingerprint" && s.peerSpki) return "pin";
  if (rec?.level === "verify" && s.peerVerified) return rec.evidence?.stsEnforced ? "mta-sts" : "ca-chain";
  return "none";
}

/**
 * What a delivery line's route name stands for: a MailDomainPolicy by its name, "default" the
 * catch-all (config.defaultOutbound, named by the MailDomainPolicy it was compiled from, if any),
 * "local" a local domain no policy names. Its name for the receipt, its outbound settings and its
 * revision: SHA-256 (16 hex digits) of what the relay's config compiled.
 */
export function routePolicy(
  config: RelayConfig,
  route: string | undefined,
): { name?: string; outbound?: Outbound; revision?: string } {
  if (route === DEFAULT_POLICY) {
    return {
      name: config.defaultOutboundPolicy ?? DEFAULT_POLICY,
      outbound: config.defaultOutbound,
      revision: revisionOf(config, () => ({
        defaultOutbound: config.defaultOutbound,
        defaultOutboundPolicy: config.defaultOutboundPolicy,
      })),
    };
  }
  if (route === LOCAL_POLICY)
    return {
      name: LOCAL_POLICY,
      outbound: LOCAL_OUTBOUND,
      revision: revisionOf(LOCAL_OUTBOUND, () => LOCAL_OUTBOUND),
    };
  const p = route ? config.policies.find((x) => x.name === route) : undefined;
  return p
    ? { name: p.name, outbound: p.outbound, revision: revisionOf(p, () => p) }
    : route
      ? { name: route }
      : {};
}

/**
 * Revisions by the object they were compiled from (a loaded config and its policies are never
 * changed in place: a reload makes new ones). Computed once per object instead of at every receipt:
 * hashing a policy's canonical JSON at each delivery was a tenth of the relay's allocation per
 * message (issue 18).
 */
const revisions = new WeakMap<object, string>();

function revisionOf(key: object, compiled: () => unknown): string {
  let r = revisions.get(key);
  if (r === undefined) {
    r = createHash("sha256").update(canonicalJson(compiled())).digest("hex").slice(0, 16);
    revisions.set(key, r);
  }
  return r;
}

/** The receipt of a delivered recipient (`line.status` sent); undefined for any other result. */
export function receiptOf(line: DeliveryLine, r: RecipientResult, c: ReceiptContext): Receipt | undefined {
  if (line.status !== "sent") return undefined;
  const rec = r.attempt?.record;
  const s = rec?.session;
  const authenticated = authenticationOf(r);
  const policy = routePolicy(c.config, line.tls.policy);
  // a fallback route's alternate hop was verified against its own CA file
  const fb = policy.outbound?.tlsFallback;
  const caFile =
    r.fallback?.action === "route" && fb?.action === "route" ? fb.tls.caFile : policy.outbound?.tls.caFile;
  return {
    queueId: line.queueId,
    ...(line.messageId ? { messageId: line.messageId } : {}),
    from: line.from,
    to: line.to,
    time: new Date(r.attempt?.endedAt ?? c.now).toISOString(),
    nextHop: {
      host: rec?.nextHop ?? "none",
      ...(rec?.address ? { address: rec.address } : {}),
      port: rec?.port ?? 25,
    },
    tls: {
      ...(line.tls.level ? { level: line.tls.level } : {}),
      ...(line.tls.mode ? { mode: line.tls.mode } : {}),
      ...(s?.tlsVersion ? { protocol: s.tlsVersion } : {}),
      ...(s?.cipher ? { cipher: s.cipher } : {}),
      authenticated,
      ...(authenticated === "ca-chain" || authenticated === "mta-sts"
        ? { ca: caFile ?? "system", names: rec?.evidence?.names ?? [] }
        : {}),
      ...(authenticated === "mta-sts" && rec?.evidence?.stsId ? { mtaStsPolicyId: rec.evidence.stsId } : {}),
      ...(authenticated === "dane" && s?.daneRecord ? { daneRecord: s.daneRecord } : {}),
      ...(authenticated === "pin" && s?.peerSpki ? { pin: s.peerSpki } : {}),
      ...(s?.tlsVersion && s.peerFingerprint ? { peerCertificateSha256: s.peerFingerprint } : {}),
      ...(s?.tlsVersion && s.peerSpki
        ? { peerSpkiSha256: colonHex(Buffer.from(s.peerSpki, "base64").toString("hex")) }
        : {}),
    },
    requireTls: c.requireTls,
    ...(r.smime
      ? {
          smime: {
            algorithm: r.smime.algorithm,
            signed: r.smime.signed,
            ...(r.smime.certificate ? { recipientCertificateSha256: colonHex(r.smime.certificate) } : {}),
          },
        }
      : {}),
    ...(r.openpgp
      ? {
          openpgp: {
            signed: r.openpgp.signed,
            recipientKeyFingerprint: r.openpgp.fingerprint,
            keySource: r.openpgp.source,
          },
        }
      : {}),
    ...(r.dkim ? { dkim: { domain: r.dkim.domain, selector: r.dkim.selector } } : {}),
    ...(r.fallback
      ? { fallback: { action: r.fallback.action, failed: r.fallback.trigger, reason: r.fallback.reason } }
      : {}),
    policy: {
      ...(policy.name ? { name: policy.name } : {}),
      ...(line.tls.exception ? { exception: line.tls.exception } : {}),
      ...(policy.revision ? { revision: policy.revision } : {}),
      configHash: c.configHash,
      generation: c.config.generation,
    },
    dsn: line.dsn,
    reply: line.response,
  };
}
