// The encryption receipts a test relay wrote (relay/receipts/receipt-log.ts): the receipt entries of
// <queue>/receipts/log.jsonl, parsed with the contract's schema (checkpoints left out); none yet: [].
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ReceiptEntry, type Receipt } from "../../relay/contract/receipt.js";

export async function readReceipts(queueDir: string): Promise<Receipt[]> {
  const text = await readFile(join(queueDir, "receipts", "log.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => ReceiptEntry.parse(JSON.parse(l)))
    .flatMap((e) => (e.kind === "receipt" ? [e.receipt] : []));
}
