// Mail to myself, pure: a next hop (an MX or an explicit one) that is one of the relay's own
// listeners would hand the message straight back to it, round and round. As Postfix does, the
// relay drops such hops and every hop after them (MX records are in preference order: a less
// preferred exchanger than myself is not a way forward either); with none left before the first
// self hop, the recipients bounce: "mail for <domain> loops back to myself" (5.4.6).
import { normalizeIp } from "../inbound/rules.js";
import { fail, ok, type Result } from "../result.js";
import type { Hop } from "./transport-options.js";

export const MAIL_LOOPS = "MAIL_LOOPS";

export function withoutSelf(
  domain: string,
  hops: readonly Hop[],
  isSelf: (h: Hop) => boolean,
): Result<Hop[]> {
  const first = hops.findIndex(isSelf);
  if (first === -1) return ok([...hops]);
  if (first === 0) return fail(MAIL_LOOPS, false, `mail for ${domain} loops back to myself`);
  return ok(hops.slice(0, first));
}

export interface SelfView {
  /** The relay's host name (EHLO name): a hop of that name is the relay (or its fleet). */
  hostname: string;
  /** Bound listeners: the address each listens on ("0.0.0.0"/"::": every local address) and port. */
  listeners: readonly { host: string; port: number }[];
  /** The machine's own interface addresses. */
  interfaceAddresses: readonly string[];
}

const ANY = new Set(["0.0.0.0", "::", ""]);

/** Whether a hop is one of the relay's own listeners (or named as the relay). Pure. */
export function isSelfHop(v: SelfView, hop: Hop): boolean {
  const name = hop.name.toLowerCase().replace(/\.$/, "");
  if (name === v.hostname.toLowerCase().replace(/\.$/, "")) return true;
  const address = normalizeIp(hop.address);
  const local = (a: string): boolean =>
    /^127\./.test(a) || a === "::1" || v.interfaceAddresses.some((x) => normalizeIp(x) === a);
  return v.listeners.some(
    (l) => l.port === hop.port && (ANY.has(l.host) ? local(address) : normalizeIp(l.host) === address),
  );
}
