// What decoding received TLS-RPT reports may cost the relay's one event loop (attack review,
// session 12). A valid report of the schema's largest size (100 policies of 1,000 failure details)
// is 39 KB gzipped and 9 MB of JSON, and takes 150-300 ms to decompress, parse and check; one client
// POSTing such reports back to back on its 8 connections held the loop for seconds at a time: the
// kubelet's probes, every SMTP session and every delivery waited. The loop's time spent decoding is
// now counted per minute, per client and in all; a client past its share, or anyone once the whole
// is spent, is answered "busy" (HTTPS 503, SMTP 452) before its report is decoded, and a sender
// retries later (RFC 8460 section 5.3). Real reports are a few KB and take well under a millisecond;
// a client's share is a second a minute, the whole four (at most 7% of the loop, no decode above
// a few hundred ms). Time, not bytes: a gzip bomb stopped at the decompressed limit costs a fraction
// of a valid report of half its size. A fixed minute (at most twice that across its edge), forgotten
// as a whole when it passes. Pure: the clock and the costs are given.

/** Milliseconds of decoding a client may cost the event loop in a minute. */
export const CLIENT_MS_PER_MINUTE = 1000;
/** Milliseconds of decoding all clients together may cost it. */
export const TOTAL_MS_PER_MINUTE = 4000;
const MINUTE_MS = 60_000;

export class DecodeBudget {
  private minute = -1;
  private total = 0;
  private readonly byClient = new Map<string, number>();

  constructor(
    private readonly perClient = CLIENT_MS_PER_MINUTE,
    private readonly whole = TOTAL_MS_PER_MINUTE,
  ) {}

  /**
   * What `client` may have decoded now: "any" report, only "small" ones (its own share is left but
   * the whole is spent: a few addresses spending the whole must not shut out every real reporter),
   * or "none" (its own share is spent).
   */
  allows(client: string, now: number): "any" | "small" | "none" {
    this.roll(now);
    if ((this.byClient.get(client) ?? 0) >= this.perClient) return "none";
    return this.total < this.whole ? "any" : "small";
  }

  /** `ms` spent decoding for `client` (whether the report was then kept or refused). */
  charge(client: string, ms: number, now: number): void {
    this.roll(now);
    this.total += ms;
    this.byClient.set(client, (this.byClient.get(client) ?? 0) + ms);
  }

  private roll(now: number): void {
    const m = Math.floor(now / MINUTE_MS);
    if (m === this.minute) return;
    this.minute = m;
    this.total = 0;
    this.byClient.clear();
  }
}
