#!/usr/bin/env node
// The image's single entry point (ENTRYPOINT ["node", "/app/dist/bin/sealpost.js"]):
//   sealpost operator [flags]          the operator (operator/main.ts; `operator --help` lists flags)
//   sealpost relay --config <dir>      a relay (relay/main.ts); the operator starts relay pods this way
// Both main modules run on import and parse process.argv themselves, so the subcommand is taken off
// argv before the module is loaded (dynamically: a relay never loads the operator's code, and back).
import { version } from "./usage.js";

const USAGE = `usage: sealpost <command> [flags]

Sealpost: a Kubernetes operator that runs secure mail relays (TLS per partner domain, fail closed).

commands:
  operator [flags]         run the operator (sealpost operator --help lists its flags)
  relay --config <dir>     run a mail relay from the config directory the operator mounts
                           (sealpost relay --help)
  import postfix [flags]   Postfix TLS policy/sasl_passwd/transport -> manifests (import postfix --help)
  queue <command> [flags]  inspect and act on a relay's queue over its admin port: list, show, hold,
                           release, requeue, delete, bounce, retry, flush, drain (sealpost queue --help)
  receipts <command>       encryption receipts: export (JSON lines), verify FILE
                           (sealpost receipts --help)
  check <domain> [flags]   pre-flight check of a partner domain's MX: STARTTLS, TLS, certificates,
                           DANE, MTA-STS, the strictest mode that would succeed (sealpost check --help)
  report [flags]           the transport security report per partner domain, from the policies'
                           status (sealpost report --help)

flags:
  -h, --help               this help
  -V, --version            the version
`;

const commands: Record<string, string> = {
  operator: "../operator/main.js",
  relay: "../relay/main.js",
  queue: "./queue.js",
  receipts: "./receipts.js",
  import: "./import.js",
  check: "./check.js",
  report: "./report.js",
};

const command = process.argv[2];
if (command === "--help" || command === "-h" || command === "help") {
  process.stdout.write(USAGE);
} else if (command === "--version" || command === "-V" || command === "version") {
  process.stdout.write(`sealpost ${version()}\n`);
} else if (command === undefined || !(command in commands)) {
  process.stderr.write(
    command === undefined
      ? USAGE
      : `sealpost: unknown command "${command}"\nRun 'sealpost --help' for the commands.\n`,
  );
  process.exitCode = 2;
} else {
  // node:util parseArgs reads process.argv.slice(2): make that the subcommand's own arguments
  process.argv.splice(2, 1);
  await import(commands[command]!);
}
