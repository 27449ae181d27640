// `sealpost report [--namespace N] [--policy P] [--json]`: the per-partner transport security report
// from the MailDomainPolicies' status. bin/sealpost.ts loads this module for the subcommand (with the
// subcommand taken off argv); the logic is in cli/report/report-cli.ts.
import { runReportCli } from "../cli/report/report-cli.js";

process.exitCode = await runReportCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
