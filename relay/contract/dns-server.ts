// How the relay reads a resolver's address (a MailRelay's spec.dns.servers): part of the contract,
// because the relay's config schema refuses what its resolvers could not use. node:dns's
// Resolver.setServers throws on anything else (10.0.0.300, a port above 65535), and a relay that
// took such a config would fail while applying it: half of it applied, or a pod that cannot start.
// Pure.
import { isIP } from "node:net";

export interface DnsServer {
  host: string;
  port: number;
}

/** "ip", "ip:port", "[v6]" or "[v6]:port" (the forms Resolver.setServers takes), port 1-65535. */
export function parseDnsServer(s: string): DnsServer | undefined {
  const v6 = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  const v4 = /^([^:]+):(\d{1,5})$/.exec(s);
  const [host, port] = v6 ? [v6[1]!, v6[2]] : v4 ? [v4[1]!, v4[2]] : [s, undefined];
  // a zone (fe80::1%eth0): isIP takes it, setServers drops it and every lookup then fails
  if (host.includes("%") || !isIP(host) || (v4 && isIP(host) !== 4)) return undefined;
  const n = Number(port ?? 53);
  return n >= 1 && n <= 65535 ? { host, port: n } : undefined;
}
