// The admin API's signed requests: the operator (its /status probe and /check requests) and
// `sealpost queue` prove they hold the admin token without sending it. The bearer token crossed the
// pod network in clear, where a pod that can forge addresses on the node's bridge (CAP_NET_RAW, a CNI
// without source checks) poses as the relay pod and reads it (test/e2e/node-install.test.ts).
//
//   Authorization: Sealpost-HMAC t=<ms since the epoch>,n=<32 hex nonce>,s=<64 hex>
//   s = HMAC-SHA256(token, METHOD "\n" request-target "\n" host "\n" t "\n" n)
//
// The relay accepts a signature within ADMIN_SIGNATURE_WINDOW_MS of its clock and each nonce once,
// so a request read on the way can be neither replayed nor turned into another path or pod. The body
// is not covered (whoever is in the path can answer in the relay's place anyway); the token is what
// this keeps. Shared by the relay and the operator: no I/O.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const ADMIN_SIGNATURE_SCHEME = "Sealpost-HMAC";
/** How far a signature's time may be from the relay's clock, either way. */
export const ADMIN_SIGNATURE_WINDOW_MS = 5 * 60_000;
/** Nonces remembered at most (a flood beyond this is refused, never forgotten early). */
const NONCES_MAX = 100_000;

const signed = (token: string, method: string, target: string, host: string, t: string, n: string) =>
  createHmac("sha256", token)
    .update([method.toUpperCase(), target, host.toLowerCase(), t, n].join("\n"))
    .digest();

/** The Authorization header value for one request (target: path and query, as sent). */
export function signAdminRequest(
  token: string,
  method: string,
  target: string,
  host: string,
  now: number = Date.now(),
): string {
  const t = String(Math.floor(now));
  const n = randomBytes(16).toString("hex");
  return `${ADMIN_SIGNATURE_SCHEME} t=${t},n=${n},s=${signed(token, method, target, host, t, n).toString("hex")}`;
}

const HEADER = /^Sealpost-HMAC t=(\d{1,16}),n=([0-9a-f]{32}),s=([0-9a-f]{64})$/;

/** Checks signed requests against the token; remembers the nonces it let in. */
export class AdminSignatures {
  private readonly seen = new Map<string, number>();
  constructor(private readonly now: () => number = Date.now) {}

  verify(header: string | undefined, token: string, method: string, target: string, host: string): boolean {
    const m = HEADER.exec(header ?? "");
    if (!m || !token || !host) return false;
    const [, t, n, s] = m as unknown as [string, string, string, string];
    const now = this.now();
    if (Math.abs(now - Number(t)) > ADMIN_SIGNATURE_WINDOW_MS) return false;
    if (!timingSafeEqual(signed(token, method, target, host, t, n), Buffer.from(s, "hex"))) return false;
    for (const [nonce, until] of this.seen) {
      if (until >= now) break; // in the order let in: the rest is about as recent
      this.seen.delete(nonce);
    }
    if (this.seen.has(n) || this.seen.size >= NONCES_MAX) return false;
    this.seen.set(n, Number(t) + ADMIN_SIGNATURE_WINDOW_MS);
    return true;
  }
}
