// The encryption receipt of one delivered recipient, from the same facts as its delivery log line
// (relay/delivery-log.ts): the line, the attempt's record (hop, session, what authenticated it) and
// the S/MIME result. Pure.
import { createHash } from "node:crypto";
import type { RelayConfig } from "../contract/config.js";
import type { Receipt, ReceiptAuthentication } from "../contract/receipt.js";
import type { DeliveryLine } from "../delivery-log.js";
import type { RecipientResult } from "../outbound/deliver.js";
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

/** SHA-256 (16 hex digits) of a policy as compiled into the relay's config. */
export function policyRevision(config: RelayConfig, name: string | undefined): string | undefined {
  const p = name ? config.policies.find((x) => x.name === name) : undefined;
  return p ? createHash("sha256").update(canonicalJson(p)).digest("hex").slice(0, 16) : undefined;
}

/** The receipt of a delivered recipient (`line.status` sent); undefined for any other result. */
export function receiptOf(line: DeliveryLine, r: RecipientResult, c: ReceiptContext): Receipt | undefined {
  if (line.status !== "sent") return undefined;
  const rec = r.attempt?.record;
  const s = rec?.session;
  const authenticated = authenticationOf(r);
  const policy = c.config.policies.find((p) => p.name === line.tls.policy);
  const revision = policyRevision(c.config, line.tls.policy);
  const caFile = policy?.outbound.tls.caFile;
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
    policy: {
      ...(line.tls.policy ? { name: line.tls.policy } : {}),
      ...(revision ? { revision } : {}),
      configHash: c.configHash,
      generation: c.config.generation,
    },
    dsn: line.dsn,
    reply: line.response,
  };
}
