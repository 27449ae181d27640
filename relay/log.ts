// Structured logs (pino, JSON lines). The protocol log is one line per inbound session and one per
// delivery attempt. Passwords and AUTH payloads are never passed to the logger; the redact list is
// a second line of defence.
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

export function createLogger(
  destination?: DestinationStream,
  level = process.env.SEALPOST_LOG_LEVEL ?? "info",
): Logger {
  const options = {
    level,
    base: { component: "relay" },
    redact: { paths: ["password", "pass", "*.password", "*.pass", "auth.credentials"], censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
