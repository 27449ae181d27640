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
import { chmod, chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../test/support/ports.js";
import { masterCf, writeConfig } from "../../test/support/postfix.js";
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

// A relay's services beyond the test partner's stock set: smtp/relay out, tlsproxy for connection reuse.
const relayServices = `smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
tlsproxy  unix  -       -       n       -       0       tlsproxy
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
  await writeConfig(join(etc, "master.cf"), masterCf(port, relayServices));
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
