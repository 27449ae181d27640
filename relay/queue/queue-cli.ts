// `sealpost queue` (bin/queue.ts runs it): the relay's queue, over its admin port (admin-api.ts),
// at postqueue/postsuper parity:
//   sealpost queue list                          [--admin URL] [--token-file F] [--json]   (mailq)
//   sealpost queue show <id> [--body]            envelope, state, header section (postcat -hq)
//   sealpost queue hold|release <id>...          postsuper -h / -H; held mail survives a restart
//   sealpost queue requeue <id>...               postsuper -r: due now, fresh backoff
//   sealpost queue delete <id>...                postsuper -d: removed, no bounce
//   sealpost queue bounce <id>...                pending recipients fail, the sender gets a DSN
//   sealpost queue retry <id>... | --all         postqueue -i / -f
//   sealpost queue flush --domain D              postqueue -s D
//   sealpost queue drain [--wait]                scale-down drain (drain.ts); --wait: until it ends
// Instead of ids, every action takes a selection (selection.ts): --domain, --reason, --older-than
// (all must hold), or --all.
// --admin defaults to http://127.0.0.1:8080 (inside the relay pod: `kubectl exec`); the token comes
// from --token-file or SEALPOST_ADMIN_TOKEN.
import { parseArgs } from "node:util";
import { printable, safeJson } from "../printable.js";
import { signAdminRequest } from "../contract/admin-auth.js";
import type { MessageView, QueueAction } from "./admin-api.js";
import {
  adminToken,
  adminUrls,
  commandTargets,
  mergeListings,
  type AdminCliIo,
  type PodListing,
} from "./fleet.js";
import { parseAge } from "./selection.js";

const USAGE = `usage: sealpost queue <command> [<id>...] [flags]

commands:
  list                       the queued messages, oldest first ("!" after the id: on hold)
  show <id>                  one message: envelope, recipients with their last failure, headers
  hold <id>...               keep from delivery until released (survives a restart)
  release <id>...            take off hold, due now
  requeue <id>...            due now with a fresh retry backoff
  delete <id>...             remove without a bounce to the sender
  bounce <id>...             give up: pending recipients fail, the sender gets a DSN
  retry <id>... | --all      attempt now
  flush --domain <domain>    attempt now every message with a pending recipient at the domain
  drain [--wait]             scale-down drain: stop accepting, hand over or deliver the queue

selection (instead of ids, for hold, release, requeue, delete, bounce, retry; all must hold):
  --domain DOMAIN     a pending recipient at this domain
  --reason TEXT       a pending recipient's last failure has this code (e.g. TLS_NOT_OFFERED) or text
  --older-than AGE    received at least AGE ago: 90s, 30m, 2h, 3d
  --all               every queued message

flags:
  --admin URL         the relay's admin port (default http://127.0.0.1:8080); several: list over them all
  --fleet RELAY       with list: every pod of MailRelay RELAY (found through the Kubernetes API: the
                      pods its StatefulSet controls, not any pod with its labels; asked at its pod
                      IP: run where the relay's NetworkPolicy admits the admin port)
  -n, --namespace NS  with --fleet: the MailRelay's namespace (default: the kubeconfig context's)
  --admin-port PORT   with --fleet: the pods' admin port (default 8080)
  --token-file FILE   file holding the admin token (default: $SEALPOST_ADMIN_TOKEN)
  --json              print the admin API's JSON instead of text
  --body              with show: the message body too (up to 1 MiB)
  --wait              with drain: until the queue is empty (exit 0) or the drain gave up (exit 1)
  -h, --help          this help

environment:
  SEALPOST_ADMIN_TOKEN  the admin token when --token-file is not given (default: none)
`;

export type QueueCliIo = AdminCliIo;

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
export function formatList(messages: (MessageView & { pod?: string })[], fleet = false): string {
  if (!messages.length) return "queue is empty\n";
  const rows = [[...(fleet ? ["POD"] : []), "ID", "AGE", "ATTEMPTS", "FROM", "PENDING", "REASON"]];
  for (const m of messages) {
    const pending = m.recipients.filter((r) => r.state === "pending");
    const reasons = [...new Set(pending.map((r) => r.reason).filter(Boolean))];
    rows.push([
      ...(fleet ? [m.pod ?? ""] : []),
      m.held ? `${m.id}!` : m.id,
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
    ...(m.held ? ["held:          yes (queue release to deliver)"] : []),
    "recipients:",
  ];
  for (const r of m.recipients) {
    lines.push(`  ${r.address}  ${r.state}  policy ${r.policy} (tls ${r.mode}) via ${r.nextHop}`);
    if (r.reason) lines.push(`    ${r.state === "pending" ? "deferred" : "failed"}: ${r.reason}`);
  }
  // the message's own text, line by line: every line escaped (a header may carry anything)
  if (m.headers !== undefined) lines.push("headers:", ...m.headers.split(/\r?\n/).map((l) => `  ${l}`));
  if (m.body !== undefined)
    lines.push(
      `body${m.bodyTruncated ? " (first 1 MiB)" : ""}:`,
      ...m.body.split(/\r?\n/).map((l) => `  ${l}`),
    );
  return lines.map(printable).join("\n") + "\n";
}

/** What an action did to one message, as the CLI reports it. */
const DONE: Record<QueueAction, (id: string) => string> = {
  hold: (id) => `${id} on hold`,
  release: (id) => `${id} released, due now`,
  requeue: (id) => `${id} requeued, due now`,
  delete: (id) => `${id} deleted, no bounce to the sender`,
  bounce: (id) => `${id} removed from the queue; its sender gets a delivery failure notice`,
  retry: (id) => `retrying ${id} now`,
};

/** `list` over several pods: a MailRelay's (--fleet) or the --admin URLs given. */
async function fleetList(
  values: { fleet?: string | undefined; namespace?: string | undefined; "admin-port": string; json: boolean },
  admins: string[],
  fetchAt: (base: string, method: string, path: string) => Promise<unknown>,
  io: QueueCliIo,
): Promise<number> {
  const targets = await commandTargets(values, admins, "sealpost queue", (s) => io.err(s));
  if (typeof targets === "number") return targets;
  const listings: PodListing[] = await Promise.all(
    targets.map((t) =>
      fetchAt(t.url, "GET", "/queue").then(
        (b) => ({ pod: t.pod, messages: (b as { messages: MessageView[] }).messages }),
        (e: unknown) => ({ pod: t.pod, error: (e as Error).message }),
      ),
    ),
  );
  for (const l of listings) if (l.error) io.err(printable(`sealpost queue: ${l.pod}: ${l.error}`) + "\n");
  io.out(values.json ? safeJson({ pods: listings }, 2) + "\n" : formatList(mergeListings(listings), true));
  return listings.some((l) => l.error) ? 1 : 0;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runQueueCli(argv: string[], io: QueueCliIo): Promise<number> {
  let args: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        admin: { type: "string", multiple: true },
        fleet: { type: "string" },
        namespace: { type: "string", short: "n" },
        "admin-port": { type: "string", default: "8080" },
        "token-file": { type: "string" },
        json: { type: "boolean", default: false },
        all: { type: "boolean", default: false },
        wait: { type: "boolean", default: false },
        body: { type: "boolean", default: false },
        domain: { type: "string" },
        reason: { type: "string" },
        "older-than": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  }
  try {
    args = parse();
  } catch (e) {
    io.err(`sealpost queue: ${(e as Error).message}\nRun 'sealpost queue --help' for the flags.\n`);
    return 2;
  }
  const [cmd, ...ids] = args.positionals;
  const id = ids[0];
  if (args.values.help) {
    io.out(USAGE);
    return 0;
  }
  const token = await adminToken(args.values["token-file"], io, "sealpost queue");
  if (typeof token === "number") return token;
  const admins = adminUrls(args.values.admin);
  const fetchAt = async (baseUrl: string, method: string, path: string): Promise<unknown> => {
    const url = `${baseUrl.replace(/\/+$/, "")}${path}`;
    // signed with the token, which never crosses the network (relay/contract/admin-auth.ts); an
    // unparsable URL is fetch's to report
    const u = URL.canParse(url) ? new URL(url) : undefined;
    const r = await (io.fetch ?? fetch)(url, {
      method,
      headers:
        token && u ? { authorization: signAdminRequest(token, method, u.pathname + u.search, u.host) } : {},
    }).catch((e: unknown) => {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`cannot reach the admin port at ${url}: ${cause?.code ?? cause?.message ?? String(e)}`);
    });
    const body = (await r.json().catch(() => ({ error: `HTTP ${r.status}` }))) as { error?: string };
    if (!r.ok) throw new Error(body.error ?? `HTTP ${r.status}`);
    return body;
  };
  const call = (method: string, path: string): Promise<unknown> => fetchAt(admins[0]!, method, path);
  if (args.values.fleet !== undefined || admins.length > 1) {
    if (cmd !== "list") {
      io.err(`sealpost queue ${cmd ?? ""}: --fleet and several --admin work with list only\n\n${USAGE}`);
      return 2;
    }
    return fleetList(args.values, admins, fetchAt, io);
  }
  const needId = (): string | undefined => {
    if (id) return id;
    io.err(`sealpost queue ${cmd}: a message id is required\n\n${USAGE}`);
    return undefined;
  };
  try {
    switch (cmd) {
      case "list": {
        const body = (await call("GET", "/queue")) as { messages: MessageView[] };
        io.out(args.values.json ? safeJson(body, 2) + "\n" : formatList(body.messages));
        return 0;
      }
      case "show": {
        const i = needId();
        if (!i) return 2;
        const query = `?headers=true${args.values.body ? "&body=true" : ""}`;
        const message = (await call("GET", `/queue/${encodeURIComponent(i)}${query}`)) as MessageView;
        io.out(args.values.json ? safeJson(message, 2) + "\n" : formatShow(message));
        return 0;
      }
      case "flush":
      case "hold":
      case "release":
      case "requeue":
      case "delete":
      case "bounce":
      case "retry": {
        const action = cmd === "flush" ? "retry" : cmd;
        if (cmd === "flush" && !args.values.domain && !args.values.all) {
          io.err(`sealpost queue flush: --domain is required (or --all)\n\n${USAGE}`);
          return 2;
        }
        const selection = new URLSearchParams();
        if (args.values.all) selection.set("all", "true");
        if (args.values.domain) selection.set("domain", args.values.domain);
        if (args.values.reason) selection.set("reason", args.values.reason);
        const older = args.values["older-than"];
        if (older !== undefined) {
          if (parseAge(older) === undefined) {
            io.err(
              `sealpost queue ${cmd}: --older-than "${printable(older)}" is not an age such as 90s, 30m, 2h or 3d\n`,
            );
            return 2;
          }
          selection.set("olderThan", older);
        }
        if ([...selection.keys()].length && ids.length) {
          io.err(`sealpost queue ${cmd}: give message ids or a selection, not both\n\n${USAGE}`);
          return 2;
        }
        if ([...selection.keys()].length) {
          if (action === "retry" && args.values.all && [...selection.keys()].length === 1) {
            const r = (await call("POST", "/queue/retry")) as { retried: number };
            io.out(`retrying ${r.retried} queued message(s) now\n`);
            return 0;
          }
          const r = (await call("POST", `/queue/${action}?${selection.toString()}`)) as { ids: string[] };
          io.out(
            args.values.json
              ? safeJson(r, 2) + "\n"
              : r.ids.map((x) => DONE[action](x) + "\n").join("") + `${action}: ${r.ids.length} message(s)\n`,
          );
          return 0;
        }
        if (!needId()) return 2;
        let failed = 0;
        for (const i of ids) {
          try {
            await call("POST", `/queue/${encodeURIComponent(i)}/${action}`);
            io.out(DONE[action](i) + "\n");
          } catch (e) {
            failed++;
            io.err(printable(`sealpost queue ${cmd} ${i}: ${(e as Error).message}`) + "\n");
          }
        }
        return failed ? 1 : 0;
      }
      case "drain": {
        const r = (await call("POST", `/queue/drain${args.values.wait ? "?wait=true" : ""}`)) as {
          state: string;
          remaining: number;
        };
        io.out(
          args.values.json
            ? safeJson(r, 2) + "\n"
            : printable(`drain ${r.state}: ${r.remaining} left`) + "\n",
        );
        return 0;
      }
      default:
        io.err(
          cmd
            ? `sealpost queue: unknown command "${printable(cmd)}"\nRun 'sealpost queue --help' for the commands.\n`
            : USAGE,
        );
        return 2;
    }
  } catch (e) {
    io.err(printable(`sealpost queue ${cmd}: ${(e as Error).message}`) + "\n");
    return 1;
  }
}
