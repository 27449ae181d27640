// CLI entry: `tsx relay/main.ts --config <dir>` (the container runs the same with node). Ports come
// from the config (listeners.*, admin); SIGTERM/SIGINT shut down gracefully
// (SEALPOST_GRACE_SECONDS, default 20). With SEALPOST_DRAIN_ON_STOP=true a SIGTERM first drains the
// queue (relay/queue/drain.ts) for up to SEALPOST_DRAIN_SECONDS (default 300), then stops.
import { parseArgs } from "node:util";
import { helpText, parseOrExit, positiveInt, UsageError, version } from "../bin/usage.js";
import { createLogger, isLogFormat, LOG_FORMATS } from "./log.js";
import { Relay } from "./relay.js";

const HELP = helpText({
  usage: "sealpost relay --config DIR [flags]",
  description:
    "Runs a mail relay from the config directory the operator mounts (config.json, certificates,\n" +
    "secrets). Ports come from the config; SIGTERM/SIGINT stop it gracefully.",
  flags: [
    {
      flag: "-c, --config",
      arg: "DIR",
      description: "the config directory, required",
      env: "SEALPOST_CONFIG_DIR",
    },
    {
      flag: "--poll-ms",
      arg: "MS",
      description: "how often the config directory is checked for changes; fs.watch triggers earlier checks",
      default: "1000",
    },
    {
      flag: "--mx-port",
      arg: "PORT",
      description: "port for next hops found by MX lookup (tests run partners on other ports)",
      default: "25",
    },
    {
      flag: "--log-format",
      arg: "FORMAT",
      description: `${LOG_FORMATS.join(" or ")}: text writes Postfix-like delivery lines, for grep`,
      env: "SEALPOST_LOG_FORMAT",
      default: "json",
    },
    { flag: "-h, --help", description: "this help" },
    { flag: "-V, --version", description: "the version" },
  ],
  env: [
    { name: "SEALPOST_LOG_LEVEL", description: "trace, debug, info, warn, error or fatal", default: "info" },
    {
      name: "SEALPOST_GRACE_SECONDS",
      description: "time open sessions and deliveries get to finish when stopping",
      default: "20",
    },
    {
      name: "SEALPOST_DRAIN_ON_STOP",
      description: "true: SIGTERM first drains the queue (hands it over or delivers it), then stops",
      default: "false",
    },
    { name: "SEALPOST_DRAIN_SECONDS", description: "deadline of that drain", default: "300" },
  ],
});

const command = "sealpost relay";
const { values, dir, format, pollMs, mxPort } = parseOrExit(command, () => {
  const { values } = parseArgs({
    options: {
      config: { type: "string", short: "c" },
      "poll-ms": { type: "string" },
      "mx-port": { type: "string" },
      "log-format": { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "V" },
    },
    strict: true,
  });
  const format = values["log-format"] ?? (process.env.SEALPOST_LOG_FORMAT || "json"); // empty: unset
  if (!isLogFormat(format))
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(", ")}, not "${format}"`);
  const dir = values.config ?? (process.env.SEALPOST_CONFIG_DIR || undefined);
  if (!dir && !values.help && !values.version)
    throw new UsageError("--config DIR is required (or SEALPOST_CONFIG_DIR)");
  const pollMs = values["poll-ms"] !== undefined ? positiveInt("--poll-ms", values["poll-ms"]) : undefined;
  const mxPort =
    values["mx-port"] !== undefined ? positiveInt("--mx-port", values["mx-port"], 65535) : undefined;
  return { values, dir: dir ?? "", format, pollMs, mxPort };
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (values.version) {
  process.stdout.write(`sealpost ${version()}\n`);
  process.exit(0);
}
const log = createLogger(undefined, undefined, format);
const graceMs = Number(process.env.SEALPOST_GRACE_SECONDS ?? 20) * 1000;
try {
  const relay = await Relay.start({
    configDir: dir,
    logger: log,
    graceMs,
    ...(pollMs !== undefined ? { pollMs } : {}),
    ...(mxPort !== undefined ? { mxPort } : {}),
  });
  let stopping = false;
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      const drain =
        process.env.SEALPOST_DRAIN_ON_STOP === "true"
          ? relay.drain({ deadlineMs: Number(process.env.SEALPOST_DRAIN_SECONDS ?? 300) * 1000 })
          : Promise.resolve();
      void drain
        .catch(() => undefined)
        .then(() => relay.stop())
        .then(
          () => process.exit(0),
          () => process.exit(1),
        );
    });
  }
} catch (e) {
  log.fatal(
    { event: "start-failed", err: e instanceof Error ? e.message : String(e) },
    "relay failed to start",
  );
  process.exitCode = 1;
}
