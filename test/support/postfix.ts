// A real Postfix as the partner MTA in tests: a private instance per test (own config, queue, data,
// mail and log folders in a temp dir; never the system instance), listening on a free 127.0.0.1
// port, accepting mail for the given domains into Maildirs the test reads back.
//
// Why master(8) is spawned directly instead of `postfix start`: in the foreground it is our child,
// so process.ts kills it if the test process ends early, and Postfix's own daemons exit by
// themselves once their master is gone. `postfix check` still prepares the queue folders first.
//
// Needs root (master binds, then drops to the postfix user) and the packages of scripts/setup.sh.
import { execFile } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { readFileSync, rmSync } from "node:fs";
import { userInfo, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readMaildirs, type Message } from "./mailbox.js";
import { freePort } from "./ports.js";
import { startProcess, waitFor, type Managed } from "./process.js";

export type { Message } from "./mailbox.js";

const run = promisify(execFile);

/** none: no STARTTLS; offer: STARTTLS offered, clear accepted (may); require: no MAIL before STARTTLS (encrypt). */
export type PostfixTls = "none" | "offer" | "require";

export interface PostfixOptions {
  /** Domains this MTA is the final destination for; mail to any other domain is refused (554). */
  domains: string[];
  /** Only these addresses exist (others: 550 5.1.1 unknown); default: every address at the domains. */
  recipients?: string[];
  /** Default: "offer" when a certificate is given, else "none". */
  tls?: PostfixTls;
  /** Server certificate and key (a certs.ts Leaf fits); needed unless tls is "none". */
  cert?: { certFile: string; keyFile: string };
  /** Require SMTP AUTH (PLAIN/LOGIN, only after STARTTLS) with this account before MAIL. */
  auth?: { username: string; password: string };
  /** smtpd_tls_protocols and smtpd_tls_mandatory_protocols, e.g. "<=TLSv1.2" for a peer without 1.3. */
  tlsProtocols?: string;
  /**
   * Ask for a client certificate and trust this CA for it (the log then says "Trusted TLS connection");
   * with require, a client without a trusted certificate gets no MAIL (tls must be "require").
   */
  clientCerts?: { caFile: string; require?: boolean };
  /** myhostname (EHLO name and banner); default "mx." + the first domain. */
  hostname?: string;
  /** Extra main.cf settings, applied last (they win). */
  config?: Record<string, string>;
  /** Keep the temp dir after stop() (for debugging). */
  keep?: boolean;
  /**
   * Listen here instead of on a free loopback port: the end-to-end suite's partners listen on the host
   * side of the node's network (test/support/node.ts), on the ports a relay pod dials (25, 587).
   */
  listen?: { host: string; port: number };
}

export interface PostfixPeer {
  host: string;
  port: number;
  hostname: string;
  /** The instance's temp dir: etc/ (main.cf, master.cf), queue/, data/, mail/, postfix.log. */
  dir: string;
  /** Postfix's log (maillog_file). */
  logFile: string;
  /** Delivered messages so far, oldest first. */
  messages(): Promise<Message[]>;
  /** Resolves with all messages once at least n have been delivered; rejects with the log tail on timeout. */
  waitForMessages(n: number, timeoutMs?: number): Promise<Message[]>;
  /** Postfix's log so far ("" before the first line). */
  log(): string;
  /** Resolves with the first log line matching, e.g. /TLS connection established from/. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Stops master (SIGTERM, then SIGKILL) and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** The master process, for fault tests. */
  master: Managed;
}

const daemonDir = "/usr/lib/postfix/sbin";

// Temp dirs of instances not stopped yet: removed when the test process exits without stop() (a
// failed before() hook, an uncaught error). process.ts kills their masters on the same exit.
const leftovers = new Set<string>();
process.on("exit", () => {
  for (const dir of leftovers) rmSync(dir, { recursive: true, force: true });
});

// The stock master.cf services the tests need, none chrooted (a chroot would need copies of
// /etc files inside the temp dir). The pipe(8) services of the stock file are left out.
const services = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/** master.cf: smtpd on 127.0.0.1:port, the stock services above, and `extra` service lines. */
export function masterCf(port: number, extra = "", host = "127.0.0.1"): string {
  return `${host}:${port} inet n - n - - smtpd\n${services}${extra}`;
}

export async function startPostfix(opts: PostfixOptions): Promise<PostfixPeer> {
  if (userInfo().uid !== 0)
    throw new Error("startPostfix needs root: Postfix's master binds and then drops to the postfix user");
  const tls = opts.tls ?? (opts.cert ? "offer" : "none");
  if (tls !== "none" && !opts.cert) throw new Error(`startPostfix: tls "${tls}" needs a cert`);
  if (opts.domains.length === 0) throw new Error("startPostfix: no domains");
  const hostname = opts.hostname ?? `mx.${opts.domains[0]}`;
  const dir = await mkdtemp(join(tmpdir(), "sealpost-postfix-"));
  try {
    // Postfix's daemons run as the postfix user and virtual(8) delivers as nobody: both must be able
    // to walk into the temp dir, which mkdtemp creates private to root.
    await chmod(dir, 0o755);
    const etc = join(dir, "etc");
    const mail = join(dir, "mail");
    await Promise.all(
      ["etc/sasl", "queue", "data", "mail"].map((d) => mkdir(join(dir, d), { recursive: true })),
    );
    const [postfixUid] = await ids("postfix");
    const [nobodyUid, nobodyGid] = await ids("nobody");
    await chown(join(dir, "data"), postfixUid, 0);
    await chown(mail, nobodyUid, nobodyGid);

    // Virtual mailbox map: one Maildir per listed recipient, or one catch-all Maildir per domain.
    const mailboxes = opts.recipients
      ? opts.recipients.map((r) => `${r} ${domainOf(r)}/${localOf(r)}/`)
      : opts.domains.map((d) => `@${d} ${d}/_all/`);
    await writeConfig(join(etc, "vmailbox"), mailboxes.join("\n") + "\n");
    if (opts.auth) await writeSasl(etc, hostname, opts.auth, postfixUid);

    let lastError: unknown;
    // The free port can be taken between freePort() and master's bind: try another one then.
    const host = opts.listen?.host ?? "127.0.0.1";
    for (let attempt = 0; attempt < (opts.listen ? 1 : 3); attempt++) {
      const port = opts.listen?.port ?? (await freePort());
      const main = mainCf({ opts, tls, hostname, dir, etc, mail, deliverAs: [nobodyUid, nobodyGid] });
      await writeConfig(join(etc, "main.cf"), main);
      await writeConfig(join(etc, "master.cf"), masterCf(port, "", host));
      // postfix(1) reports into maillog_file rather than stderr, hence the log tail on failure
      await run("postfix", ["-c", etc, "check"]).catch((e: { stderr?: string; message: string }) => {
        throw new Error(`postfix check failed: ${e.stderr || e.message}\n${tail(readLog(dir))}`);
      });
      const master = startProcess(
        "postfix-master",
        join(daemonDir, "master"),
        ["-c", etc],
        join(dir, "master.out"),
      );
      try {
        await waitFor(
          `Postfix listening on ${host}:${port}`,
          () => {
            if (master.child.exitCode !== null || master.child.signalCode !== null)
              throw new Error("master exited");
            return listening(host, port) ? true : undefined;
          },
          15_000,
          50,
        );
        if (!opts.keep) leftovers.add(dir);
        return peer({ dir, etc, mail, host, port, hostname, master, keep: opts.keep ?? false });
      } catch (e) {
        await master.stop(1000);
        lastError = new Error(`${(e as Error).message}\n${tail(readLog(dir))}`);
        if (!/Address already in use/.test(readLog(dir))) break;
      }
    }
    throw lastError;
  } catch (e) {
    if (!opts.keep) await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

interface MainCfArgs {
  opts: PostfixOptions;
  tls: PostfixTls;
  hostname: string;
  dir: string;
  etc: string;
  mail: string;
  /** uid and gid virtual(8) delivers as. */
  deliverAs: [number, number];
}

function mainCf(a: MainCfArgs): string {
  const { opts, tls } = a;
  const noDelivery = "error:5.7.1 this test MTA delivers to its own domains only";
  const settings: Record<string, string> = {
    compatibility_level: "3.6",
    queue_directory: join(a.dir, "queue"),
    data_directory: join(a.dir, "data"),
    mail_owner: "postfix",
    setgid_group: "postdrop",
    myhostname: a.hostname,
    myorigin: "$myhostname",
    mydestination: "",
    // Nothing is trusted by address: the loopback client must not be an open-relay exception.
    mynetworks: "",
    inet_interfaces: opts.listen?.host ?? "127.0.0.1",
    inet_protocols: "ipv4",
    // No DNS from the test MTA: client names are not looked up, and nothing is ever relayed onward.
    smtpd_peername_lookup: "no",
    smtp_dns_support_level: "disabled",
    default_transport: noDelivery,
    relay_transport: noDelivery,
    alias_maps: "",
    alias_database: "",
    local_recipient_maps: "",
    biff: "no",
    virtual_mailbox_domains: opts.domains.join(", "),
    virtual_mailbox_base: a.mail,
    // texthash: needs no postmap run.
    virtual_mailbox_maps: `texthash:${join(a.etc, "vmailbox")}`,
    virtual_minimum_uid: "1",
    virtual_uid_maps: `static:${a.deliverAs[0]}`,
    virtual_gid_maps: `static:${a.deliverAs[1]}`,
    smtpd_relay_restrictions: "reject_unauth_destination",
    // Reject at the command that is wrong (MAIL without AUTH answers 530 there, not at RCPT).
    smtpd_delay_reject: "no",
    maillog_file: join(a.dir, "postfix.log"),
    maillog_file_prefixes: a.dir,
    smtpd_tls_security_level: { none: "none", offer: "may", require: "encrypt" }[tls],
    // loglevel 1 logs "... TLS connection established from ...: TLSv1.3 with cipher ..." per session.
    smtpd_tls_loglevel: "1",
    smtpd_tls_received_header: "yes",
  };
  if (opts.cert) {
    settings.smtpd_tls_cert_file = opts.cert.certFile;
    settings.smtpd_tls_key_file = opts.cert.keyFile;
  }
  if (opts.tlsProtocols) {
    settings.smtpd_tls_protocols = opts.tlsProtocols;
    settings.smtpd_tls_mandatory_protocols = opts.tlsProtocols;
  }
  if (opts.clientCerts) {
    settings.smtpd_tls_ask_ccert = "yes";
    settings.smtpd_tls_CAfile = opts.clientCerts.caFile;
    if (opts.clientCerts.require) settings.smtpd_tls_req_ccert = "yes";
  }
  if (opts.auth) {
    settings.smtpd_sasl_auth_enable = "yes";
    settings.smtpd_sasl_type = "cyrus";
    settings.smtpd_sasl_path = "smtpd";
    // Debian's build reads <config_directory>/sasl/smtpd.conf; other builds honour this setting.
    settings.cyrus_sasl_config_path = join(a.etc, "sasl");
    settings.smtpd_tls_auth_only = "yes";
    settings.smtpd_sender_restrictions =
      "permit_sasl_authenticated, check_client_access static:{530 5.7.0 Authentication required}";
  }
  Object.assign(settings, opts.config ?? {});
  return (
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join("\n") + "\n"
  );
}

// A private sasldb (auxprop) with the one account. Cyrus stores user@realm; a login without a realm
// is looked up in the server's hostname realm, one with "@" in the realm after it.
async function writeSasl(
  etc: string,
  hostname: string,
  auth: { username: string; password: string },
  postfixUid: number,
) {
  const sasldb = join(etc, "sasl", "sasldb2");
  await writeConfig(
    join(etc, "sasl", "smtpd.conf"),
    `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: ${sasldb}\n`,
  );
  const at = auth.username.lastIndexOf("@");
  const [user, realm] =
    at > 0 ? [auth.username.slice(0, at), auth.username.slice(at + 1)] : [auth.username, hostname];
  const p = run("saslpasswd2", ["-f", sasldb, "-c", "-p", "-u", realm, user]);
  p.child.stdin?.end(auth.password);
  await p;
  await chown(sasldb, postfixUid, 0); // smtpd reads it as the postfix user
}

function peer(a: {
  dir: string;
  etc: string;
  mail: string;
  host: string;
  port: number;
  hostname: string;
  master: Managed;
  keep: boolean;
}): PostfixPeer {
  let stopped: Promise<void> | undefined;
  const messages = () => readMaildirs(a.mail);
  return {
    host: a.host,
    port: a.port,
    hostname: a.hostname,
    dir: a.dir,
    logFile: join(a.dir, "postfix.log"),
    master: a.master,
    messages,
    log: () => readLog(a.dir),
    async waitForMessages(n, timeoutMs = 20_000) {
      try {
        return await waitFor(
          `${n} message(s) delivered`,
          async () => {
            const ms = await messages();
            return ms.length >= n ? ms : undefined;
          },
          timeoutMs,
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${tail(readLog(a.dir))}`, { cause: e });
      }
    },
    async waitForLog(pattern, timeoutMs = 10_000) {
      try {
        return await waitFor(
          `Postfix log line ${pattern}`,
          () =>
            readLog(a.dir)
              .split("\n")
              .find((l) => pattern.test(l)),
          timeoutMs,
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${tail(readLog(a.dir))}`, { cause: e });
      }
    },
    stop() {
      stopped ??= (async () => {
        await a.master.stop(5000);
        if (!a.keep) await rm(a.dir, { recursive: true, force: true });
        leftovers.delete(a.dir);
      })();
      return stopped;
    },
  };
}

// Postfix waits (300 ms at a time) until a config or table file is over a second old, in case it
// is still being edited; back-dating our freshly written files saves that wait on every start.
export async function writeConfig(file: string, text: string): Promise<void> {
  await writeFile(file, text);
  const past = new Date(Date.now() - 60_000);
  await utimes(file, past, past);
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, "postfix.log"), "utf8");
  } catch {
    return "";
  }
}

function tail(log: string, lines = 30): string {
  return `--- postfix.log (last ${lines} lines) ---\n${log
    .split("\n")
    .slice(-lines - 1)
    .join("\n")}`;
}

// Whether something listens on 127.0.0.1:port, read from /proc instead of connecting: a probe
// connection would show up in Postfix's log as a session of its own.
function listening(host: string, port: number): boolean {
  // /proc/net/tcp: the IPv4 address as a little-endian hex word
  const ip = host
    .split(".")
    .reverse()
    .map((b) => Number(b).toString(16).toUpperCase().padStart(2, "0"))
    .join("");
  const hex = `${ip}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const table = readFileSync("/proc/net/tcp", "utf8");
  return table.split("\n").some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === hex && f[3] === "0A"; // 0A = LISTEN
  });
}

async function ids(user: string): Promise<[number, number]> {
  const { stdout } = await run("id", [user]);
  const uid = /uid=(\d+)/.exec(stdout)?.[1];
  const gid = /gid=(\d+)/.exec(stdout)?.[1];
  if (!uid || !gid) throw new Error(`no user ${user}: run scripts/setup.sh`);
  return [Number(uid), Number(gid)];
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1);
}

function localOf(address: string): string {
  return address.slice(0, address.lastIndexOf("@")).replace(/[^A-Za-z0-9._+-]/g, "_");
}
