// Postfix from Debian as the equivalent relay: a private instance in a temp dir (own config, queue
// and data folders; never the system instance), as test/support/postfix.ts runs its peers, but with
// the services a relay needs (smtp, tlsproxy) and a relay's main.cf:
//   smtpd with STARTTLS offered (smtpd_tls_security_level = may) on 127.0.0.1:<free port>,
//   mynetworks = 127.0.0.0/8 (loopback may relay, like Sealpost's relayFrom),
//   relayhost = [127.0.0.1]:<sink>, smtp_tls_security_level = encrypt (TLS or defer, like `required`),
//   smtp_tls_connection_reuse = yes through tlsproxy (reuses TLS connections, like Sealpost's pool),
//   default_destination_concurrency_limit = the same number as Sealpost's queue.workers.
// The queue is Postfix's own: cleanup fsyncs the queue file before smtpd answers 250 (the default).
import { execFile } from "node:child_process";
import { chmod, chown, mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../test/support/ports.js";
import { startProcess, waitFor } from "../../test/support/process.js";
import type { RelayUnderTest } from "./sealpost-relay.js";

const run = promisify(execFile);

export interface PostfixRelayOptions {
  dir: string;
  sinkPort: number;
  cert: { certFile: string; keyFile: string };
  /** default_destination_concurrency_limit: parallel deliveries to the sink. */
  concurrency: number;
  /** Extra main.cf settings, applied last (for experiments: --postfix key=value,...). */
  config?: Record<string, string>;
}

// Stock master.cf services, none chrooted, plus smtp/relay and tlsproxy for connection reuse.
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
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
`;

function mainCf(o: PostfixRelayOptions): string {
  const s: Record<string, string> = {
    compatibility_level: "3.6",
    queue_directory: join(o.dir, "queue"),
    data_directory: join(o.dir, "data"),
    mail_owner: "postfix",
    setgid_group: "postdrop",
    myhostname: "relay.bench",
    myorigin: "$myhostname",
    mydestination: "",
    mynetworks: "127.0.0.0/8",
    inet_interfaces: "127.0.0.1",
    inet_protocols: "ipv4",
    smtpd_peername_lookup: "no",
    smtp_dns_support_level: "disabled",
    alias_maps: "",
    alias_database: "",
    local_recipient_maps: "",
    biff: "no",
    relayhost: `[127.0.0.1]:${o.sinkPort}`,
    smtpd_relay_restrictions: "permit_mynetworks, reject_unauth_destination",
    smtpd_tls_security_level: "may",
    smtpd_tls_cert_file: o.cert.certFile,
    smtpd_tls_key_file: o.cert.keyFile,
    smtpd_tls_loglevel: "0",
    smtp_tls_security_level: "encrypt",
    smtp_tls_connection_reuse: "yes",
    smtp_tls_loglevel: "0",
    smtp_tls_session_cache_database: `btree:${join(o.dir, "data", "smtp_scache")}`,
    default_destination_concurrency_limit: String(o.concurrency),
    default_process_limit: String(Math.max(100, 3 * o.concurrency)),
    maillog_file: join(o.dir, "postfix.log"),
    maillog_file_prefixes: o.dir,
    ...o.config,
  };
  return (
    Object.entries(s)
      .map(([k, v]) => `${k} = ${v}`)
      .join("\n") + "\n"
  );
}

// Postfix waits until a config file is over a second old; back-dating saves that wait.
async function writeConfig(file: string, text: string): Promise<void> {
  await writeFile(file, text);
  const past = new Date(Date.now() - 60_000);
  await utimes(file, past, past);
}

async function uidOf(user: string): Promise<number> {
  const { stdout } = await run("id", ["-u", user]);
  return Number(stdout.trim());
}

function listening(port: number): Promise<boolean> {
  return run("ss", ["-Hltn", `sport = :${port}`]).then(
    (r) => r.stdout.trim().length > 0,
    () => false,
  );
}

export async function startPostfixRelay(o: PostfixRelayOptions): Promise<RelayUnderTest> {
  await chmod(o.dir, 0o755); // the postfix user walks into it
  const etc = join(o.dir, "etc");
  for (const d of ["etc", "queue", "data"]) await mkdir(join(o.dir, d), { recursive: true });
  await chown(join(o.dir, "data"), await uidOf("postfix"), 0);
  const port = await freePort();
  await writeConfig(join(etc, "main.cf"), mainCf(o));
  await writeConfig(join(etc, "master.cf"), `127.0.0.1:${port} inet n - n - - smtpd\n${services}`);
  await run("postfix", ["-c", etc, "check"]);
  const master = startProcess(
    "postfix-master",
    "/usr/lib/postfix/sbin/master",
    ["-c", etc],
    join(o.dir, "master.out"),
  );
  await waitFor(
    `Postfix listening on 127.0.0.1:${port}`,
    async () => {
      if (master.child.exitCode !== null || master.child.signalCode !== null)
        throw new Error("master exited");
      return (await listening(port)) ? true : undefined;
    },
    15_000,
    50,
  );
  return {
    name: "postfix",
    port,
    pid: master.child.pid!,
    singleProcess: false,
    stop: () => master.stop(5000),
  };
}
