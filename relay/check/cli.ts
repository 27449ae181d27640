// `sealpost check <domain> [--json] [--ca-file F] [--dns HOST:PORT] [--port N] [--timeout S]`: the
// pre-flight check from wherever it runs (a relay pod with `kubectl exec`, or any host with network).
// It never sends mail: EHLO, STARTTLS, a handshake per TLS version, QUIT. Exit code 0 when a report
// was made (whatever it says), 2 on a usage error.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { canonicalDomain } from "../contract/domains.js";
import { safeJson } from "../printable.js";
import { makeSecureDns } from "../outbound/dnssec.js";
import { parseDnsServer } from "../contract/dns-server.js";
import { MtaSts } from "../outbound/mta-sts.js";
import { makeResolver } from "../outbound/mx.js";
import { helpText, positiveInt, UsageError, type HelpDoc } from "../../bin/usage.js";
import { runCheck } from "./run.js";
import { checkText } from "./text.js";

export const CHECK_HELP: HelpDoc = {
  usage: "sealpost check <domain> [flags]",
  description:
    "Pre-flight check of a partner domain before its TLS becomes mandatory: MX (with DNSSEC), per MX host STARTTLS, TLS versions, cipher, certificate chain, names, verification, TLSA/DANE and MTA-STS, and the strictest mode that would succeed today. Sends no mail.",
  flags: [
    { flag: "--json", description: "print the report as JSON (relay/contract/check.ts)" },
    {
      flag: "--ca-file",
      arg: "FILE",
      description: "PEM bundle to verify against (verify, mta-sts and the MTA-STS policy fetch)",
      default: "the system roots",
    },
    { flag: "--dns", arg: "HOST:PORT", description: "a validating resolver to ask", default: "the system's" },
    { flag: "--port", arg: "N", description: "the MX hosts' SMTP port", default: "25" },
    { flag: "--timeout", arg: "S", description: "seconds each step may take", default: "10" },
    { flag: "--ehlo", arg: "NAME", description: "the EHLO name", default: "the host name" },
    {
      flag: "--mta-sts-port",
      arg: "N",
      description: "HTTPS port of the MTA-STS policy host (tests)",
      default: "443",
    },
    { flag: "-h, --help", description: "this help" },
  ],
};

export interface CheckCliIo {
  out(s: string): void;
  err(s: string): void;
}

interface Args {
  domain: string;
  json: boolean;
  caFile?: string;
  dns?: string;
  port: number;
  timeoutMs: number;
  ehlo: string;
  stsPort: number;
}

function parse(argv: string[]): Args | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: "boolean" },
      "ca-file": { type: "string" },
      dns: { type: "string" },
      port: { type: "string" },
      timeout: { type: "string" },
      ehlo: { type: "string" },
      "mta-sts-port": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (positionals.length !== 1) throw new UsageError("give exactly one domain to check");
  const domain = canonicalDomain(positionals[0]!);
  if (!domain || !domain.includes(".")) throw new UsageError(`"${positionals[0]}" is not a domain name`);
  if (values.dns !== undefined && !parseDnsServer(values.dns))
    throw new UsageError(
      `--dns must be an IP address with an optional port (HOST:PORT), not "${values.dns}"`,
    );
  return {
    domain,
    json: values.json === true,
    ...(values["ca-file"] !== undefined ? { caFile: values["ca-file"] } : {}),
    ...(values.dns !== undefined ? { dns: values.dns } : {}),
    port: values.port !== undefined ? positiveInt("--port", values.port, 65535) : 25,
    timeoutMs: (values.timeout !== undefined ? positiveInt("--timeout", values.timeout, 600) : 10) * 1000,
    ehlo: values.ehlo ?? "sealpost-check.invalid",
    stsPort:
      values["mta-sts-port"] !== undefined
        ? positiveInt("--mta-sts-port", values["mta-sts-port"], 65535)
        : 443,
  };
}

export async function runCheckCli(argv: string[], io: CheckCliIo): Promise<number> {
  let a: Args | "help";
  try {
    a = parse(argv);
  } catch (e) {
    io.err(`sealpost check: ${(e as Error).message}\nRun 'sealpost check --help' for the flags.\n`);
    return 2;
  }
  if (a === "help") {
    io.out(helpText(CHECK_HELP));
    return 0;
  }
  let ca: Buffer | undefined;
  if (a.caFile) {
    try {
      ca = await readFile(a.caFile);
    } catch (e) {
      io.err(`sealpost check: --ca-file ${a.caFile}: ${(e as Error).message}\n`);
      return 2;
    }
  }
  const servers = a.dns ? [a.dns] : undefined;
  const dns = makeResolver(servers, a.timeoutMs);
  // a fresh MTA-STS cache: the check reports what the domain publishes now
  const cacheDir = await mkdtemp(join(tmpdir(), "sealpost-check-"));
  try {
    const sts = new MtaSts({
      dns: () => dns,
      cacheDir: () => cacheDir,
      ca: () => ca,
      httpsPort: () => a.stsPort,
      timeoutMs: a.timeoutMs,
    });
    const report = await runCheck(a.domain, {
      dns,
      secureDns: makeSecureDns(servers, a.timeoutMs),
      sts: (d) => sts.lookup(d),
      port: a.port,
      probe: { ehloName: a.ehlo, timeoutMs: a.timeoutMs, ...(ca ? { ca } : {}) },
    });
    io.out(a.json ? safeJson(report, 2) + "\n" : checkText(report));
    return 0;
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}
