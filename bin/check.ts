// `sealpost check <domain> [flags]`: the pre-flight check of a partner domain. bin/sealpost.ts loads
// this module for the subcommand (with the subcommand taken off argv); the logic is in relay/check/.
import { runCheckCli } from "../relay/check/cli.js";

process.exitCode = await runCheckCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
