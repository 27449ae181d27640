// `sealpost import postfix [flags]`: reads the Postfix files named on the command line, prints the
// manifests (YAML, one document each) on stdout and one warning per line it cannot express on stderr.
// bin/import.ts runs it for bin/sealpost.ts; the mapping is in import.ts.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Document } from "yaml";
import { importPostfix, type ImportInput, type ImportResult, type SourceFile } from "./import.js";

export const IMPORT_USAGE = `usage: sealpost import postfix [flags] > manifests.yaml

Turns Postfix's outbound TLS policy, SASL passwords and routes into MailDomainPolicy, RelayCredential
and Secret manifests. Each line that cannot be expressed gets a warning on stderr (file:line: why and
what to do); nothing is mapped to a weaker policy than Postfix applied.

flags:
  --policy <file>        smtp_tls_policy_maps source file, e.g. /etc/postfix/tls_policy
  --sasl-passwd <file>   smtp_sasl_password_maps source file, e.g. /etc/postfix/sasl_passwd
  --transport <file>     transport_maps source file, e.g. /etc/postfix/transport
  --main-cf <file>       main.cf: relayhost and TLS defaults (level, CAfile, match; default: none)
  --relayhost <nexthop>  relayhost, e.g. [smtp.provider.example]:587 (overrides main.cf's)
  --namespace <ns>       metadata.namespace of every manifest (default: none; use kubectl apply -n)
  --include-passwords    write the passwords into the Secrets (default: placeholder ${"REPLACE-ME"})
  -h, --help             this text

exit status: 0 every line mapped (warnings may still note caveats), 1 some line was not mapped,
2 bad usage or unreadable file.
`;

/** YAML for the manifests, each under a comment saying where it came from. */
export function render(result: ImportResult): string {
  return result.manifests
    .map(({ source, ...m }) => {
      return `# from ${source}\n${new Document(m).toString({ lineWidth: 0 })}`;
    })
    .join("---\n");
}

export function formatWarning(w: ImportResult["warnings"][number]): string {
  return `${w.file}${w.line !== undefined ? `:${w.line}` : ""}: ${w.skipped ? "not imported" : "note"}: ${w.message}\n`;
}

export function runImport(
  argv: string[],
  io: { out: (s: string) => void; err: (s: string) => void; read?: (path: string) => string },
): number {
  if (argv[0] !== "postfix") {
    io.err(
      argv[0] === undefined ? IMPORT_USAGE : `sealpost import: unknown source "${argv[0]}" (only postfix)\n`,
    );
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: argv.slice(1),
      options: {
        policy: { type: "string" },
        "sasl-passwd": { type: "string" },
        transport: { type: "string" },
        "main-cf": { type: "string" },
        relayhost: { type: "string" },
        namespace: { type: "string" },
        "include-passwords": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    io.err(`sealpost import postfix: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.out(IMPORT_USAGE);
    return 0;
  }
  const read = io.read ?? ((p: string) => readFileSync(p, "utf8"));
  const file = (path: string | undefined): SourceFile | undefined =>
    path === undefined ? undefined : { name: path, text: read(path) };
  let input: ImportInput;
  try {
    input = {
      policy: file(values.policy),
      saslPasswd: file(values["sasl-passwd"]),
      transport: file(values.transport),
      mainCf: file(values["main-cf"]),
      ...(values.relayhost !== undefined ? { relayhost: values.relayhost } : {}),
      ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
      includePasswords: values["include-passwords"] === true,
    };
  } catch (e) {
    io.err(`sealpost import postfix: ${(e as Error).message}\n`);
    return 2;
  }
  if (!input.policy && !input.saslPasswd && !input.transport && !input.mainCf && !input.relayhost) {
    io.err(`sealpost import postfix: nothing to import: give at least --policy\n\n${IMPORT_USAGE}`);
    return 2;
  }
  const result = importPostfix(input);
  io.out(render(result));
  for (const w of result.warnings) io.err(formatWarning(w));
  return result.warnings.some((w) => w.skipped) ? 1 : 0;
}
