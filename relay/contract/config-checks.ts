// The checks a RelayConfig must pass beyond its zod schema (config.ts): cross-references between its
// parts. Both sides run them: the operator before it writes a config (operator/compile/), the relay
// when it loads one (relay/config/load.ts), so a config the relay would refuse is never applied. Pure.
import { isIP, SocketAddress } from "node:net";
import { parseCidr } from "./cidr.js";
import type { Credential, RelayConfig } from "./config.js";
import { checkOwnDomains } from "./own-domains.js";
import { dkimProblems } from "./dkim-config.js";
import { domainDigest } from "./domains.js";

/** Cross-field checks the schema cannot express. Pure; returns problems (empty when fine). */
export function checkReferences(c: RelayConfig): string[] {
  const problems: string[] = [];
  const cred = (name: string): Credential | undefined => c.credentials[name];
  // one outbound at a time, its label built only for a problem: the operator runs this on every
  // compile of every relay (10,000 policies: issue 18), the relay on every load
  const checkOutbound = (policy: string | undefined, o: RelayConfig["defaultOutbound"]): void => {
    const what = (): string => (policy === undefined ? "defaultOutbound" : `policy ${policy}`);
    if (o.authCredential !== undefined) {
      const k = cred(o.authCredential);
      if (!k || k.type !== "password" || k.usage !== "outbound")
        problems.push(`${what()}: authCredential ${o.authCredential} is not an outbound password credential`);
    }
    const signing = (field: string, name: string | undefined): void => {
      if (name === undefined) return;
      const k = cred(name);
      if (!k || k.type !== "clientCertificate" || k.usage !== "outbound")
        problems.push(`${what()}: ${field} ${name} is not an outbound clientCertificate credential`);
    };
    signing("smime.signingCredential", o.smime?.signingCredential);
    const fb = o.tlsFallback;
    signing(
      "tlsFallback.smime.signingCredential",
      fb?.action === "smime" ? fb.smime.signingCredential : undefined,
    );
    if (o.smime && o.openpgp)
      problems.push(`${what()}: smime and openpgp both set; a message is encrypted with one of them`);
    if (o.tls.clientCredential !== undefined) {
      const k = cred(o.tls.clientCredential);
      if (!k || k.type !== "clientCertificate" || k.usage !== "outbound")
        problems.push(
          `${what()}: clientCredential ${o.tls.clientCredential} is not an outbound clientCertificate credential`,
        );
    }
  };
  checkOutbound(undefined, c.defaultOutbound);
  for (const p of c.policies) checkOutbound(p.name, p.outbound);
  for (const p of c.policies) {
    for (const n of p.inbound?.credentials ?? []) {
      const k = cred(n);
      if (!k || k.type !== "password" || k.usage !== "inbound")
        problems.push(`policy ${p.name}: inbound credential ${n} is not an inbound password credential`);
    }
  }
  // Exactly one policy decides a domain: the same pattern in two policies (or in a policy and a
  // deferred one) is ambiguous.
  const owner = new Map<string, string>();
  for (const list of [c.policies, c.deferredPolicies])
    for (const p of list)
      for (const d of p.domains) {
        const k = d.toLowerCase();
        const prev = owner.get(k);
        if (prev !== undefined && prev !== p.name)
          problems.push(`domain pattern ${d} is claimed by both ${prev} and ${p.name}`);
        owner.set(k, p.name);
      }
  // and a pattern deferred by digest (a policy left out because the config would not fit with it)
  const digestOwner = new Map<string, string>();
  for (const p of c.deferredPolicies) for (const d of p.domainDigests ?? []) digestOwner.set(d, p.name);
  if (digestOwner.size)
    for (const [k, name] of owner) {
      const prev = digestOwner.get(domainDigest(k));
      if (prev !== undefined && prev !== name)
        problems.push(`domain pattern ${k} is claimed by both ${prev} and ${name}`);
    }
  problems.push(...dkimProblems(c.dkim));
  const ranges = inboundRangeProblem(c);
  if (ranges) problems.push(ranges);
  problems.push(...portClashes(c));
  problems.push(...checkOwnDomains(c.ownDomains, c.inbound.localDomains));
  return problems;
}

/**
 * The first address range the relay could not read (relayFrom, a policy's inbound.hosts), named as
 * relay/inbound/rules.ts's compileInbound names it, or undefined.
 */
function inboundRangeProblem(c: RelayConfig): string | undefined {
  const lists = [
    { what: "inbound.relayFrom", ranges: c.inbound.relayFrom },
    // a listener's PROXY protocol sources (relay/inbound/proxy-protocol.ts throws at its start)
    ...LISTENERS.flatMap((n) => {
      const pp = c.listeners[n].proxyProtocol;
      return pp ? [{ what: `listeners.${n}.proxyProtocol.trustedCidrs`, ranges: pp.trustedCidrs }] : [];
    }),
    ...[...c.policies, ...c.deferredPolicies].flatMap((p) =>
      p.inbound ? [{ what: `policy ${p.name} inbound.hosts`, ranges: p.inbound.hosts }] : [],
    ),
  ];
  for (const { what, ranges } of lists)
    for (const r of ranges) {
      const parsed = parseCidr(r);
      if (!parsed.ok) return `${what}: ${parsed.message}`;
    }
  return undefined;
}

const LISTENERS = ["smtp", "smtps", "submission"] as const;

/**
 * Two of the pod's sockets on one port: the enabled listeners, the admin port and the MTA-STS
 * endpoint bind at start, where a clash is EADDRINUSE (a pod that cannot start); a reload takes
 * listener changes only at the next restart, so the config was taken silently and the next pod
 * crash-looped. Port 0 is any free port. Hosts that differ and are no wildcard do not clash.
 */
function portClashes(c: RelayConfig): string[] {
  const binds = [
    ...LISTENERS.filter((n) => c.listeners[n].enabled).map((n) => ({
      what: `listeners.${n}`,
      ...c.listeners[n],
    })),
    { what: "admin", port: c.admin.port, host: c.admin.host },
    ...(c.ownDomains?.mtaSts
      ? [{ what: "ownDomains.mtaSts", port: c.ownDomains.mtaSts.port, host: c.ownDomains.mtaSts.host }]
      : []),
  ].filter((b) => b.port !== 0);
  const problems: string[] = [];
  for (const [i, a] of binds.entries())
    for (const b of binds.slice(i + 1))
      if (a.port === b.port && sameSocket(a.host, b.host))
        problems.push(`${a.what} and ${b.what} both bind port ${a.port}: give each its own port`);
  return problems;
}

/**
 * Whether two hosts bound on one port collide: the same address, or a wildcard and an address it
 * covers. node binds "::" dual-stack, so it covers every address; "0.0.0.0" covers the IPv4 ones
 * (and a name, which may resolve to one). Addresses are compared as parsed (::0 is ::). Pure.
 */
function sameSocket(a: string, b: string): boolean {
  const kind = (h: string): "any" | "any4" | 4 | 6 | "name" => {
    const family = isIP(h);
    if (h === "" || (family === 6 && /^[0:]+$/.test(h))) return "any";
    if (family === 4 && /^0+\.0+\.0+\.0+$/.test(h)) return "any4";
    return family === 4 ? 4 : family === 6 ? 6 : "name";
  };
  const [ka, kb] = [kind(a), kind(b)];
  if (ka === "any" || kb === "any") return true;
  if (ka === "any4" || kb === "any4") return ka !== 6 && kb !== 6;
  return canonicalHost(a) === canonicalHost(b);
}

/** An IPv6 address in one spelling (::1 and 0:0:0:0:0:0:0:1 alike); anything else as written. */
function canonicalHost(h: string): string {
  return isIP(h) === 6 ? new SocketAddress({ address: h, family: "ipv6" }).address : h.toLowerCase();
}
