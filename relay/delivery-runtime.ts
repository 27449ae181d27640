// The Deliverer (relay/outbound/deliver.ts) as the relay runs it, built from one view of the relay:
// its loaded config, resolver, destination filter, own listeners, the MTA-STS lookup and the
// delivery observers. One builder for the two places a Deliverer runs, so they cannot drift: the
// delivery thread (delivery-worker.ts, the default: deliveries off the loop that accepts, issue
// 18) and the relay's own thread (delivery-thread.ts `InProcessDelivery`: a relay given a clock of
// its own, which cannot cross to a thread).
import { dkimKeyFor, materialFor, openpgpMaterialFor, smimeMaterialFor } from "./config/key-material.js";
import { fileOf, type LoadedConfig } from "./config/load.js";
import type { deliveryObservers } from "./delivery-observers.js";
import type { ListenerKind } from "./inbound/rules.js";
import type { Logger } from "./log.js";
import type { DestinationFilter } from "./net/address-class.js";
import { ownAddresses } from "./net/own-addresses.js";
import { Deliverer } from "./outbound/deliver.js";
import { makeSecureDns } from "./outbound/dnssec.js";
import { isSelfHop, type SelfView } from "./outbound/loop.js";
import type { StsLookup } from "./outbound/mta-sts.js";
import type { Dns } from "./outbound/mx.js";
import type { ConnectionPool } from "./outbound/pool.js";
import type { Timeouts } from "./outbound/transport-options.js";
import { Wkd } from "./outbound/wkd.js";

/** What the relay does with each delivery event (delivery-observers.ts). */
export type DeliveryObservers = ReturnType<typeof deliveryObservers>;

/** The events a Deliverer reports, by name: what crosses from the delivery thread to the relay. */
export const OBSERVER_NAMES = [
  "onMtaSts",
  "onSmime",
  "onFallback",
  "onDkim",
  "onOpenpgp",
  "onAttempt",
  "onTransmitted",
] as const satisfies readonly (keyof DeliveryObservers)[];
export type ObserverName = (typeof OBSERVER_NAMES)[number];

export interface DeliveryView {
  loaded: () => LoadedConfig;
  resolver: () => Dns | undefined;
  destinations: () => DestinationFilter;
  /** The listeners as bound (loop detection compares next hops with them). */
  bound: () => Iterable<readonly [ListenerKind, number]>;
  mtaSts: (domain: string) => Promise<StsLookup>;
  observers: DeliveryObservers;
  log: Logger;
  pool: ConnectionPool;
  timeouts: Timeouts;
  mxPort: number;
  exceptionClock?: () => Date;
}

/** What loop detection compares next hops with: the listeners as bound, the host's addresses. */
export function selfViewOf(l: LoadedConfig, bound: Iterable<readonly [ListenerKind, number]>): SelfView {
  const c = l.config;
  return {
    hostname: c.hostname,
    listeners: [...bound].map(([kind, port]) => ({ host: c.listeners[kind].host, port })),
    interfaceAddresses: ownAddresses(),
    proxyAddresses: c.selfAddresses,
  };
}

export function buildDeliverer(v: DeliveryView): Deliverer {
  const config = () => v.loaded().config;
  const wkd = new Wkd({
    dns: v.resolver,
    cacheDir: () => config().queue.dir,
    ca: () => {
      const f = config().wkd.caFile;
      return f ? fileOf(v.loaded(), f) : undefined;
    },
    httpsPort: () => config().wkd.httpsPort ?? 443,
    ttlMs: () => config().wkd.cacheTtlSeconds * 1000,
    fetchDeadlineMs: () => config().delivery.fetchTimeoutSeconds * 1000,
    destinations: v.destinations,
    secureDns: () => makeSecureDns(config().dns.servers),
  });
  return new Deliverer({
    pool: v.pool,
    dns: v.resolver,
    secureDns: () => makeSecureDns(config().dns.servers),
    material: (route) => materialFor(v.loaded(), route),
    ehloName: () => config().hostname,
    mtaSts: v.mtaSts,
    smime: (route) => smimeMaterialFor(v.loaded(), route, v.log),
    dkim: () => config().dkim,
    dkimKey: (entry) => dkimKeyFor(v.loaded(), entry),
    openpgp: (route) => openpgpMaterialFor(v.loaded(), route, v.log),
    wkd: (address) => wkd.lookup(address),
    timeouts: v.timeouts,
    limits: () => config().delivery,
    maxConcurrent: () => config().queue.workers,
    destinations: v.destinations,
    mxPort: v.mxPort,
    isSelf: (hop) => isSelfHop(selfViewOf(v.loaded(), v.bound()), hop),
    ...(v.exceptionClock ? { exceptionClock: v.exceptionClock } : {}),
    ...v.observers,
  });
}
