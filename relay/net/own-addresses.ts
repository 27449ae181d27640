// The host's own interface addresses (a pod's: its network namespace's), read at most once per
// OWN_ADDRESSES_TTL_MS. networkInterfaces() is a getifaddrs(3) and an object per address, about
// 80 us here, and loop detection read it for every hop of every delivery: 6% of the relay's CPU at
// 2 KB x C=1, on the event loop the next message's accept waits for (issue 18, docs/benchmarks.md).
// A pod's addresses are set when its sandbox is made; a host whose addresses change (a DHCP
// renewal, an address added by hand) is seen within the TTL. Until then a hop on a just-added
// address of this host is not known as myself: mail to it may come back to this relay, round after
// round for at most that second, each time with one more Received: header, and the hop limit
// (inbound/trace.ts, 50 by default) stops it whatever the TTL. Nobody outside the host can add an
// address to it.
import { networkInterfaces } from "node:os";

export const OWN_ADDRESSES_TTL_MS = 1000;

let cached: { at: number; list: readonly string[] } | undefined;

/** Every address of every interface of this host (lo's too), at most OWN_ADDRESSES_TTL_MS old. */
export function ownAddresses(now = performance.now()): readonly string[] {
  if (cached && now - cached.at < OWN_ADDRESSES_TTL_MS && now >= cached.at) return cached.list;
  const list = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
  cached = { at: now, list };
  return list;
}
