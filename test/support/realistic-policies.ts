// Many MailDomainPolicy specs that look like a real fleet's (issue 18): varied partner names, an exact
// domain and its subdomains' wildcard, every enforcing TLS mode, some with a next hop, a minimum TLS
// version, name pins or partner sending hosts. Deterministic (same i, same spec), so a size measured
// on them is reproducible. Used where the config's size is the point: the unit test of its encoding
// and the integration test that 10,000 of them fit one ConfigMap.
const WORDS = [
  "acme", "globex", "initech", "umbrella", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent",
  "hooli", "vandelay", "massive", "dynamic", "north", "south", "alpine", "harbor", "pioneer", "summit",
  "logistics", "freight", "health", "clinic", "bank", "insure", "legal", "partners", "energy", "media",
]; // prettier-ignore
const TLDS = ["example", "example.com", "example.net", "example.org", "co.example", "example.de"];
const MODES = ["required", "verify", "mta-sts", "dane", "required", "mta-sts"] as const;

/** Partner i's domain: two words, a number, a TLD (unique per i). */
export function realisticDomain(i: number): string {
  const a = WORDS[i % WORDS.length]!;
  const b = WORDS[Math.floor(i / WORDS.length) % WORDS.length]!;
  return `${a}-${b}-${i}.${TLDS[i % TLDS.length]!}`;
}

/** The spec of partner i's MailDomainPolicy. */
export function realisticPolicySpec(i: number): Record<string, unknown> {
  const domain = realisticDomain(i);
  const mode = MODES[i % MODES.length]!;
  const tls: Record<string, unknown> = { mode };
  if (mode === "verify") {
    tls.trustSystemRoots = true;
    tls.matchNames = [`mx1.${domain}`, `mx2.${domain}`];
  }
  if (i % 3 === 0) tls.minVersion = "TLSv1.3";
  const outbound: Record<string, unknown> = { tls };
  if (i % 5 === 0) outbound.nextHop = { host: `smtp.${domain}`, port: 25 };
  const spec: Record<string, unknown> = { domains: [domain, `*.${domain}`], outbound };
  if (i % 4 === 0)
    spec.inbound = {
      hosts: [`198.51.${(i >> 8) % 256}.${i % 256}/32`, `2001:db8:${(i % 65536).toString(16)}::/48`],
      require: "tls",
    };
  return spec;
}
