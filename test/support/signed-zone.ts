// DNSSEC test zones, made at test time: zone files written to a temp dir, optionally signed with
// ldns-signzone (keys from ldns-keygen: a KSK and a ZSK, ECDSA P-256), and served by a private NSD
// (authoritative only) on a free loopback port. The signed zone's DS record is the trust anchor a
// validating resolver (unbound.ts) is given. Needs the nsd and ldnsutils packages (scripts/setup.sh).
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeSecureDns } from "../../relay/outbound/dnssec.js";
import { freePort } from "./ports.js";
import { startProcess, waitFor, type Managed } from "./process.js";

const run = promisify(execFile);

export interface ZoneSpec {
  /** Zone apex, e.g. "signed.test" (no trailing dot). */
  origin: string;
  /** Records in zone-file syntax, names relative to the origin ("@", "mx", "_25._tcp.mx"). */
  records: string[];
  /** Sign the zone (ldns-signzone). */
  sign: boolean;
  /**
   * Make the published trust anchor wrong (the DS of a key the zone is not signed with): a
   * validating resolver then finds every answer bogus and answers SERVFAIL.
   */
  wrongAnchor?: boolean;
}

export interface BuiltZone {
  origin: string;
  /** The zone file NSD serves (the signed one for a signed zone). */
  file: string;
  /** DS record (presentation form) for a trust anchor; signed zones only. */
  ds?: string;
}

async function keygen(dir: string, origin: string, ksk: boolean): Promise<string> {
  const args = ["-a", "ECDSAP256SHA256", ...(ksk ? ["-k"] : []), origin];
  const { stdout } = await run("ldns-keygen", args, { cwd: dir });
  return join(dir, stdout.trim());
}

export async function buildZone(dir: string, spec: ZoneSpec): Promise<BuiltZone> {
  const zdir = join(dir, spec.origin);
  await mkdir(zdir, { recursive: true });
  const file = join(zdir, `${spec.origin}.zone`);
  const text = [
    `$ORIGIN ${spec.origin}.`,
    "$TTL 300",
    `@ IN SOA ns.${spec.origin}. hostmaster.${spec.origin}. 1 3600 600 86400 300`,
    `@ IN NS ns.${spec.origin}.`,
    "ns IN A 127.0.0.1",
    ...spec.records,
  ].join("\n");
  await writeFile(file, text + "\n");
  if (!spec.sign) return { origin: spec.origin, file };
  const ksk = await keygen(zdir, spec.origin, true);
  const zsk = await keygen(zdir, spec.origin, false);
  await run("ldns-signzone", ["-n", file, ksk, zsk], { cwd: zdir });
  const anchorKey = spec.wrongAnchor ? await keygen(zdir, spec.origin, true) : ksk;
  const { stdout } = await run("ldns-key2ds", ["-n", "-2", `${anchorKey}.key`], { cwd: zdir });
  const ds = stdout.trim().split("\n")[0]!.replace(/\s+/g, " ");
  return { origin: spec.origin, file: `${file}.signed`, ds };
}

export interface Nsd {
  port: number;
  /** "127.0.0.1@<port>": the form unbound's stub-addr takes. */
  stubAddr: string;
  stop(): Promise<void>;
  log(): Promise<string>;
}

/** A private NSD (not chrooted, no privilege drop, no control socket) serving `zones`. */
export async function startNsd(dir: string, zones: BuiltZone[]): Promise<Nsd> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(dir, "nsd.conf");
    await writeFile(
      conf,
      [
        "server:",
        `  ip-address: 127.0.0.1@${port}`,
        `  port: ${port}`,
        '  username: ""',
        '  chroot: ""',
        `  zonesdir: "${dir}"`,
        '  database: ""',
        `  zonelistfile: "${join(dir, "nsd.zone.list")}"`,
        `  xfrdfile: "${join(dir, "nsd.xfrd.state")}"`,
        `  xfrdir: "${dir}"`,
        `  pidfile: "${join(dir, "nsd.pid")}"`,
        "  server-count: 1",
        "  verbosity: 1",
        "remote-control:",
        "  control-enable: no",
        ...zones.flatMap((z) => ["zone:", `  name: ${z.origin}`, `  zonefile: "${z.file}"`]),
      ].join("\n") + "\n",
    );
    const proc = startProcess("nsd", "nsd", ["-d", "-c", conf], join(dir, "nsd.log"));
    try {
      await ready(proc, port, `ns.${zones[0]!.origin}`);
      return nsdHandle(proc, port);
    } catch (e) {
      lastError = new Error(`${(e as Error).message}\n${await proc.log().catch(() => "")}`);
      await proc.stop(1000);
    }
  }
  throw lastError;
}

/** Waits until `name` A resolves through 127.0.0.1:port (the server answers). */
export async function ready(proc: Managed, port: number, name: string): Promise<void> {
  const dns = makeSecureDns([`127.0.0.1:${port}`], 500);
  await waitFor(
    `${proc.name} answering on 127.0.0.1:${port}`,
    async () => {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null)
        throw new Error(`${proc.name} exited`);
      const a = await dns.query(name, "A");
      return a.rcode === "NOERROR" && a.answers.length ? true : undefined;
    },
    15_000,
    100,
  );
}

function nsdHandle(proc: Managed, port: number): Nsd {
  return {
    port,
    stubAddr: `127.0.0.1@${port}`,
    stop: () => proc.stop(3000),
    log: () => readFile(proc.logFile, "utf8"),
  };
}
