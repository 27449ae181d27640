// The receipt log's hash chain and its check (relay/contract/receipt.ts has the format). Pure: the
// log (receipt-log.ts) and `sealpost receipts verify` (receipts-cli.ts) both use it, so what is
// written and what is checked are computed by the same code.
import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";
import {
  GENESIS,
  RECEIPTS_FORMAT,
  ReceiptEntry,
  ReceiptExportHeader,
  signedHead,
  type Receipt,
} from "../contract/receipt.js";

/**
 * JSON with object keys sorted and no white space: the bytes an entry's hash is taken over. Built
 * by one string in loops rather than filter/map/join (each receipt is serialized at every delivery;
 * issue 18); the bytes are the same (test/unit/relay-receipts-canonical-json.test.ts).
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) {
    let s = "[";
    for (let i = 0; i < v.length; i++) {
      if (i) s += ",";
      // as Array.prototype.join: an element JSON has no text for (undefined, a function) is empty
      s += (canonicalJson(v[i]) as string | undefined) ?? "";
    }
    return s + "]";
  }
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    let s = "{";
    for (const k of Object.keys(o).sort()) {
      const x = o[k];
      if (x === undefined) continue;
      if (s.length > 1) s += ",";
      s += `${JSON.stringify(k)}:${canonicalJson(x)}`;
    }
    return s + "}";
  }
  return JSON.stringify(v);
}

const sha256 = (s: string | Buffer): string => createHash("sha256").update(s).digest("hex");

/** SHA-256 of a receipt's canonical JSON: what a receipt entry's hash, and its redacted stub, cover. */
export function receiptDigest(receipt: unknown): string {
  return sha256(canonicalJson(receipt));
}

type Hashed = Record<string, unknown> & { kind?: unknown; receipt?: unknown; receiptDigest?: unknown };

/**
 * An entry's hash. A receipt and its redacted stub hash the same fields, { v, seq, prev, time,
 * kind: "receipt", receiptDigest }, so a stub's hash is recomputed like any other; a checkpoint's
 * covers the entry without `hash`.
 */
export function entryHash(e: Hashed): string {
  if (e.kind === "receipt" || e.kind === "redacted") {
    const digest = e.kind === "receipt" ? receiptDigest(e.receipt) : e.receiptDigest;
    return sha256(
      canonicalJson({
        v: e.v,
        seq: e.seq,
        prev: e.prev,
        time: e.time,
        kind: "receipt",
        receiptDigest: digest,
      }),
    );
  }
  const { hash: _, ...rest } = e;
  return sha256(canonicalJson(rest));
}

/** A receipt entry reduced to what an export outside its filter shows: it still hashes the same. */
export function redactedEntry(e: Extract<ReceiptEntry, { kind: "receipt" }>): ReceiptEntry {
  const { v, seq, prev, time, hash } = e;
  return { v, seq, prev, time, kind: "redacted", receiptDigest: receiptDigest(e.receipt), hash };
}

/** The SHA-256 (hex) of a public key's SPKI DER: the key's id. */
export function keyIdOf(key: KeyObject): string {
  return sha256(key.export({ type: "spki", format: "der" }));
}

/** The next receipt entry after (seq, prev), its hash computed. */
export function receiptEntry(seq: number, prev: string, time: string, receipt: Receipt): ReceiptEntry {
  const e = { v: RECEIPTS_FORMAT, seq, prev, time, kind: "receipt" as const, receipt };
  return { ...e, hash: entryHash(e) };
}

/** A checkpoint entry: `sign` signs signedHead(seq, prev). */
export function checkpointEntry(
  seq: number,
  prev: string,
  time: string,
  keyId: string,
  sign: (data: Buffer) => Buffer,
): ReceiptEntry {
  const signature = sign(Buffer.from(signedHead(seq, prev))).toString("base64");
  const e = { v: RECEIPTS_FORMAT, seq, prev, time, kind: "checkpoint" as const, keyId, signature };
  return { ...e, hash: entryHash(e) };
}

/** An entry as one log line (canonical JSON and a newline). */
export function entryLine(e: ReceiptEntry): string {
  return canonicalJson(e) + "\n";
}

/** A chain's export header as verify saw it. */
export interface ChainHeader {
  relay: string;
  pod: string;
  keyId: string;
}

export interface VerifyReport {
  ok: boolean;
  /** The first bad entry: its line (1-based) and why. */
  bad?: { line: number; why: string };
  receipts: number;
  redacted: number;
  checkpoints: number;
  /** Chains checked (an export of a fleet holds one per pod). */
  chains: number;
  /** The export headers read, in order (none for a log file). */
  headers: ChainHeader[];
  /** seq of the first and last entry checked (of the last chain). */
  first?: number;
  last?: number;
  /** Entries after the last checkpoint of their chain (not yet signed). */
  unsigned: number;
  /** A last line without its newline: an append interrupted (kill -9), not counted. */
  partialTail?: number;
  keyIds: string[];
}

function keyFrom(base64: string): KeyObject {
  return createPublicKey({ key: Buffer.from(base64, "base64"), format: "der", type: "spki" });
}

/** The fields each kind of entry has: anything else on the line is refused. */
const FIELDS = {
  receipt: ["v", "seq", "prev", "time", "kind", "receipt", "hash"],
  checkpoint: ["v", "seq", "prev", "time", "kind", "keyId", "signature", "hash"],
  redacted: ["v", "seq", "prev", "time", "kind", "receiptDigest", "hash"],
} as const;

/**
 * Checks a receipt log or export: every entry parses, its hash matches its content (a redacted
 * stub's too, from its receipt's digest), its seq follows the previous one and its prev is the
 * previous entry's hash, and every checkpoint's signature verifies with the key: one of `publicKeys`
 * (pinned: every chain's header key and every checkpoint's key must be one of them, and every entry
 * must be covered by a checkpoint), else the export header's; a log without either is checked for its
 * chain only and reports so. Redacted entries only in an export whose header names a domain filter.
 * A chain may start at any seq (an export --since) but never skip one. A version 1 entry or header is
 * refused. Stops at the first bad entry.
 */
export function verifyReceipts(text: string, publicKeys?: KeyObject | KeyObject[]): VerifyReport {
  const r: VerifyReport = {
    ok: true,
    receipts: 0,
    redacted: 0,
    checkpoints: 0,
    chains: 0,
    headers: [],
    unsigned: 0,
    keyIds: [],
  };
  const pinned = new Map(
    (publicKeys === undefined ? [] : Array.isArray(publicKeys) ? publicKeys : [publicKeys]).map((k) => [
      keyIdOf(k),
      k,
    ]),
  );
  const lines = text.split("\n");
  // the text after the last newline: empty, or an interrupted append
  const tail = lines.pop() ?? "";
  let key: KeyObject | undefined;
  let filtered = false;
  let inExport = false;
  let prev: { seq: number; hash: string; line: number } | undefined;
  const bad = (line: number, why: string): VerifyReport => ({ ...r, ok: false, bad: { line, why } });
  // with a pinned key, a chain's entries after its last checkpoint are not proven: a failure
  const endChain = (): VerifyReport | undefined =>
    pinned.size && r.unsigned && prev
      ? bad(
          prev.line,
          `seq ${prev.seq}: the last ${r.unsigned} entr(ies) of this chain are not covered by a checkpoint signed with the given key`,
        )
      : undefined;
  const newChain = (): void => {
    prev = undefined;
    r.chains++;
    r.unsigned = 0;
  };
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let v: unknown;
    try {
      v = JSON.parse(lines[i]!);
    } catch {
      return bad(n, "not a JSON line");
    }
    const o = (v ?? {}) as Hashed;
    if (o.kind === "unparsed")
      return bad(
        n,
        `line ${String(o.line)} of the relay's log does not parse (withheld by the export's domain filter)`,
      );
    if (typeof o.kind === "string" && o.v === undefined)
      return bad(
        n,
        "a version 1 receipt log: its redacted entries cannot be checked; verify refuses it (export it again from a relay that writes version 2)",
      );
    if (o.kind === "export") {
      const h = ReceiptExportHeader.safeParse(v);
      if (!h.success) return bad(n, `export header: ${h.error.issues[0]?.message ?? "invalid"}`);
      const ended = endChain();
      if (ended) return ended;
      try {
        key = keyFrom(h.data.publicKey);
      } catch {
        return bad(n, "export header: the public key does not parse");
      }
      if (keyIdOf(key) !== h.data.keyId) return bad(n, "export header: keyId is not the key's");
      if (pinned.size && !pinned.has(h.data.keyId))
        return bad(
          n,
          `export header (pod ${h.data.pod}): key ${h.data.keyId.slice(0, 16)}… is not the given key(s)`,
        );
      r.headers.push({ relay: h.data.relay, pod: h.data.pod, keyId: h.data.keyId });
      filtered = h.data.filter.domain !== undefined;
      inExport = true;
      newChain();
      continue;
    }
    const p = ReceiptEntry.safeParse(v);
    if (!p.success) {
      const issue = p.error.issues[0];
      return bad(n, `not a receipt entry: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`.trim());
    }
    const e = p.data;
    if (!r.chains) newChain();
    const extra = Object.keys(o).filter((k) => !(FIELDS[e.kind] as readonly string[]).includes(k));
    if (extra.length)
      return bad(n, `seq ${e.seq}: a ${e.kind} entry carries only ${FIELDS[e.kind].join(", ")}`);
    // the hash covers the line as written (the receipt with fields the schema does not know included)
    if (entryHash(o) !== e.hash)
      return bad(n, `seq ${e.seq}: its content does not match its hash (the entry was changed)`);
    if (e.kind === "redacted" && !filtered)
      return bad(
        n,
        `seq ${e.seq}: a redacted entry where nothing is filtered (${inExport ? "the export header names no domain" : "a log has none"})`,
      );
    if (prev) {
      if (e.seq !== prev.seq + 1)
        return bad(
          n,
          e.seq > prev.seq + 1
            ? `seq ${e.seq} follows seq ${prev.seq}: an entry before this line is missing or out of order`
            : `seq ${e.seq} follows seq ${prev.seq}: entries are out of order or repeated`,
        );
      if (e.prev !== prev.hash)
        return bad(n, `seq ${e.seq}: prev is not the hash of line ${n - 1} (that entry was changed)`);
    } else {
      r.first = e.seq;
      if (e.seq === 1 && e.prev !== GENESIS)
        return bad(n, "seq 1 does not start the chain (prev is not zero)");
    }
    if (e.kind === "receipt") r.receipts++;
    else if (e.kind === "redacted") r.redacted++;
    else {
      r.checkpoints++;
      const k = key ?? pinned.get(e.keyId);
      if (pinned.size && !pinned.has(e.keyId))
        return bad(
          n,
          `checkpoint seq ${e.seq}: signed by key ${e.keyId.slice(0, 16)}…, not the given key(s)`,
        );
      if (k) {
        if (keyIdOf(k) !== e.keyId)
          return bad(
            n,
            `checkpoint seq ${e.seq}: signed by key ${e.keyId.slice(0, 16)}…, not the header's key`,
          );
        if (!verify(null, Buffer.from(signedHead(e.seq, e.prev)), k, Buffer.from(e.signature, "base64")))
          return bad(n, `checkpoint seq ${e.seq}: the signature does not verify`);
      }
      if (!r.keyIds.includes(e.keyId)) r.keyIds.push(e.keyId);
    }
    r.unsigned = e.kind === "checkpoint" ? 0 : r.unsigned + 1;
    r.last = e.seq;
    prev = { seq: e.seq, hash: e.hash, line: n };
  }
  const ended = endChain();
  if (ended) return ended;
  // the relay writes each entry with its newline in one write and, at its next start, cuts what
  // follows the last newline: a last line without one is an interrupted append, never an entry
  if (tail.length) r.partialTail = lines.length + 1;
  return r;
}
