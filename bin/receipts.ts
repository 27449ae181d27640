// `sealpost receipts export|verify`: the relay's encryption receipts. bin/sealpost.ts loads this
// module for the subcommand (with the subcommand taken off argv); the logic is in
// relay/receipts/receipts-cli.ts.
import { runReceiptsCli } from "../relay/receipts/receipts-cli.js";

process.exitCode = await runReceiptsCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
