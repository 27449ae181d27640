// `sealpost import postfix [flags]`: Postfix TLS policy, SASL passwords and routes -> manifests.
// bin/sealpost.ts loads this module for the subcommand (with the subcommand taken off argv); the
// logic is in cli/import-postfix/.
import { runImport } from "../cli/import-postfix/command.js";

process.exitCode = runImport(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
