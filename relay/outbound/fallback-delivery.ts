// Carrying out the secure fallback route that fallback.ts decided, for the recipients of one attempt
// whose policy's TLS requirement could not be met: smime encrypts the message to their certificates
// (smime.ts, the policy's fallback certificate sources) and sends it to the partner's hops over the
// fallback session; route sends it to the alternate next hop. Both go through the same transmit as
// any delivery, so the fallback session's level is resolved by tls-policy.ts and enforced the same
// way; a recipient without a usable certificate, or a fallback that fails, is deferred, never sent
// in clear instead. smime starts from the message as it was before the DKIM signature and runs the
// message steps again in their one order (message-transforms.ts: its encryption, then DKIM), so the
// signature covers what is sent; route sends the bytes as they were signed. Its types are structural (no import of deliver.ts, which calls it: no cycle).
import { fail, type Failure, type FailureCode } from "../contract/failure.js";
import { groupCost, HOLD_FACTOR, tooLargeResult, tooLargeToHold } from "../queue/memory-budget.js";
import { bufferBody, type MessageBody } from "../queue/message-body.js";
import { runTransforms, type TransformStep } from "./message-transforms.js";
import { disclosureGroupsOf } from "./disclosure-groups.js";
import { fallbackRoute, type FallbackDecision, type FallbackNote } from "./fallback.js";
import type { Route } from "./route.js";
import { vouchOf } from "./signing-entitlement.js";
import {
  chooseCertificates,
  planSmime,
  protectMessage,
  type RecipientCertificate,
  type Signer,
} from "./smime.js";

interface Request {
  queueId: string;
  recipients: string[];
  message: MessageBody;
  route: Route;
  from: string;
  signable?: boolean;
  /** queue.memoryBytes (DeliveryRequest.memoryBytes); absent: no limit. */
  memoryBytes?: number;
}

export interface FallbackResult {
  address: string;
  outcome: "delivered" | "deferred" | "failed";
  code: string;
  message: string;
  status: string;
  smime?: { algorithm: string; signed: boolean; certificate?: string };
  fallback?: FallbackNote;
}

/** One fallback outcome (log line + metric), per result and recipient group. */
export interface FallbackRecord {
  queueId: string;
  policy: string;
  domain: string;
  action: FallbackNote["action"];
  trigger: FailureCode;
  result: FallbackResult["outcome"];
  recipients: string[];
  /** The alternate next hop (route). */
  nextHop?: string;
  code?: string;
  reason?: string;
}

export interface FallbackDeps<Q extends Request, R extends FallbackResult> {
  transmit(req: Q): Promise<R[]>;
  smime?(route: Route): Promise<{ certs: RecipientCertificate[]; signer?: Signer } | Failure>;
  onFallback?(r: FallbackRecord): void;
  now(): Date;
  /**
   * The request's bytes before its DKIM signature and the DKIM step that signed them
   * (message-transforms.ts): the smime fallback encrypts those and signs its encryption again.
   */
  resign?: { unsigned: MessageBody; dkim: TransformStep<R> };
}

/** The results of `req` with the fallback's in place of those of the recipients it applied to. */
export async function withFallback<Q extends Request, R extends FallbackResult>(
  req: Q,
  results: R[],
  decision: FallbackDecision,
  d: FallbackDeps<Q, R>,
): Promise<(R | FallbackResult)[]> {
  if (!decision.apply) return results;
  const fallback = req.route.outbound.tlsFallback!;
  const to = new Set(decision.recipients);
  const kept = results.filter((r) => !to.has(r.address));
  const before = results.find((r) => to.has(r.address));
  const note: FallbackNote = {
    action: decision.action,
    trigger: decision.trigger,
    reason: before?.message ?? decision.trigger,
  };
  const route = fallbackRoute(req.route, fallback);
  const recipients = decision.recipients;
  const out = route
    ? fallback.action === "smime"
      ? await viaSmime(req, route, recipients, note, d)
      : await d.transmit({ ...req, route, recipients })
    : refuse(recipients, fail("TLS_REQUIRED", true, "the fallback's TLS requirement is not usable"), "4.7.0");
  const noted = out.map((r) => ({ ...r, fallback: note }));
  for (const outcome of ["delivered", "deferred", "failed"] as const) {
    const group = noted.filter((r) => r.outcome === outcome);
    if (!group.length) continue;
    d.onFallback?.({
      queueId: req.queueId,
      policy: req.route.policy,
      domain: req.route.domain,
      action: note.action,
      trigger: note.trigger,
      result: outcome,
      recipients: group.map((r) => r.address),
      ...(fallback.action === "route" ? { nextHop: fallback.nextHop.host } : {}),
      ...(outcome !== "delivered" ? { code: group[0]!.code, reason: group[0]!.message } : {}),
    });
  }
  return [...kept, ...noted];
}

function refuse(addresses: readonly string[], f: Failure, status: string): FallbackResult[] {
  return addresses.map((address) => ({
    address,
    outcome: f.temporary ? "deferred" : "failed",
    code: f.code,
    message: f.message,
    status,
  }));
}

/** smime: encrypted to each recipient's certificate, or deferred (4.7.5) without one; never clear. */
async function viaSmime<Q extends Request, R extends FallbackResult>(
  req: Q,
  route: Route,
  recipients: string[],
  note: FallbackNote,
  d: FallbackDeps<Q, R>,
): Promise<(R | FallbackResult)[]> {
  const fb = req.route.outbound.tlsFallback;
  if (fb?.action !== "smime") return [];
  // it encrypts now: a message whose encryption would hold more than the pod can waits, never sent
  // (the scheduler leaves this to the fallback, which applies only when TLS fails: memory-budget.ts)
  const hold = { factor: HOLD_FACTOR.smime };
  if (req.memoryBytes !== undefined && tooLargeToHold(req.message, hold, req.memoryBytes))
    return recipients.map((a) => tooLargeResult(a, req.message.size, groupCost(req.message, hold)));
  const s = fb.smime;
  const material = d.smime
    ? await d.smime({
        ...route,
        outbound: {
          ...route.outbound,
          smime: { ...s, missingCertificate: "defer" },
        },
      })
    : fail("SMIME_UNAVAILABLE", true, "no S/MIME support wired");
  if ("ok" in material) return refuse(recipients, material, "4.7.5");
  const now = d.now();
  const plan = planSmime(chooseCertificates(material.certs, recipients, now), "defer");
  const out: (R | FallbackResult)[] = plan.refused.map((r) => ({
    address: r.address,
    outcome: "deferred" as const,
    code: "SMIME_NO_CERTIFICATE",
    message: `TLS requirement not met (${note.trigger}) and the S/MIME fallback has ${r.reason}: deferred, never sent in clear`,
    // RFC 3463 X.7.5: a key needed for the cryptographic operation is not available
    status: "4.7.5",
  }));
  if (!plan.encrypt.length) return out;
  // signing only what the relay vouches for (its own senders' mail from their own From: domain)
  const sign = s.sign && vouchOf(req).ok;
  const signer = sign ? material.signer : undefined;
  const certs = new Map(plan.encrypt.map((e) => [e.address, e.cert]));
  let refused: Failure | undefined;
  const encrypt: TransformStep<R> = async (b) => {
    const sealed =
      sign && !signer
        ? fail("SMIME_SIGNER_MISSING", true, "the fallback signs but no signing certificate is loaded")
        : await protectMessage(
            await b.message.load(),
            b.recipients.flatMap((a) => certs.get(a) ?? []),
            signer,
            now,
            s.contentEncryption,
          );
    if (!sealed.ok) {
      refused = sealed;
      return { batches: [], results: [] };
    }
    return { batches: [{ recipients: b.recipients, message: bufferBody(sealed.value) }], results: [] };
  };
  const smime = { algorithm: s.contentEncryption, signed: signer !== undefined };
  // each message names the certificates it is encrypted to: a Bcc gets one of its own
  // (disclosure-groups.ts), as on a policy's own S/MIME route
  const groups = disclosureGroupsOf(
    plan.encrypt.map((e) => e.address),
    req.message,
  );
  for (const to of groups) {
    refused = undefined;
    // the message before its signature, encrypted, then signed again (one order: message-transforms.ts)
    const steps = await runTransforms<R>(
      { recipients: to, message: d.resign?.unsigned ?? req.message },
      { smime: encrypt, ...(d.resign ? { dkim: d.resign.dkim } : {}) },
    );
    if (refused) {
      out.push(...refuse(to, refused, "4.7.5"));
      continue;
    }
    out.push(...steps.results);
    for (const b of steps.batches) {
      const sent = await d.transmit({ ...req, route, recipients: b.recipients, message: b.message });
      for (const r of b.annotate ? sent.map(b.annotate) : sent) {
        const certificate = certs.get(r.address)?.fingerprint;
        out.push({ ...r, smime: certificate ? { ...smime, certificate } : smime });
      }
    }
  }
  return out;
}
