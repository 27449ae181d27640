// A tenant's policy flood, as the config-fit attack tests write it: domain names gzip cannot shrink.
import { randomBytes } from "node:crypto";
import { MailRelay } from "../../operator/api.js";
import type { PolicyObject } from "../../operator/objects.js";
import { fakeReconcilerDeps, policyObject, recordedSince, relayObject } from "./operator-fixtures.js";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A DNS label of `n` random [a-z0-9] characters starting with a letter. */
export const randomLabel = (n: number): string =>
  "q" + [...randomBytes(n - 1)].map((x) => ALPHABET[x % ALPHABET.length]).join("");

/** A policy's worth of them: 64 domains of three 62-character random labels (196 characters each). */
export const floodDomains = (): string[] =>
  Array.from({ length: 64 }, () => `${randomLabel(62)}.${randomLabel(62)}.${randomLabel(62)}.example`);

/** Four random hex digits: one group of an IPv6 address. */
export const hex4 = (): string => randomBytes(2).toString("hex");

/** A policy's worth of partner hosts gzip cannot shrink: 64 random IPv6 /128 ranges in 2001:db8::/32. */
export const floodV6Hosts = (): string[] =>
  Array.from(
    { length: 64 },
    () => `2001:db8:${hex4()}:${hex4()}:${hex4()}:${hex4()}:${hex4()}:${hex4()}/128`,
  );

/** The time `i` seconds after 2026-01-01, as the flood tests date claims and selections. */
export const floodAt = (i: number): string =>
  new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + i * 1000).toISOString();

/** The relay the flood tests' policies are recorded on (operator-fixtures recordedSince). */
export const FLOOD_RELAY = { name: "edge", uid: "u-edge" };

/**
 * `n` tenant policies that weigh as much left out as kept in (a long random name, floodDomains,
 * floodV6Hosts requiring TLS), selected by FLOOD_RELAY from floodAt(1000 + from + i).
 */
export function hostFlood(n: number, from = 0): PolicyObject[] {
  return Array.from({ length: n }, (_, i) =>
    recordedSince(
      policyObject(`t${randomLabel(200)}`, floodDomains(), {
        uid: `u-t-${from + i}`,
        spec: { inbound: { hosts: floodV6Hosts(), require: "tls" } },
      }),
      floodAt(1000 + from + i),
      FLOOD_RELAY,
    ),
  );
}

/**
 * FLOOD_RELAY (MailRelay "edge" with its uid, which the claim records name) compiled over `policies`
 * by the operator's compiler, and a policy's verdict on it.
 */
export function compiledOnFloodRelay(policies: PolicyObject[]) {
  const relayRaw = relayObject(FLOOD_RELAY.name, { relay: FLOOD_RELAY.name });
  (relayRaw.metadata as { uid: string }).uid = FLOOD_RELAY.uid;
  const relay = MailRelay.parse(relayRaw);
  const { deps } = fakeReconcilerDeps([relayRaw], policies);
  return {
    config: deps.compiler.compile(relay).config,
    verdict: (p: PolicyObject) => deps.compiler.verdict(relay, p),
  };
}
