// Bytes of report bodies being read into memory (they are never spooled), over all readers and per
// client: one such budget for the HTTPS endpoint's POSTs (mta-sts-endpoint.ts) and one for report
// mails (inbound/tlsrpt-recipient.ts), each within a total and one report's worth per client, so one
// client's stalled uploads never take the others' room (attack reviews, sessions 6 and 7). Pure.
import { KeyCounts } from "../inbound/key-counts.js";

export class HeldBytes {
  private held = 0;
  private readonly byClient = new KeyCounts<string>();

  /** Bytes held over all clients. */
  get used(): number {
    return this.held;
  }

  /** Bytes `client` holds. */
  of(client: string): number {
    return this.byClient.get(client);
  }

  /** Takes `n` more bytes for `client` unless the total would pass `total` or its own `perClient`. */
  take(client: string, n: number, total: number, perClient: number): boolean {
    if (this.held + n > total || this.byClient.get(client) + n > perClient) return false;
    this.held += n;
    this.byClient.add(client, n);
    return true;
  }

  /** Gives back `n` bytes `client` took. */
  give(client: string, n: number): void {
    this.held -= n;
    this.byClient.remove(client, n);
  }
}
