// A private validating resolver for DANE tests: unbound on a free loopback port, with no root hints
// in use, validating only the zones it is told about: each test zone is a stub-zone pointing at the
// test's NSD (signed-zone.ts), and each signed zone's DS is a trust-anchor. A zone without an anchor
// above it validates as insecure (AD=0), never bogus. `local-zone: "test." nodefault` undoes
// unbound's built-in RFC 6761 local zone for .test, `do-not-query-localhost: no` lets it ask NSD on
// loopback. Needs the unbound package (scripts/setup.sh).
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { startProcess } from "./process.js";
import { ready } from "./signed-zone.js";

export interface UnboundOptions {
  /** Zones answered by an authoritative server: name -> "127.0.0.1@<port>". */
  stubs: { name: string; addr: string }[];
  /** DS (or DNSKEY) records in presentation form. */
  trustAnchors: string[];
  /** A name that resolves (A) once the resolver is up. */
  probe: string;
}

export interface Unbound {
  port: number;
  /** "127.0.0.1:<port>": the form of the relay config's dns.servers. */
  address: string;
  stop(): Promise<void>;
  log(): Promise<string>;
}

export async function startUnbound(dir: string, o: UnboundOptions): Promise<Unbound> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(dir, "unbound.conf");
    await writeFile(
      conf,
      [
        "server:",
        `  interface: 127.0.0.1@${port}`,
        `  port: ${port}`,
        "  do-ip6: no",
        "  access-control: 127.0.0.0/8 allow",
        '  username: ""',
        '  chroot: ""',
        `  directory: "${dir}"`,
        `  pidfile: "${join(dir, "unbound.pid")}"`,
        "  use-syslog: no",
        "  verbosity: 1",
        "  val-log-level: 2",
        "  num-threads: 1",
        '  module-config: "validator iterator"',
        "  do-not-query-localhost: no",
        '  local-zone: "test." nodefault',
        ...o.trustAnchors.map((a) => `  trust-anchor: "${a}"`),
        "remote-control:",
        "  control-enable: no",
        ...o.stubs.flatMap((s) => ["stub-zone:", `  name: "${s.name}"`, `  stub-addr: ${s.addr}`]),
      ].join("\n") + "\n",
    );
    const proc = startProcess("unbound", "unbound", ["-d", "-c", conf], join(dir, "unbound.log"));
    try {
      await ready(proc, port, o.probe);
      return {
        port,
        address: `127.0.0.1:${port}`,
        stop: () => proc.stop(3000),
        log: () => readFile(proc.logFile, "utf8"),
      };
    } catch (e) {
      lastError = new Error(`${(e as Error).message}\n${await proc.log().catch(() => "")}`);
      await proc.stop(1000);
    }
  }
  throw lastError;
}
