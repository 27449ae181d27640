// The receipt log's hash chain and its check (relay/contract/receipt.ts has the format). Pure: the
// log (receipt-log.ts) and `sealpost receipts verify` (receipts-cli.ts) both use it, so what is
// written and what is checked are computed by the same code.
import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";
import { GENESIS, ReceiptEntry, ReceiptExportHeader, signedHead, type Receipt } from "../contract/receipt.js";

/** JSON with object keys sorted and no white space: the bytes an entry's hash is taken over. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

const sha256 = (s: string | Buffer): string => createHash("sha256").update(s).digest("hex");

/** SHA-256 of an entry's canonical JSON without its `hash`. */
export function entryHash(e: Omit<ReceiptEntry, "hash"> | ReceiptEntry): string {
  const { hash: _, ...rest } = e as ReceiptEntry;
  return sha256(canonicalJson(rest));
}

/** The SHA-256 (hex) of a public key's SPKI DER: the key's id. */
export function keyIdOf(key: KeyObject): string {
  return sha256(key.export({ type: "spki", format: "der" }));
}

/** The next receipt entry after (seq, prev), its hash computed. */
export function receiptEntry(seq: number, prev: string, time: string, receipt: Receipt): ReceiptEntry {
  const e = { seq, prev, time, kind: "receipt" as const, receipt };
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
  const e = { seq, prev, time, kind: "checkpoint" as const, keyId, signature };
  return { ...e, hash: entryHash(e) };
}

/** An entry as one log line (canonical JSON and a newline). */
export function entryLine(e: ReceiptEntry): string {
  return canonicalJson(e) + "\n";
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

/**
 * Checks a receipt log or export: every entry parses, its hash matches its content (not for a
 * redacted one), its seq follows the previous one and its prev is the previous entry's hash, and
 * every checkpoint's signature verifies with the key (`publicKey`, else the export header's; a log
 * without either is checked for its chain only and reports so). A chain may start at any seq (an
 * export --since) but never skip one. Stops at the first bad entry.
 */
export function verifyReceipts(text: string, publicKey?: KeyObject): VerifyReport {
  const r: VerifyReport = {
    ok: true,
    receipts: 0,
    redacted: 0,
    checkpoints: 0,
    chains: 0,
    unsigned: 0,
    keyIds: [],
  };
  const lines = text.split("\n");
  // the text after the last newline: empty, or an interrupted append
  const tail = lines.pop() ?? "";
  let key = publicKey;
  let prev: { seq: number; hash: string } | undefined;
  const bad = (line: number, why: string): VerifyReport => ({ ...r, ok: false, bad: { line, why } });
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
    if ((v as { kind?: unknown })?.kind === "export") {
      const h = ReceiptExportHeader.safeParse(v);
      if (!h.success) return bad(n, `export header: ${h.error.issues[0]?.message ?? "invalid"}`);
      if (!publicKey) {
        try {
          key = keyFrom(h.data.publicKey);
        } catch {
          return bad(n, "export header: the public key does not parse");
        }
        if (keyIdOf(key) !== h.data.keyId) return bad(n, "export header: keyId is not the key's");
      }
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
    // the hash covers the line as written, fields the schema does not know included
    if (e.kind !== "redacted" && entryHash(v as ReceiptEntry) !== e.hash)
      return bad(n, `seq ${e.seq}: its content does not match its hash (the entry was changed)`);
    if (e.kind === "redacted" && Object.keys(v as object).length !== 5)
      return bad(n, `seq ${e.seq}: a redacted entry carries only seq, prev, time, kind and hash`);
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
      if (key) {
        if (keyIdOf(key) !== e.keyId)
          return bad(n, `checkpoint seq ${e.seq}: signed by key ${e.keyId.slice(0, 16)}…, not the given key`);
        if (!verify(null, Buffer.from(signedHead(e.seq, e.prev)), key, Buffer.from(e.signature, "base64")))
          return bad(n, `checkpoint seq ${e.seq}: the signature does not verify`);
      }
      if (!r.keyIds.includes(e.keyId)) r.keyIds.push(e.keyId);
    }
    r.unsigned = e.kind === "checkpoint" ? 0 : r.unsigned + 1;
    r.last = e.seq;
    prev = { seq: e.seq, hash: e.hash };
  }
  // the relay writes each entry with its newline in one write and, at its next start, cuts what
  // follows the last newline: a last line without one is an interrupted append, never an entry
  if (tail.length) r.partialTail = lines.length + 1;
  return r;
}
