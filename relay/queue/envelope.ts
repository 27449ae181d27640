// A queued message's envelope and per-recipient state, as the spool (spool.ts: env/<id>.json) and
// the journal (journal.ts: accept records) store it.
import type { CarriedPolicy } from "../outbound/mta-sts.js";

export type RecipientStatus = "pending" | "delivered" | "failed";

export interface RecipientState {
  address: string;
  state: RecipientStatus;
  /** Last failure (temporary or permanent): reason code, SMTP reply or local message. */
  lastError?: { code: string; message: string; status?: string; remoteMta?: string };
  /** A delivery status notification for this recipient's failure is queued. */
  notified?: boolean;
}

export interface Envelope {
  v: 1;
  id: string;
  /** Envelope sender; "" is the null sender (bounces): never gets a DSN. */
  from: string;
  recipients: RecipientState[];
  receivedAt: number;
  /**
   * When the inbound side answered 250 (epoch ms; receivedAt is DATA's start): the delivery log's
   * "before queue" delay. Optional, so envelopes without it (older relays, the relay's own mail) read.
   */
  acceptedAt?: number;
  attempts: number;
  nextAttemptAt: number;
  size: number;
  /** Client that handed it to us (for the DSN and logs); LOCAL_PEERS for what the relay wrote itself. */
  peer?: string;
  /** MAIL FROM carried REQUIRETLS (RFC 8689): deliver only over verified TLS, else bounce. */
  requireTls?: boolean;
  /**
   * The relay may S/MIME-sign it (a policy's smime.sign): mail of its own domains from its own
   * senders, never a partner's (relay/inbound/authority.ts entitledToSign).
   */
  signable?: boolean;
  /**
   * Decided at accept time: the sender was authenticated or in relayFrom, so the message's
   * `TLS-Required: No` header field (RFC 8689 section 5) may be honoured; absent: it never is.
   */
  tlsRequiredNoTrusted?: boolean;
  /**
   * Decided at accept time: the sender is one of the organisation's own (relayFrom, a relay-wide
   * account: relay/inbound/authority.ts ownSender), so its DSN may name the next hops and give their
   * replies and the relay's local reasons. Absent (a partner's login, a stranger, a message a fleet
   * peer handed over, one queued by an older relay): each recipient's status and reply code only
   * (relay/dsn.ts).
   */
  ownSender?: boolean;
  /**
   * The MTA-STS enforce policies a fleet peer had cached for the recipients' domains when it handed
   * the message over (relay/outbound/mta-sts.ts CarriedPolicy, re-checked where read): each applies
   * as this pod's cache would, while valid and when this pod has no valid policy of its own.
   */
  mtaSts?: CarriedPolicy[];
  /**
   * On hold (`sealpost queue hold`, postsuper -h): never attempted until released; kept in env/, so
   * it survives a restart. A relay older than this field ignores it (delivers held mail): docs/operations.md.
   */
  held?: boolean;
}

/** The `peer` of the messages the relay writes itself: its DSNs and its TLS-RPT reports (RFC 8460). */
export const LOCAL_PEERS = { dsn: "local (dsn)", tlsRpt: "local (tlsrpt)" } as const;

const STATES: ReadonlySet<unknown> = new Set<RecipientStatus>(["pending", "delivered", "failed"]);
const isNumber = (x: unknown): boolean => typeof x === "number" && Number.isFinite(x);

/**
 * Why `x` (an env/ file's JSON, named for queue id `id`) is not an envelope the scheduler can use,
 * or undefined when it is. JSON that parses is not yet an envelope: a file of `{}`, `null` or a
 * list (bit rot that keeps the JSON valid, a hand edit) threw in the scheduler's pump, an uncaught
 * exception that ended the relay at every start, and one whose id is not its name (a copy under a
 * second name) was queued as a second entry for another message. Such a file is kept aside like
 * one that does not parse (test/mail/attack-bad-envelope.test.ts).
 */
export function envelopeProblem(x: unknown, id: string): string | undefined {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return "not an object";
  const e = x as Record<string, unknown>;
  if (e.id !== id) return `its id (${JSON.stringify(e.id)}) is not its file's name`;
  if (typeof e.from !== "string") return "no sender";
  if (
    !Array.isArray(e.recipients) ||
    !e.recipients.every(
      (r: unknown) =>
        typeof r === "object" &&
        r !== null &&
        typeof (r as RecipientState).address === "string" &&
        STATES.has((r as RecipientState).state),
    )
  )
    return "no list of recipients with their states";
  for (const k of ["receivedAt", "attempts", "nextAttemptAt", "size"] as const)
    if (!isNumber(e[k])) return `no ${k}`;
  return undefined;
}
