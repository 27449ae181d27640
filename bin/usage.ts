// What every `sealpost` command shares on its command line: the --help text (each flag and
// environment variable with its description and default), --version (package.json's), and the
// one-line error with exit code 2 for a bad flag or value, never a stack trace. Hand-written beside
// node:util parseArgs, which parses but neither documents flags nor reports errors for people.
import { readFileSync } from "node:fs";

export const PROGRAM = "sealpost";

export interface FlagDoc {
  /** e.g. "--config", "-n, --namespace". */
  flag: string;
  /** The value's placeholder, e.g. "DIR"; absent: a boolean flag. */
  arg?: string;
  description: string;
  /** Shown as "(default: ...)"; absent: no default. */
  default?: string;
  /** The environment variable that sets it when the flag is not given. */
  env?: string;
}

export interface EnvDoc {
  name: string;
  description: string;
  default?: string;
}

export interface HelpDoc {
  /** e.g. "sealpost relay --config DIR [flags]". */
  usage: string;
  description: string;
  flags: FlagDoc[];
  env?: EnvDoc[];
}

const WIDTH = 28;

function row(left: string, text: string): string {
  const pad = left.length >= WIDTH - 3 ? `\n${" ".repeat(WIDTH)}` : " ".repeat(WIDTH - 2 - left.length);
  return `  ${left}${pad}${text}`;
}

/** The --help text. Pure. */
export function helpText(d: HelpDoc): string {
  const lines = [`usage: ${d.usage}`, "", d.description, "", "flags:"];
  for (const f of d.flags) {
    const extra = [
      f.env ? `env ${f.env}` : undefined,
      f.default !== undefined ? `default: ${f.default}` : undefined,
    ].filter(Boolean);
    lines.push(
      row(
        `${f.flag}${f.arg ? ` ${f.arg}` : ""}`,
        `${f.description}${extra.length ? ` (${extra.join("; ")})` : ""}`,
      ),
    );
  }
  if (d.env?.length) {
    lines.push("", "environment:");
    for (const e of d.env)
      lines.push(row(e.name, `${e.description}${e.default !== undefined ? ` (default: ${e.default})` : ""}`));
  }
  return lines.join("\n") + "\n";
}

/** A usage error: the caller prints `message` and exits 2. */
export class UsageError extends Error {}

/** Runs `parse` (parseArgs and value checks); a failure is one line on stderr and exit code 2. */
export function parseOrExit<T>(command: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    process.stderr.write(`${command}: ${(e as Error).message}\nRun '${command} --help' for the flags.\n`);
    process.exit(2);
  }
}

/** A port or count flag's value, or a UsageError naming the flag. */
export function positiveInt(flag: string, v: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw new UsageError(`${flag} must be a whole number from 1 to ${max}, not "${v}"`);
  return n;
}

/** The version in package.json (next to dist/ in the image, at the repository root in a checkout). */
export function version(): string {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (p.name === "sealpost" && p.version) return p.version;
    } catch {
      // not there: the other layout
    }
  }
  return "unknown";
}
