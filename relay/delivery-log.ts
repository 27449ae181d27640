// The delivery log: one line per recipient per attempt, the answer to "what happened to mail for
// bob@partner.example?" (Postfix's smtp(8) `to=<...>, relay=..., delay=..., delays=a/b/c/d,
// dsn=..., status=...` line). The line is typed once (DeliveryLine) and rendered two ways: JSON (the
// default, pino) and Postfix-like text (`--log-format text`, relay/log.ts), for grep. Pure.
//
// delays, in seconds, as Postfix splits them:
//   beforeQueue   receiving the message: DATA's start to its 250 (0 when not known, e.g. a message
//                 queued by an older relay or the relay's own DSN/TLS-RPT mail)
//   inQueue       in the queue: the 250 to this attempt's start (earlier attempts included, as Postfix)
//   connection    this attempt up to MAIL FROM: MTA-STS, DNS, connect, greeting, STARTTLS, AUTH
//   transmission  MAIL FROM to the end of DATA
// delay is their sum: DATA's start to the end of this attempt.
import { z } from "zod";
import type { AttemptTrace, RecipientResult } from "./outbound/deliver.js";
import { headerText } from "./header-section.js";
import { clipped, logBracketed, logText, logValue } from "./printable.js";
import { replyText } from "./reply-text.js";

export const DELIVERY_EVENT = "recipient";

const Seconds = z.number().nonnegative();

export const DeliveryLine = z.object({
  event: z.literal(DELIVERY_EVENT),
  queueId: z.string(),
  from: z.string(),
  to: z.string(),
  size: z.number().int().nonnegative(),
  messageId: z.string().optional(),
  /** host[address]:port of the next hop tried last, "none" when no connection was tried. */
  relay: z.string(),
  delay: Seconds,
  delays: z.object({
    beforeQueue: Seconds,
    inQueue: Seconds,
    connection: Seconds,
    transmission: Seconds,
  }),
  /** Enhanced status code (RFC 3463). */
  dsn: z.string(),
  status: z.enum(["sent", "deferred", "bounced"]),
  /** The relay's reason code (docs: the deferral reasons), DELIVERED when sent. */
  code: z.string(),
  /** The next hop's reply, or why nothing was sent. */
  response: z.string(),
  /** Delivery attempts of this message before this one. */
  attempt: z.number().int().nonnegative(),
  tls: z.object({
    /** The MailDomainPolicy (namespace/name) that applied, and its mode. */
    policy: z.string().optional(),
    mode: z.string().optional(),
    /** The level the policy engine resolved for the hop (relay/outbound/tls-policy.ts), and why. */
    level: z.string().optional(),
    why: z.string().optional(),
    /** The policy exception (MailDomainPolicy spec.exceptions) the hop was resolved under. */
    exception: z.string().optional(),
    /** The session: absent when it was not encrypted (or never opened). */
    version: z.string().optional(),
    cipher: z.string().optional(),
    verified: z.boolean(),
    /** SHA-256 of the peer certificate, colon-separated hex (as `openssl x509 -fingerprint -sha256`). */
    peerFingerprint: z.string().optional(),
  }),
  /**
   * The policy's TLS requirement was not met on any hop and its fallback (relay/outbound/fallback.ts)
   * carried this attempt: smime or route, and the TLS failure that triggered it. The fields above
   * describe the fallback's session.
   */
  fallback: z.object({ action: z.enum(["smime", "route"]), trigger: z.string() }).optional(),
});
export type DeliveryLine = z.infer<typeof DeliveryLine>;

/** What the queue knows of the message beside the deliverer's result. */
export interface DeliveryContext {
  queueId: string;
  from: string;
  size: number;
  messageId?: string;
  attempt: number;
  /** The inbound side's DATA start and 250 (epoch ms); acceptedAt absent: not known. */
  receivedAt: number;
  acceptedAt?: number;
  policy?: string;
  /** When no attempt ran (held, unreadable): now. */
  now: number;
}

const seconds = (ms: number): number => Math.max(0, Math.round(ms)) / 1000;

function relayOf(t: AttemptTrace | undefined): string {
  const r = t?.record;
  if (!r?.nextHop) return "none";
  return `${r.nextHop}[${r.address ?? ""}]:${r.port ?? 25}`;
}

/** The line of one recipient's result. */
export function deliveryLine(c: DeliveryContext, r: RecipientResult): DeliveryLine {
  const t = r.attempt;
  const rec = t?.record;
  const startedAt = t?.startedAt ?? c.now;
  const endedAt = t?.endedAt ?? c.now;
  const queuedAt = c.acceptedAt ?? c.receivedAt;
  const transmission = Math.min(rec?.transmitMs ?? 0, endedAt - startedAt);
  const delays = {
    beforeQueue: seconds(queuedAt - c.receivedAt),
    inQueue: seconds(startedAt - queuedAt),
    connection: seconds(endedAt - startedAt - transmission),
    transmission: seconds(transmission),
  };
  const s = rec?.session;
  return {
    event: DELIVERY_EVENT,
    queueId: c.queueId,
    from: c.from,
    to: r.address,
    size: c.size,
    ...(c.messageId ? { messageId: c.messageId } : {}),
    relay: relayOf(t),
    delay: seconds(endedAt - c.receivedAt),
    delays,
    dsn: r.status,
    status: r.outcome === "delivered" ? "sent" : r.outcome === "failed" ? "bounced" : "deferred",
    code: r.code,
    // what the envelope keeps: one bounded line, whoever wrote the failure (copied per recipient:
    // test/unit/attack-recipient-line-response.test.ts)
    response: replyText(r.message),
    attempt: c.attempt,
    tls: {
      ...((rec?.policy ?? c.policy) ? { policy: rec?.policy ?? c.policy } : {}),
      ...(rec?.mode ? { mode: rec.mode } : {}),
      ...(rec?.level ? { level: rec.level } : {}),
      ...(rec?.why ? { why: rec.why } : {}),
      ...(rec?.exception ? { exception: rec.exception } : {}),
      ...(s?.tlsVersion ? { version: s.tlsVersion } : {}),
      ...(s?.cipher ? { cipher: s.cipher } : {}),
      verified: s?.peerVerified === true && s.tlsVersion !== undefined,
      ...(s?.peerFingerprint ? { peerFingerprint: s.peerFingerprint } : {}),
    },
    ...(r.fallback ? { fallback: { action: r.fallback.action, trigger: r.fallback.trigger } } : {}),
  };
}

const blank = (c: number): boolean => c === 0x20 || c === 0x09;

/** `s` without its leading and trailing SP and HTAB (by hand: /[ \t]+$/ is quadratic in runs of them). */
function blanksTrimmed(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && blank(s.charCodeAt(a))) a++;
  while (b > a && blank(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

/**
 * Characters of a Message-ID a delivery line and a receipt carry: real ones are well under 100, and
 * the sender's text is written once per recipient and attempt, the receipts kept for ever (a 64 KiB
 * one folded over lines made each recipient's receipt 64 KiB: attack review, session 18).
 */
export const MESSAGE_ID_MAX = 256;

/**
 * The Message-ID of a message's header section (its first Message-ID field, unfolded), without its
 * angle brackets; undefined when the field is absent, empty, or has text after its `>`. Longer than
 * MESSAGE_ID_MAX: its start, marked as cut. Linear in the head: an expression that found it
 * backtracked over each run of blanks of a folded field (120 ms per attempt for 64 KiB of them).
 */
export function messageIdOf(head: Buffer): string | undefined {
  const header = headerText(head.toString("latin1"), false);
  const field = /^message-id:/im.exec(header);
  if (!field) return undefined;
  // the field's value: up to the first line break not followed by a blank (a bare CR ends it too)
  const start = field.index + field[0].length;
  const next = /\r(?!\n[ \t])/g;
  next.lastIndex = start;
  const end = next.exec(header)?.index ?? header.length;
  let v = blanksTrimmed(header.slice(start, end).replace(/\r\n[ \t]+/g, " "));
  if (v.startsWith("<")) v = v.slice(1);
  const close = v.indexOf(">");
  if (close >= 0) {
    if (/[^ \t]/.test(v.slice(close + 1))) return undefined;
    v = v.slice(0, close);
  }
  if (!v) return undefined;
  return clipped(v, MESSAGE_ID_MAX);
}

const fixed = (n: number): string => String(Math.round(n * 1000) / 1000);

/**
 * The Postfix-like text of a line, after the time and level:
 * `<queueId>: to=<b@x>, from=<a@y>, size=N, message-id=<id>, relay=host[ip]:port, delay=S,
 * delays=a/b/c/d, dsn=X.Y.Z, attempt=N, code=C, policy=P, mode=M, level=L, why="...", exception=E,
 * tls=V, cipher=C, verified=yes|no, fingerprint=AB:..., fallback=smime/TLS_NOT_OFFERED,
 * status=sent (response)`; absent fields are left out.
 * Every value that came from outside is bare only when it is plain, else a JSON string with `, = ( )`
 * escaped (printable.ts): one attempt is one line, and its fields parse back uniquely.
 */
export function deliveryText(l: DeliveryLine): string {
  const d = l.delays;
  const pairs: [string, string | undefined][] = [
    ["to", logBracketed(l.to)],
    ["from", logBracketed(l.from)],
    ["size", String(l.size)],
    ["message-id", l.messageId !== undefined ? logBracketed(l.messageId) : undefined],
    ["relay", l.relay],
    ["delay", fixed(l.delay)],
    ["delays", [d.beforeQueue, d.inQueue, d.connection, d.transmission].map(fixed).join("/")],
    ["dsn", l.dsn],
    ["attempt", String(l.attempt)],
    ["code", l.code],
    ["policy", l.tls.policy],
    ["mode", l.tls.mode],
    ["level", l.tls.level],
    ["why", l.tls.why],
    ["exception", l.tls.exception],
    ["tls", l.tls.version],
    ["cipher", l.tls.cipher],
    ["verified", l.tls.verified ? "yes" : "no"],
    ["fingerprint", l.tls.peerFingerprint],
    ["fallback", l.fallback ? `${l.fallback.action}/${l.fallback.trigger}` : undefined],
  ];
  const fields = pairs
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${k === "to" || k === "from" || k === "message-id" ? v : logValue(v)}`);
  return `${logValue(l.queueId)}: ${fields.join(", ")}, status=${l.status} (${logText(l.response)})`;
}
