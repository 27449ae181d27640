// Structured logs (pino, JSON lines, with the controls JSON.stringify leaves raw escaped: printable.ts
// jsonControlsEscaped). The protocol log is one line per inbound session and one per delivery
// attempt; the delivery log one per recipient per attempt (delivery-log.ts). Passwords and AUTH
// payloads are never passed to the logger; the redact list is a second line of defence.
// `text` format (--log-format text / SEALPOST_LOG_FORMAT=text): the same records as one line of
// text each, the delivery lines Postfix-like for grep; rendered here by hand because pino-pretty
// (not a dependency) would render neither them nor a stable key order.
import { pino, type DestinationStream, type Logger } from "pino";
import { DELIVERY_EVENT, DeliveryLine, deliveryText } from "./delivery-log.js";
import { jsonControlsEscaped, logJson, logText, logValue } from "./printable.js";

export type { Logger };

export const LOG_FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function isLogFormat(s: string): s is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(s);
}

export function createLogger(
  destination?: DestinationStream,
  level = process.env.SEALPOST_LOG_LEVEL ?? "info",
  format: LogFormat = process.env.SEALPOST_LOG_FORMAT === "text" ? "text" : "json",
): Logger {
  const options = {
    level,
    base: { component: "relay" },
    // top-level keys: pino's own per-key redaction (cheap); one level down: censorNested
    redact: { paths: ["password", "pass", "auth.credentials"], censor: CENSOR },
    formatters: { log: censorNested },
    // the JSON line as written: C1 controls (U+009B is a CSI to xterm), bidi overrides and line
    // separators in the sender's text escaped, as the text format does (attack review, session 18)
    hooks: { streamWrite: jsonControlsEscaped },
  };
  const log =
    format === "text"
      ? pino(options, textDestination(destination ?? process.stdout))
      : destination
        ? pino(options, destination)
        : pino(options);
  return censoringChildren(log);
}

/**
 * pino gives a child logger's bindings to no formatter (it resets `formatters.bindings` for
 * children), so they are censored on the way in; a child's own children inherit this `child`.
 */
function censoringChildren(log: Logger): Logger {
  // pino's own child(), called with whichever logger (this one or a descendant) it is called on
  const child = Reflect.get(log, "child") as unknown as (
    this: Logger,
    b: Record<string, unknown>,
    o?: object,
  ) => Logger;
  log.child = function (this: Logger, bindings: Record<string, unknown>, options?: object) {
    return child.call(this, censorNested(bindings), options);
  } as unknown as Logger["child"];
  return log;
}

const CENSOR = "[redacted]";
const SECRET_KEYS = ["password", "pass"];

/**
 * `*.password` and `*.pass` of pino's redact list, by hand: pino hands wildcard paths to
 * @pinojs/redact, which parses every path and clones the record at every log call, a fifth of what
 * the relay allocated per message (issue 18: each young collection is a pause some accept waits
 * through). A record (and a child logger's bindings) is only copied when a value one level down
 * carries such a key, and then the copy is censored, never the caller's object; the copy keeps the
 * value's prototype and other properties (an Error stays an Error for pino's serializer). Not
 * covered, unlike pino's wildcard paths: printf-style `%j`/`%o`/`%O` in a message, which the relay
 * never uses (test/unit/relay-log-redact.test.ts fails on one).
 */
export function censorNested(rec: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in rec) {
    const v = rec[k];
    if (v === null || typeof v !== "object" || Array.isArray(v)) continue;
    if (!carriesSecret(v)) continue;
    out ??= { ...rec };
    out[k] = censoredCopy(v);
  }
  return out ?? rec;
}

/** A loop, not `some` with a closure: this runs for every object in every log record. */
function carriesSecret(v: object): boolean {
  for (const s of SECRET_KEYS) if (Object.hasOwn(v, s)) return true;
  return false;
}

function censoredCopy(v: object): object {
  const props = Object.getOwnPropertyDescriptors(v);
  // an accessor (an Error's stack) is read on the original: its getter may not work on a copy
  for (const [k, d] of Object.entries(props))
    if (d.get)
      props[k] = {
        value: (v as Record<string, unknown>)[k],
        enumerable: d.enumerable,
        writable: true,
        configurable: true,
      };
  const copy = Object.create(Object.getPrototypeOf(v) as object | null, props) as object;
  for (const s of SECRET_KEYS)
    if (Object.hasOwn(copy, s)) {
      const d = Object.getOwnPropertyDescriptor(copy, s)!;
      // a property that cannot be redefined: the record gets a plain copy rather than the secret
      if (!d.configurable)
        return Object.fromEntries(
          Object.entries(v).map(([k, x]) => [k, SECRET_KEYS.includes(k) ? CENSOR : x]),
        );
      Object.defineProperty(copy, s, {
        value: CENSOR,
        enumerable: d.enumerable,
        writable: true,
        configurable: true,
      });
    }
  return copy;
}

const LEVELS: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

const OMIT = new Set(["level", "time", "pid", "hostname", "component", "msg", "event"]);

/**
 * A value for the text format: a string as printable.ts's logValue (bare when plain, else quoted so
 * it cannot forge a field or a line), anything else as one line of JSON.
 */
function scalar(v: unknown): string {
  if (typeof v === "string") return logValue(v);
  return logJson(v);
}

/** One pino record as a text line: `<time> <level> <component>[ <event>]: <text>`. */
export function textLine(rec: Record<string, unknown>): string {
  const time = typeof rec.time === "number" ? new Date(rec.time).toISOString() : "-";
  const level = LEVELS[rec.level as number] ?? String(rec.level);
  const event = typeof rec.event === "string" ? rec.event : undefined;
  const head = `${time} ${level} ${scalar(rec.component ?? "relay")}${event ? ` ${event}` : ""}: `;
  if (event === DELIVERY_EVENT) {
    const l = DeliveryLine.safeParse(rec);
    if (l.success) return head + deliveryText(l.data);
  }
  const rest = Object.entries(rec)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${scalar(v)}`);
  return head + [typeof rec.msg === "string" ? logText(rec.msg) : "", ...rest].filter(Boolean).join(" ");
}

/** A destination that writes each JSON record pino gives it as a text line to `out`. */
export function textDestination(out: { write(s: string): unknown }): DestinationStream {
  return {
    write(chunk: string) {
      for (const l of chunk.split("\n")) {
        if (!l.trim()) continue;
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(l) as Record<string, unknown>;
        } catch {
          out.write(l + "\n");
          continue;
        }
        out.write(textLine(rec) + "\n");
      }
    },
  };
}
