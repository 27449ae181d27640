// `sealpost operator --help`: each flag (operator/main.ts) with its environment variable
// (SEALPOST_<FLAG_IN_CAPS>; a flag wins) and its default.
import { helpText, type FlagDoc } from "../bin/usage.js";
import { flagEnv, OPERATOR_FLAGS } from "./flags.js";

export const OPERATOR_HELP = helpText({
  usage: "sealpost operator [flags]",
  description:
    "Runs the operator: watches MailRelay, MailDomainPolicy and RelayCredential objects and runs the\n" +
    "relays. Every flag can be set by its environment variable; a flag wins.",
  flags: [
    ...OPERATOR_FLAGS.map(([flag, arg, description, dflt]): FlagDoc => ({
      flag: `--${flag}`,
      ...(arg ? { arg } : {}),
      description,
      env: flagEnv(flag),
      default: dflt,
    })),
    { flag: "-h, --help", description: "this help" },
    { flag: "-V, --version", description: "the version" },
  ],
});
