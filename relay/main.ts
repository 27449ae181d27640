// CLI entry: `tsx relay/main.ts --config <dir>` (the container runs the same with node). Ports come
// from the config (listeners.*, admin); SIGTERM/SIGINT shut down gracefully
// (SEALPOST_GRACE_SECONDS, default 20). With SEALPOST_DRAIN_ON_STOP=true a SIGTERM first drains the
// queue (relay/queue/drain.ts) for up to SEALPOST_DRAIN_SECONDS (default 300), then stops.
import { parseArgs } from "node:util";
import { createLogger, isLogFormat, LOG_FORMATS } from "./log.js";
import { Relay } from "./relay.js";

const { values } = parseArgs({
  options: {
    config: { type: "string", short: "c" },
    /** Config directory poll interval (ms); fs.watch triggers earlier checks. */
    "poll-ms": { type: "string" },
    /** Port for MX-resolved next hops (default 25); for tests with peers on other ports. */
    "mx-port": { type: "string" },
    /** json (default) or text: Postfix-like delivery lines for grep (relay/log.ts). */
    "log-format": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});
const USAGE = "usage: relay --config <dir> [--poll-ms <ms>] [--mx-port <port>] [--log-format json|text]\n";
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const dir = values.config ?? process.env.SEALPOST_CONFIG_DIR;
if (!dir) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const format = values["log-format"] ?? process.env.SEALPOST_LOG_FORMAT ?? "json";
if (!isLogFormat(format)) {
  process.stderr.write(`relay: --log-format must be one of ${LOG_FORMATS.join(", ")}, not "${format}"\n`);
  process.exit(2);
}
const log = createLogger(undefined, undefined, format);
const graceMs = Number(process.env.SEALPOST_GRACE_SECONDS ?? 20) * 1000;
try {
  const relay = await Relay.start({
    configDir: dir,
    logger: log,
    graceMs,
    ...(values["poll-ms"] ? { pollMs: Number(values["poll-ms"]) } : {}),
    ...(values["mx-port"] ? { mxPort: Number(values["mx-port"]) } : {}),
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
