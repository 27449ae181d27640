// `sealpost queue` (bin/queue.ts runs it): the relay's queue, over its admin port (admin-api.ts).
//   sealpost queue list                    [--admin URL] [--token-file F] [--json]
//   sealpost queue show <id>
//   sealpost queue retry <id> | --all
//   sealpost queue delete <id>             bounce: pending recipients fail, the sender gets a DSN
//   sealpost queue drain [--wait]          scale-down drain (drain.ts); --wait: until it ends (preStop)
// --admin defaults to http://127.0.0.1:8080 (inside the relay pod: `kubectl exec`); the token comes
// from --token-file or SEALPOST_ADMIN_TOKEN.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { printable, safeJson } from "../printable.js";
import type { MessageView } from "./admin-api.js";

const USAGE = `usage: sealpost queue <list|show <id>|retry <id>|retry --all|delete <id>|drain [--wait]> [flags]

flags:
  --admin URL         the relay's admin port (default http://127.0.0.1:8080)
  --token-file FILE   file holding the admin token (default: $SEALPOST_ADMIN_TOKEN)
  --json              print the admin API's JSON instead of text
  --all               with retry: every queued message
  --wait              with drain: until the queue is empty (exit 0) or the drain gave up (exit 1)
`;

export interface QueueCliIo {
  out(s: string): void;
  err(s: string): void;
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
}

function age(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
  const h = Math.floor(seconds / 3600);
  return h < 48
    ? `${h}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`
    : `${Math.floor(h / 24)}d`;
}

function table(raw: string[][]): string {
  const rows = raw.map((r) => r.map(printable));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return (
    rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c)).join("  ")).join("\n") +
    "\n"
  );
}

/** `queue list` as text. Pure. */
export function formatList(messages: MessageView[]): string {
  if (!messages.length) return "queue is empty\n";
  const rows = [["ID", "AGE", "ATTEMPTS", "FROM", "PENDING", "REASON"]];
  for (const m of messages) {
    const pending = m.recipients.filter((r) => r.state === "pending");
    const reasons = [...new Set(pending.map((r) => r.reason).filter(Boolean))];
    rows.push([
      m.id,
      age(m.ageSeconds),
      String(m.attempts),
      m.from || "<>",
      `${pending.length}/${m.recipients.length}`,
      m.inFlight
        ? "(delivering now)"
        : (reasons[0] ?? "") + (reasons.length > 1 ? ` (+${reasons.length - 1})` : ""),
    ]);
  }
  return table(rows);
}

/** `queue show` as text. Pure. */
export function formatShow(m: MessageView): string {
  const lines = [
    `id:            ${m.id}`,
    `from:          ${m.from || "<>"}`,
    `received:      ${m.receivedAt} (${age(m.ageSeconds)} ago) from ${m.peer ?? "unknown"}`,
    `size:          ${m.size} bytes`,
    `attempts:      ${m.attempts}${m.inFlight ? " (delivering now)" : `, next at ${m.nextAttemptAt}`}`,
    ...(m.requireTls ? ["requiretls:    yes"] : []),
    "recipients:",
  ];
  for (const r of m.recipients) {
    lines.push(`  ${r.address}  ${r.state}  policy ${r.policy} (tls ${r.mode}) via ${r.nextHop}`);
    if (r.reason) lines.push(`    ${r.state === "pending" ? "deferred" : "failed"}: ${r.reason}`);
  }
  return lines.map(printable).join("\n") + "\n";
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runQueueCli(argv: string[], io: QueueCliIo): Promise<number> {
  let a: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        admin: { type: "string", default: "http://127.0.0.1:8080" },
        "token-file": { type: "string" },
        json: { type: "boolean", default: false },
        all: { type: "boolean", default: false },
        wait: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  }
  try {
    a = parse();
  } catch (e) {
    io.err(`sealpost queue: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [cmd, id] = a.positionals;
  if (a.values.help) {
    io.out(USAGE);
    return 0;
  }
  const env = io.env ?? process.env;
  let token = env.SEALPOST_ADMIN_TOKEN ?? "";
  if (a.values["token-file"]) token = (await readFile(a.values["token-file"], "utf8")).trim();
  const base = a.values.admin.replace(/\/+$/, "");
  const call = async (method: string, path: string): Promise<unknown> => {
    const r = await (io.fetch ?? fetch)(`${base}${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const body = (await r.json().catch(() => ({ error: `HTTP ${r.status}` }))) as { error?: string };
    if (!r.ok) throw new Error(body.error ?? `HTTP ${r.status}`);
    return body;
  };
  const needId = (): string | undefined => {
    if (id) return id;
    io.err(`sealpost queue ${cmd}: a message id is required\n\n${USAGE}`);
    return undefined;
  };
  try {
    switch (cmd) {
      case "list": {
        const body = (await call("GET", "/queue")) as { messages: MessageView[] };
        io.out(a.values.json ? safeJson(body, 2) + "\n" : formatList(body.messages));
        return 0;
      }
      case "show": {
        const i = needId();
        if (!i) return 2;
        const m = (await call("GET", `/queue/${encodeURIComponent(i)}`)) as MessageView;
        io.out(a.values.json ? safeJson(m, 2) + "\n" : formatShow(m));
        return 0;
      }
      case "retry": {
        if (a.values.all) {
          const r = (await call("POST", "/queue/retry")) as { retried: number };
          io.out(`retrying ${r.retried} queued message(s) now\n`);
          return 0;
        }
        const i = needId();
        if (!i) return 2;
        await call("POST", `/queue/${encodeURIComponent(i)}/retry`);
        io.out(`retrying ${i} now\n`);
        return 0;
      }
      case "delete": {
        const i = needId();
        if (!i) return 2;
        await call("DELETE", `/queue/${encodeURIComponent(i)}`);
        io.out(`${i} removed from the queue; its sender gets a delivery failure notice\n`);
        return 0;
      }
      case "drain": {
        const r = (await call("POST", `/queue/drain${a.values.wait ? "?wait=true" : ""}`)) as {
          state: string;
          remaining: number;
        };
        io.out(
          a.values.json ? safeJson(r, 2) + "\n" : printable(`drain ${r.state}: ${r.remaining} left`) + "\n",
        );
        return 0;
      }
      default:
        io.err(cmd ? `sealpost queue: unknown command "${cmd}"\n\n${USAGE}` : USAGE);
        return 2;
    }
  } catch (e) {
    io.err(printable(`sealpost queue ${cmd}: ${(e as Error).message}`) + "\n");
    return 1;
  }
}
