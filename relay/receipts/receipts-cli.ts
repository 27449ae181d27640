// `sealpost receipts` (bin/receipts.ts runs it): the encryption receipts.
//   sealpost receipts export [--domain D] [--since T]   JSON lines from a relay's admin port (or every
//                                                      pod of a MailRelay with --fleet, like
//                                                      `sealpost queue list --fleet`)
//   sealpost receipts verify FILE [--public-key KEY]... checks a log or an export; names the first
//                                                      bad entry (line and why), exit 1
import { readFile, writeFile } from "node:fs/promises";
import { createPublicKey, type KeyObject } from "node:crypto";
import { parseArgs } from "node:util";
import { printable } from "../printable.js";
import { adminToken, adminUrls, commandTargets, type AdminCliIo } from "../queue/fleet.js";
import { verifyReceipts, type VerifyReport } from "./chain.js";

const USAGE = `usage: sealpost receipts <command> [flags]

commands:
  export               the receipt log as JSON lines: a header (relay, pod, the public key that signs
                       its checkpoints), then the chain; receipts outside --domain are redacted (their
                       hash stays, so the chain still verifies)
  verify FILE          check a receipt log (receipts/log.jsonl on the queue volume) or an export:
                       every hash, the order, every checkpoint's signature; names the first bad entry

flags:
  --domain DOMAIN     with export: the receipts of recipients at DOMAIN
  --since T           with export: from time T on (ISO 8601, or an age: 90s, 30m, 2h, 3d)
  -o, --output FILE   with export: write to FILE instead of standard output
  --admin URL         the relay's admin port (default http://127.0.0.1:8080); several: each in turn
  --fleet RELAY       with export: every pod of MailRelay RELAY (through the Kubernetes API, asked at
                      its pod IP: run where the relay's NetworkPolicy admits the admin port)
  -n, --namespace NS  with --fleet: the MailRelay's namespace (default: the kubeconfig context's)
  --admin-port PORT   with --fleet: the pods' admin port (default 8080)
  --token-file FILE   file holding the admin token (default: $SEALPOST_ADMIN_TOKEN)
  --public-key KEY    with verify: a key to check signatures with (base64 SPKI as /status shows it, or
                      a file holding keys: one base64 SPKI a line, or PEM public keys); several for a
                      fleet. Given, every chain's key must be one of them and every entry must be
                      covered by a checkpoint. Default: each export header's own key (NOT pinned)
  -h, --help          this help

environment:
  SEALPOST_ADMIN_TOKEN  the admin token when --token-file is not given (default: none)
`;

export type ReceiptsCliIo = AdminCliIo;

/** `verify`'s report as text. Pure. */
export function formatVerify(file: string, r: VerifyReport, pinned: boolean): string {
  if (!r.ok) return printable(`${file}: line ${r.bad!.line}: ${r.bad!.why}`) + "\n";
  const lines = [
    `${file}: ok: ${r.receipts} receipt(s), ${r.redacted} redacted, ${r.checkpoints} checkpoint(s)` +
      ` in ${r.chains} chain(s)${r.first !== undefined ? `, seq ${r.first}..${r.last}` : ""}`,
  ];
  for (const h of r.headers) lines.push(`chain of ${h.relay} pod ${h.pod}: key ${h.keyId}`);
  if (r.checkpoints)
    lines.push(
      pinned
        ? `signatures verified with key ${r.keyIds.join(", ")} (given with --public-key)`
        : r.headers.length
          ? `signatures verified with key ${r.keyIds.join(", ")}: the key each export header supplies, ` +
            `NOT pinned (pass --public-key with the keys noted from /status)`
          : `signatures NOT checked (no --public-key, no export header); signed by key ${r.keyIds.join(", ")}`,
    );
  if (r.unsigned)
    lines.push(`warning: the last ${r.unsigned} entr(ies) follow the last checkpoint: not signed yet`);
  if (r.partialTail !== undefined)
    lines.push(`note: line ${r.partialTail} has no newline (an interrupted append): not an entry`);
  return lines.map(printable).join("\n") + "\n";
}

/** The keys of one --public-key: a base64 SPKI, or a file of them (one a line) or of PEM public keys. */
async function publicKeysOf(arg: string): Promise<KeyObject[]> {
  let text = arg;
  if (!/^[A-Za-z0-9+/=]{40,}$/.test(arg)) text = (await readFile(arg, "utf8")).trim();
  if (text.includes("-----BEGIN"))
    return (text.match(/-----BEGIN [^-]+-----[^-]+-----END [^-]+-----/g) ?? []).map((pem) =>
      createPublicKey(pem),
    );
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => createPublicKey({ key: Buffer.from(l, "base64"), format: "der", type: "spki" }));
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed or a bad entry, 2 usage). */
export async function runReceiptsCli(argv: string[], io: ReceiptsCliIo): Promise<number> {
  let a;
  try {
    a = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        admin: { type: "string", multiple: true },
        fleet: { type: "string" },
        namespace: { type: "string", short: "n" },
        "admin-port": { type: "string", default: "8080" },
        "token-file": { type: "string" },
        domain: { type: "string" },
        since: { type: "string" },
        output: { type: "string", short: "o" },
        "public-key": { type: "string", multiple: true },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    io.err(`sealpost receipts: ${(e as Error).message}\nRun 'sealpost receipts --help' for the flags.\n`);
    return 2;
  }
  const [cmd, ...rest] = a.positionals;
  const v = a.values;
  if (v.help) {
    io.out(USAGE);
    return 0;
  }
  if (cmd === "verify") {
    const file = rest[0];
    if (!file || rest.length > 1) {
      io.err(
        "sealpost receipts verify: one FILE is required\nRun 'sealpost receipts --help' for the flags.\n",
      );
      return 2;
    }
    const keys: KeyObject[] = [];
    for (const arg of v["public-key"] ?? [])
      try {
        const found = await publicKeysOf(arg);
        if (!found.length) throw new Error(`no public key in ${arg}`);
        keys.push(...found);
      } catch (e) {
        io.err(printable(`sealpost receipts verify: --public-key: ${(e as Error).message}`) + "\n");
        return 2;
      }
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      io.err(printable(`sealpost receipts verify: ${(e as Error).message}`) + "\n");
      return 1;
    }
    const r = verifyReceipts(text, keys.length ? keys : undefined);
    const report = formatVerify(file, r, keys.length > 0);
    if (r.ok) io.out(report);
    else io.err(report);
    return r.ok ? 0 : 1;
  }
  if (cmd !== "export") {
    io.err(
      cmd
        ? `sealpost receipts: unknown command "${printable(cmd)}"\nRun 'sealpost receipts --help' for the commands.\n`
        : USAGE,
    );
    return 2;
  }
  const token = await adminToken(v["token-file"], io, "sealpost receipts");
  if (typeof token === "number") return token;
  const admins = adminUrls(v.admin);
  const targets = await commandTargets(v, admins, "sealpost receipts", (s) => io.err(s));
  if (typeof targets === "number") return targets;
  const q = new URLSearchParams();
  if (v.domain) q.set("domain", v.domain);
  if (v.since) q.set("since", v.since);
  let out = "";
  let failed = 0;
  for (const t of targets) {
    const url = `${t.url.replace(/\/+$/, "")}/receipts${q.size ? `?${q.toString()}` : ""}`;
    try {
      const r = await (io.fetch ?? fetch)(url, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      const body = await r.text();
      if (!r.ok) {
        let why = `HTTP ${r.status}`;
        try {
          why = (JSON.parse(body) as { error?: string }).error ?? why;
        } catch {
          // not JSON: the status says it
        }
        throw new Error(why);
      }
      out += body;
    } catch (e) {
      failed++;
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      io.err(printable(`sealpost receipts export: ${t.pod}: ${cause ?? (e as Error).message}`) + "\n");
    }
  }
  if (v.output) await writeFile(v.output, out);
  else io.out(out);
  return failed ? 1 : 0;
}
