// `sealpost queue list|show <id>|retry <id>|retry --all|delete <id> [--admin URL] [--token-file F]`:
// the relay's queue over its admin port. bin/sealpost.ts loads this module for the subcommand (with
// the subcommand taken off argv); the logic is in relay/queue/queue-cli.ts.
import { runQueueCli } from "../relay/queue/queue-cli.js";

process.exitCode = await runQueueCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
