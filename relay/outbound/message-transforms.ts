// What happens to a message's bytes between the queue and the wire, in ONE order (issue 20 item 3):
//   1. message encryption, per recipient group: S/MIME (smime.ts) or OpenPGP (openpgp-delivery.ts;
//      a policy has at most one of them):
//      a group may be split (encrypted / sent clear by the policy's choice) or refused (deferred,
//      bounced);
//   2. DKIM signing of the bytes each group is sent with (dkim-decision.ts, dkim.ts), so the
//      signature covers what is sent, the encrypted entity included; nothing changes the bytes after
//      it;
//      A step that changes the bytes after it (the TLS fallback's S/MIME encryption, fallback-delivery.ts)
//      starts from the batch's bytes before the signature (Batch.unsigned) and runs this order again:
//      its encryption, then the DKIM step over what it sends;
//   3. on the wire, the SMTP client's dot-stuffing and CRLF . CRLF (dot-stuff.ts), which the
//      receiver undoes before it verifies.
// A step takes a batch (recipients and the bytes they get) and returns the batches for the next step
// and the results of the recipients it settled. Generic over the result type (deliver.ts's
// RecipientResult), so this file depends on nothing of the delivery. Pure composition.
import type { MessageBody } from "../queue/message-body.js";

export interface Batch<R> {
  recipients: string[];
  message: MessageBody;
  /**
   * The bytes before the signature steps (SIGNATURE_STEPS), set by runTransforms once one ran: what a
   * re-encryption after them starts from, so it signs again instead of wrapping a stale signature.
   */
  unsigned?: MessageBody;
  /** What the steps did, added to each recipient's result once this batch was sent. */
  annotate?: (r: R) => R;
}

export interface StepOutcome<R> {
  /** What goes on to the next step (or, after the last, to the wire). */
  batches: Batch<R>[];
  /** Recipients this step settled (refused: deferred or bounced). */
  results: R[];
}

export type TransformStep<R> = (batch: Batch<R>) => Promise<StepOutcome<R>>;

/** The steps a delivery may run, by name; STEP_ORDER is the only place their order is decided. */
export interface MessageSteps<R> {
  smime?: TransformStep<R>;
  openpgp?: TransformStep<R>;
  dkim?: TransformStep<R>;
}

/** Encryption first, then the signature over what is sent. */
export const STEP_ORDER = [
  "smime",
  "openpgp",
  "dkim",
] as const satisfies readonly (keyof MessageSteps<unknown>)[];

/** The steps that sign the bytes the earlier ones produced (the last in STEP_ORDER). */
const SIGNATURE_STEPS: ReadonlySet<keyof MessageSteps<unknown>> = new Set(["dkim"]);

/** Runs the given steps over one batch in STEP_ORDER. */
export async function runTransforms<R>(first: Batch<R>, steps: MessageSteps<R>): Promise<StepOutcome<R>> {
  let batches: Batch<R>[] = [first];
  const results: R[] = [];
  for (const name of STEP_ORDER) {
    const step = steps[name];
    if (!step) continue;
    const next: Batch<R>[] = [];
    for (const b of batches) {
      const o = await step(b);
      results.push(...o.results);
      const unsigned = b.unsigned ?? (SIGNATURE_STEPS.has(name) ? b.message : undefined);
      for (const n of o.batches)
        next.push({ ...n, ...(unsigned ? { unsigned } : {}), annotate: both(b.annotate, n.annotate) });
    }
    batches = next;
  }
  return { batches, results };
}

function both<R>(a?: (r: R) => R, b?: (r: R) => R): ((r: R) => R) | undefined {
  if (a && b && a !== b) return (r) => b(a(r));
  return b ?? a;
}
