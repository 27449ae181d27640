// The fleet's queue handover, authenticated (issue 15.2). A draining pod hands its queue to the
// fleet's Service (relay/queue/drain.ts); this module is the contract between the two ends:
//   - the fleet credential: SMTP AUTH as FLEET_USER with a password derived from the per-fleet key
//     (the Secret `<relay>-fleet` the operator creates; never the admin token), sent only over TLS to a
//     peer that presents the fleet's own server certificate. A fleet session may relay without being in
//     relayFrom, and may only hand messages over (every message must carry a valid handover header);
//   - the handover header `X-Sealpost-Handover: v=1; id=<queue id>; t=<queued at>[; f=<trust>]; mac=<…>`:
//     its MAC (HMAC-SHA256 under a key derived for this purpose) covers the queue id, the original
//     queue time, the whole envelope (MAIL FROM, every RCPT, REQUIRETLS), the SHA-256 of the message
//     and the trust the sending pod gave it (f: `signable`, `tls-required-no`), so it cannot be moved
//     onto another message or envelope, and (s=) the MTA-STS enforce policies the sending pod had
//     cached for the recipients' domains (relay/outbound/mta-sts.ts CarriedPolicy: the receiver may
//     never have fetched them, and an attacker who removed the TXT record would have it deliver to
//     any MX). The receiver takes that trust from the header, never from
//     the fleet session (which is trusted as a peer, not as the message's sender): an outsider's
//     message does not become signable, nor its TLS-Required: No honoured, by being handed over. A
//     header without f= (a pod of the previous version) carries no trust;
//   - on receipt the header (and the legacy X-Sealpost-Queued-At) is removed before the message is
//     queued, so it never leaves the fleet; a message carrying either from anyone but an authenticated
//     fleet peer, or with a MAC that does not verify, is refused (HandoverFilter, handoverVerdict).
import { createHash, createHmac, timingSafeEqual, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { secretText, type LoadedConfig } from "../config/load.js";
import { domainOf } from "../contract/domains.js";
import { carriedPolicy, MAX_CARRIED, type CarriedPolicy } from "../outbound/mta-sts.js";

export const HANDOVER_HEADER = "X-Sealpost-Handover";
/** The previous, admin-token-signed header: no longer honoured, removed and refused like a forgery. */
export const LEGACY_QUEUED_AT_HEADER = "X-Sealpost-Queued-At";
/** The SMTP AUTH user name of a fleet peer (reserved: an inbound RelayCredential cannot use it). */
export const FLEET_USER = "sealpost-fleet";

/** The fleet's key (config fleet.keyFile) as last loaded, or undefined: no handover sent or accepted. */
export function fleetKeyOf(l: LoadedConfig): string | undefined {
  const f = l.config.fleet?.keyFile;
  const b = f ? l.files.get(f) : undefined;
  return b ? secretText(b) || undefined : undefined;
}

const sub = (key: string, purpose: string): Buffer => createHmac("sha256", key).update(purpose).digest();

/** The AUTH password of the fleet credential, derived from the per-fleet key. Pure. */
export function fleetPassword(key: string): string {
  return sub(key, "sealpost-fleet-auth-v1").toString("base64url");
}

/** Whether `password` is the fleet credential's, in constant time. Pure. */
export function isFleetPassword(key: string | undefined, password: string): boolean {
  if (!key) return false;
  const want = Buffer.from(fleetPassword(key));
  const have = Buffer.from(password);
  return want.length === have.length && timingSafeEqual(want, have);
}

export interface HandoverEnvelope {
  /** The sending pod's queue id of the message. */
  id: string;
  /** The original queue time (ms). */
  queuedAt: number;
  from: string;
  to: string[];
  requireTls: boolean;
  /** SHA-256 (hex) of the message as queued on the sending pod (messageDigest). */
  digest: string;
  /** The sending pod may sign it (spool Envelope.signable). */
  signable?: boolean;
  /** The sending pod honours its TLS-Required: No (spool Envelope.tlsRequiredNoTrusted). */
  tlsRequiredNoTrusted?: boolean;
  /** The MTA-STS enforce policies it had cached for the recipients' domains (CarriedPolicy). */
  sts?: readonly CarriedPolicy[];
}

/**
 * The carried policies' JSON in one handover header at most (stsOf): room for 16 policies of a few mx
 * patterns each (a partner's is some 200 bytes), and what each handed-over message may add to the
 * receiver's memory (Envelope.mtaSts).
 */
const MAX_STS_JSON = 4 * 1024;

/**
 * The s= value: the carried policies as base64url JSON, those (in order) that fit in MAX_STS_JSON; "" for
 * none. A partner's policy is a few lines; a long one is its domain's owner's doing (an attacker on the
 * path cannot lengthen what the partner publishes), and carried it would make every handed-over
 * message to that domain hold it in the receiver's memory (attack-handover-sts-size). Pure.
 */
function stsOf(e: Pick<HandoverEnvelope, "sts">): string {
  const kept: CarriedPolicy[] = [];
  let bytes = 2;
  for (const p of e.sts?.slice(0, MAX_CARRIED) ?? []) {
    const n = Buffer.byteLength(JSON.stringify(p)) + 1;
    if (bytes + n > MAX_STS_JSON) continue;
    kept.push(p);
    bytes += n;
  }
  return kept.length ? Buffer.from(JSON.stringify(kept)).toString("base64url") : "";
}

/** The policies of an s= value that are carried policies of the recipients' domains. Pure. */
function stsFrom(value: string, to: readonly string[]): CarriedPolicy[] {
  let list: unknown;
  try {
    list = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
  } catch {
    return [];
  }
  const domains = new Set(to.map((a) => domainOf(a)));
  return (Array.isArray(list) ? list : [])
    .slice(0, MAX_CARRIED)
    .map(carriedPolicy)
    .filter((c): c is CarriedPolicy => c !== undefined && domains.has(c.domain));
}

/** What the sending pod trusted the message with, as the header's f= value ("" for nothing). */
function trustOf(e: Pick<HandoverEnvelope, "signable" | "tlsRequiredNoTrusted">): string {
  return [...(e.signable ? ["signable"] : []), ...(e.tlsRequiredNoTrusted ? ["tls-required-no"] : [])].join(
    ",",
  );
}

/** `sts`: the s= value as sent (stsOf), which the receiver verifies as it came, not re-encoded. */
function mac(key: string, e: HandoverEnvelope, iso: string, sts: string): string {
  const text = [
    "sealpost-handover-v1",
    e.id,
    iso,
    e.from.toLowerCase(),
    e.to.map((a) => a.toLowerCase()).join("\n"),
    e.requireTls ? "requiretls" : "",
    e.digest,
    // absent when empty: a previous version's header (no trust) still verifies
    ...(trustOf(e) ? [trustOf(e)] : []),
    ...(sts ? [`sts:${sts}`] : []),
  ].join("\0");
  return createHmac("sha256", sub(key, "sealpost-handover-mac-v1")).update(text).digest("base64url");
}

/** The handover header line (CRLF-terminated) the draining pod prepends to the message. Pure. */
export function handoverHeader(key: string, e: HandoverEnvelope): string {
  const iso = new Date(e.queuedAt).toISOString();
  const f = trustOf(e);
  const sts = stsOf(e);
  // folded: a line of the header section stays under 998 bytes (RFC 5322 2.1.1) whatever s= holds,
  // the first one too (up to 153 bytes before s=: a 64-character id, both trust flags)
  const s = sts ? `; s=${sts.replace(/(.{800})(?=.)/g, "$1\r\n ")}` : "";
  return `${HANDOVER_HEADER}: v=1; id=${e.id}; t=${iso}${f ? `; f=${f}` : ""}${s}; mac=${mac(key, e, iso, sts)}\r\n`;
}

/**
 * The digest of a message: SHA-256 of its bytes without trailing CR/LF (SMTP's end of data may add
 * or consume the last line break). Streaming, so the receiver computes it while queueing.
 */
export class MessageDigest {
  private h: Hash = createHash("sha256");
  private held = 0;
  private heldBytes: number[] = [];

  update(b: Buffer): void {
    let end = b.length;
    while (end > 0 && (b[end - 1] === 0x0a || b[end - 1] === 0x0d)) end--;
    if (end === 0) {
      for (const x of b) this.heldBytes.push(x);
      this.held += b.length;
      return;
    }
    if (this.held) this.h.update(Buffer.from(this.heldBytes));
    this.heldBytes = [];
    this.held = 0;
    this.h.update(b.subarray(0, end));
    for (const x of b.subarray(end)) this.heldBytes.push(x);
    this.held = b.length - end;
  }

  hex(): string {
    return this.h.digest("hex");
  }
}

/** messageDigest of a whole message. Pure. */
export function messageDigest(message: Buffer): string {
  const d = new MessageDigest();
  d.update(message);
  return d.hex();
}

const HEADER_RE = /^(X-Sealpost-Handover|X-Sealpost-Queued-At)[ \t]*:/i;
/** The header section is held and scanned up to this size (a handover header is the first line). */
const MAX_SCAN = 256 * 1024;
/** Of a line past MAX_SCAN, the start looked at (a longer header line is refused: limits.ts). */
const LINE_LOOK = 1000;

/**
 * The handover headers of a message's header section, removed as the message is fed through in
 * chunks: `feed` returns what passes on (nothing while the header section is still being read),
 * `end` the rest, keeping what the removed headers said in `found`, and the digest of what passed.
 * `digesting` false (a session that is not a fleet peer's: handoverVerdict never reads its digest)
 * skips hashing the message; a digest read anyway is that of nothing, and verifies no MAC. Not a
 * stream: HandoverFilter and the inbound DataChecks (relay/inbound/data-checks.ts) feed it.
 */
export class HandoverScan {
  /** Values of the removed handover headers (legacy ones count as found, with an empty value). */
  readonly found: { name: string; value: string }[] = [];
  readonly digest = new MessageDigest();
  private head: Buffer[] = [];
  private headLen = 0;
  /** The last bytes fed while scanning (up to 3): the header section's end may straddle chunks. */
  private tail: Buffer = Buffer.alloc(0);
  private scanning = true;
  /**
   * A header section longer than MAX_SCAN: its lines after that are still looked at as they pass (no
   * longer removed), so a handover header there is found (and the message refused) instead of
   * passing unseen from a client outside the fleet (issue 18 review).
   */
  private watching = false;
  /** The start of the current line while watching; `judged`: strip() has judged it already. */
  private line = "";
  private judged = false;

  constructor(private readonly digesting = true) {}

  feed(chunk: Buffer): Buffer | undefined {
    if (!this.scanning) {
      if (this.watching) this.watch(chunk);
      return this.pass(chunk);
    }
    const before = this.headLen;
    this.head.push(chunk);
    this.headLen += chunk.length;
    // a message starting with an empty line has no header section at all
    const noHeaders = before < 2 && this.headLen >= 2 && this.startsWithCrlf();
    // the end of the header section, looked for in the new bytes only (and the 3 before them): the
    // header section is not joined and searched again for each chunk, which made a client sending it
    // in tiny chunks cost the relay time quadratic in its length (issue 18 review)
    let end = -1;
    if (noHeaders) end = 0;
    else {
      const win = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
      const at = win.indexOf("\r\n\r\n");
      if (at >= 0) end = before - this.tail.length + at;
      this.tail = Buffer.from(win.subarray(Math.max(0, win.length - 3)));
    }
    if (end < 0 && this.headLen < MAX_SCAN) return undefined;
    const all = this.head.length === 1 ? chunk : Buffer.concat(this.head, this.headLen);
    this.scanning = false;
    this.head = [];
    this.tail = Buffer.alloc(0);
    if (end < 0) {
      // the header section goes on: its last, unfinished line is where watching starts
      this.watching = true;
      this.line = all.toString("latin1", all.lastIndexOf(0x0a) + 1, all.length).slice(0, LINE_LOOK);
      this.judged = HEADER_RE.test(this.line);
    }
    return this.pass(this.strip(all, end < 0 ? all.length : noHeaders ? 0 : end + 2));
  }

  /** Looks at the header section's lines in `b` (past MAX_SCAN) up to its end (an empty line). */
  private watch(b: Buffer): void {
    for (let i = 0; i < b.length && this.watching;) {
      const lf = b.indexOf(0x0a, i);
      const stop = lf < 0 ? b.length : lf;
      if (this.line.length < LINE_LOOK)
        this.line += b.toString("latin1", i, Math.min(stop, i + LINE_LOOK - this.line.length));
      if (lf < 0) return;
      if (this.line === "\r" || this.line === "") this.watching = false;
      else if (!this.judged && HEADER_RE.test(this.line))
        this.found.push({ name: this.line.split(":")[0]!.trim(), value: "" });
      this.line = "";
      this.judged = false;
      i = lf + 1;
    }
  }

  /** The bytes fed so far start with CRLF (at least 2 fed). */
  private startsWithCrlf(): boolean {
    const b = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head);
    return b[0] === 0x0d && b[1] === 0x0a;
  }

  end(): Buffer | undefined {
    if (!this.scanning || !this.headLen) return undefined;
    this.scanning = false;
    const all = Buffer.concat(this.head);
    return this.pass(this.strip(all, all.length));
  }

  private pass(b: Buffer): Buffer {
    if (this.digesting) this.digest.update(b);
    return b;
  }

  /** Removes the handover header fields (with their continuation lines) from `all[0, headerEnd)`. */
  private strip(all: Buffer, headerEnd: number): Buffer {
    const text = all.subarray(0, headerEnd).toString("latin1");
    const lines = text.split(/(?<=\r\n)/);
    const kept: string[] = [];
    let dropping = false;
    for (const line of lines) {
      const continuation = line.startsWith(" ") || line.startsWith("\t");
      if (continuation && dropping) {
        this.found[this.found.length - 1]!.value += line.replace(/\r\n$/, "");
        continue;
      }
      dropping = HEADER_RE.test(line);
      if (dropping) {
        const [name = "", ...rest] = line.replace(/\r\n$/, "").split(":");
        this.found.push({ name: name.trim(), value: rest.join(":").trim() });
        continue;
      }
      kept.push(line);
    }
    if (kept.length === lines.length) return all;
    return Buffer.concat([Buffer.from(kept.join(""), "latin1"), all.subarray(headerEnd)]);
  }
}

/** HandoverScan as a stream: passes the message through with its handover headers removed. */
export class HandoverFilter extends Transform {
  readonly found: { name: string; value: string }[];
  readonly digest: MessageDigest;
  private readonly scan: HandoverScan;

  constructor(digesting = true) {
    super();
    this.scan = new HandoverScan(digesting);
    this.found = this.scan.found;
    this.digest = this.scan.digest;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(null, this.scan.feed(chunk));
  }

  override _flush(cb: TransformCallback): void {
    const rest = this.scan.end();
    if (rest) this.push(rest);
    cb();
  }
}

export type HandoverVerdict =
  | {
      ok: true;
      queuedAt?: number;
      /** The trust the sending pod gave the message (under the MAC); absent: none. */
      signable?: boolean;
      tlsRequiredNoTrusted?: boolean;
      /** The MTA-STS policies it carried for the recipients' domains (under the MAC). */
      sts?: CarriedPolicy[];
    }
  | { ok: false; reason: string };

/**
 * What the receiver does with a message, from its session and the filter's findings. Pure.
 * - not a fleet session: no handover header may be present;
 * - a fleet session: exactly one handover header whose MAC verifies for this envelope and message
 *   digest; a queue time ahead of the receiver's clock counts as its now (two nodes' clocks differ:
 *   refused, a draining pod's newest messages stayed on its volume: attack-handover-clock-skew).
 */
export function handoverVerdict(o: {
  fleetSession: boolean;
  key: string | undefined;
  found: { name: string; value: string }[];
  from: string;
  to: string[];
  requireTls: boolean;
  digest: string;
  now: number;
}): HandoverVerdict {
  if (!o.fleetSession)
    return o.found.length ? { ok: false, reason: "handover header from outside the fleet" } : { ok: true };
  if (!o.key) return { ok: false, reason: "no fleet key" };
  const h = o.found.filter((f) => f.name.toLowerCase() === HANDOVER_HEADER.toLowerCase());
  if (h.length !== 1 || o.found.length !== 1)
    return { ok: false, reason: "a fleet session must carry exactly one handover header" };
  const m =
    /^v=1; id=([A-Za-z0-9_-]{1,64}); t=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)(?:; f=(signable|tls-required-no|signable,tls-required-no))?(?:; s=([A-Za-z0-9_-]+(?:[ \t]+[A-Za-z0-9_-]+)*))?; mac=([A-Za-z0-9_-]{43})$/.exec(
      h[0]!.value,
    );
  if (!m) return { ok: false, reason: "malformed handover header" };
  const [, id = "", iso = "", f = "", folded = "", got = ""] = m;
  const s = folded.replace(/[ \t]+/g, "");
  const queuedAt = Date.parse(iso);
  const trust = {
    ...(f.split(",").includes("signable") ? { signable: true } : {}),
    ...(f.split(",").includes("tls-required-no") ? { tlsRequiredNoTrusted: true } : {}),
  };
  const envelope = { id, queuedAt, from: o.from, to: o.to, requireTls: o.requireTls, digest: o.digest };
  const want = Buffer.from(mac(o.key, { ...envelope, ...trust }, iso, s));
  const have = Buffer.from(got);
  if (want.length !== have.length || !timingSafeEqual(want, have))
    return { ok: false, reason: "handover MAC does not verify for this envelope and message" };
  if (!Number.isFinite(queuedAt)) return { ok: false, reason: "malformed handover header" };
  const sts = s ? stsFrom(s, o.to) : [];
  return { ok: true, queuedAt: Math.min(queuedAt, o.now), ...trust, ...(sts.length ? { sts } : {}) };
}
