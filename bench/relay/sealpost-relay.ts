// Sealpost's relay under test: a child process running the compiled entry point as the image does
// (`node <compiled>/bin/sealpost.js relay`, bench/operator/build.ts) from a config directory written kubelet-style, with STARTTLS on its port-25 listener
// (bound to 127.0.0.1:<free port>), one policy routing the bench domain to the sink with outbound
// TLS mode `required`, and the durable queue (fsync before 250) in a temp dir.
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { CONFIG_VERSION, type RelayConfigInput } from "../../relay/contract/config.js";
import { freePort } from "../../test/support/ports.js";
import { startProcess, waitFor, type Managed } from "../../test/support/process.js";
import { writeConfigDir } from "../../test/support/relay.js";
import { repoRoot } from "../../test/support/toolchain.js";
import { buildCompiled } from "../operator/build.js";

export interface RelayUnderTest {
  name: string;
  port: number;
  /** Root of the process tree to measure. */
  pid: number;
  /** Set for a single-process relay: its VmHWM is the exact peak RSS. */
  singleProcess: boolean;
  stop(): Promise<void>;
}

export interface SealpostOptions {
  dir: string;
  sinkPort: number;
  domain: string;
  cert: { certFile: string; keyFile: string };
  /** inbound.limits.maxConnectionsPerIp: at least the load's concurrency. */
  maxConnectionsPerIp: number;
  /** Concurrent deliveries (queue.workers). */
  workers: number;
  /** Write a V8 CPU profile (node --cpu-prof) into this directory when the relay exits. */
  cpuProfDir?: string;
  /** The node binary to run the relay with (the image's: the current LTS). */
  node: string;
  /** The compiled JavaScript the image runs, or the sources through tsx. */
  runtime: "compiled" | "tsx";
}

export async function startSealpost(o: SealpostOptions): Promise<RelayUnderTest> {
  const configDir = join(o.dir, "config");
  const queueDir = join(o.dir, "queue");
  await mkdir(queueDir, { recursive: true });
  const [smtp, admin] = [await freePort(), await freePort()];
  const config: RelayConfigInput = {
    version: CONFIG_VERSION,
    relay: "bench/edge",
    generation: 1,
    hostname: "relay.bench",
    listeners: {
      smtp: { port: smtp, host: "127.0.0.1" },
      smtps: { enabled: false, port: 465, host: "127.0.0.1" },
      submission: { enabled: false, port: 587, host: "127.0.0.1" },
    },
    admin: { port: admin, host: "127.0.0.1" },
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    // The load generator is one trusted internal sender on one address: like Postfix's mynetworks
    // (exempt from smtpd_client_connection_count_limit), not capped at the per-IP default of 20.
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      limits: { maxConnectionsPerIp: o.maxConnectionsPerIp },
    },
    policies: [
      {
        name: "bench/sink",
        domains: [o.domain],
        outbound: { tls: { mode: "required" }, nextHop: { host: "127.0.0.1", port: o.sinkPort } },
      },
    ],
    queue: { dir: queueDir, workers: o.workers, retry: { initial: 1, max: 5 } },
  };
  await writeConfigDir(configDir, {
    "config.json": JSON.stringify(config, null, 2),
    "tls/tls.crt": await readFile(o.cert.certFile),
    "tls/tls.key": await readFile(o.cert.keyFile),
  });
  // the compiled JavaScript the image runs (`sealpost relay`), not tsx, so that CPU and memory are
  // production's; node flags on the command line (--cpu-prof is not allowed in NODE_OPTIONS)
  const entry =
    o.runtime === "tsx"
      ? ["--import", "tsx", join(repoRoot, "relay/main.ts")]
      : [join(await buildCompiled(), "bin/sealpost.js"), "relay"];
  const logFile = join(o.dir, "relay.log");
  const logFd = openSync(logFile, "a");
  const m: Managed = startProcess(
    "relay",
    o.node,
    [
      ...(o.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`] : []),
      ...(process.env.SEALPOST_BENCH_RELAY_NODE_ARGS ?? "").split(" ").filter(Boolean),
      ...[...entry, "--config", configDir, "--poll-ms", "200"],
    ],
    logFile,
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        SEALPOST_GRACE_SECONDS: "2",
        ...(process.env.SEALPOST_BENCH_RELAY_NODE_OPTIONS !== undefined
          ? { NODE_OPTIONS: process.env.SEALPOST_BENCH_RELAY_NODE_OPTIONS }
          : {}),
      },
      // the relay's log goes straight to its file, as a container's stdout goes to the runtime's
      // log: not through a pipe into this process, which is the load generator (Postfix logs to
      // its own postlogd, which is measured with it)
      stdio: ["ignore", logFd, logFd],
    },
  );
  closeSync(logFd); // the child has its own copy
  await waitFor(
    "relay /readyz",
    async () => {
      if (m.child.exitCode !== null) throw new Error(`relay exited: ${await m.log()}`);
      const r = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    30_000,
    100,
  );
  return {
    name: "sealpost",
    port: smtp,
    pid: m.child.pid!,
    singleProcess: true,
    stop: () => m.stop(10_000),
  };
}
