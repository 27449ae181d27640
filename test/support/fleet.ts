// A small "StatefulSet in processes" for rollout tests: N relay child processes (`tsx relay/main.ts`),
// pod <ordinal> with its own config dir (kubelet-style, relay.ts's writeConfigDir) and its own queue
// dir (its PVC, kept across restarts), behind a TCP front that plays the Service: it routes each new
// connection round-robin to a pod whose /readyz answered 200 at the last poll (every 100 ms), and a
// connection it cannot place (no ready pod, or the pod refuses) is closed, as a Service without
// endpoints would. Every pod's queue.handover points at the front (the operator points it at the
// Service). Pods share the admin token (the fleet's Secret).
//
// terminate() does what kubelet does to a pod of the rendered StatefulSet: the preStop hook exactly as
// operator/render/statefulset.ts renders it (`sealpost queue drain --wait ...`, with the admin URL and
// the token path mapped to this process), then SIGTERM, SIGKILL when terminationGracePeriodSeconds
// runs out; or, with `sigtermDrain`, no hook and SIGTERM with SEALPOST_DRAIN_ON_STOP=true.
import { readFile, mkdtemp, rm } from "node:fs/promises";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drainHook, TERMINATION_GRACE_SECONDS } from "../../operator/render/statefulset.js";
import { ADMIN_PORT, CONFIG_DIR } from "../../operator/render/meta.js";
import type { RelayRenderInput } from "../../operator/render/input.js";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { readSpool } from "../../relay/queue/spool.js";
import { makeCa, makeLeaf, type Ca, type Leaf } from "./certs.js";
import { freePort } from "./ports.js";
import { startProcess, type Managed } from "./process.js";
import { startRelayProcess, testConfig, testPorts, writeConfigDir, type TestPorts } from "./relay.js";

const root = new URL("../..", import.meta.url).pathname;

export interface FleetPod {
  ordinal: number;
  ports: TestPorts;
  configDir: string;
  /** The pod's volume: survives terminate()/start(). */
  queueDir: string;
  /** The running process (undefined between terminate() and start()). */
  proc: Managed | undefined;
  /** Log files of every incarnation, oldest first. */
  logFiles: string[];
  generation: number;
  /** Last /readyz poll said 200. */
  ready: boolean;
  /** Connections the front routed to this pod. */
  routed: number;
}

export interface TerminateResult {
  /** preStop hook: exit code and output (undefined with sigtermDrain). */
  hook?: { exit: number | string; output: string };
  exit: number | string;
  /** The relay's own "drain drained|incomplete" log line, parsed (state, remaining, handedOver...). */
  drain?: Record<string, unknown>;
}

export interface Fleet {
  work: string;
  ca: Ca;
  relayCert: Leaf;
  token: string;
  front: { host: string; port: number; refused: number };
  pods: FleetPod[];
  /** Writes pod `ordinal`'s config (a new generation): base + `patch(pod)`; not a reload. */
  configure(ordinal: number): Promise<void>;
  /** Starts pod `ordinal` on its config and volume; resolves when /readyz is 200. */
  start(ordinal: number): Promise<void>;
  terminate(ordinal: number, o?: { sigtermDrain?: boolean }): Promise<TerminateResult>;
  /** Messages left in the pod's spool (its journal and env/ + msg/, read from the volume). */
  spoolMessages(ordinal: number): Promise<number>;
  stop(): Promise<void>;
}

export interface FleetOptions {
  name: string;
  replicas: number;
  /** The pod's part of its config (policies...), called at every configure(); queue is merged. */
  patch(pod: FleetPod): Partial<RelayConfigInput>;
  token?: string;
  /** Extra environment of the pod's relay process (e.g. SEALPOST_DRAIN_ON_STOP for terminate's sigtermDrain). */
  env?(pod: FleetPod): NodeJS.ProcessEnv;
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const work = await mkdtemp(join(tmpdir(), `${o.name}-`));
  const ca = await makeCa(join(work, "ca"));
  const relayCert = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  const token = o.token ?? "fleet-admin-token-0123456789";
  const pods: FleetPod[] = [];
  for (let i = 0; i < o.replicas; i++)
    pods.push({
      ordinal: i,
      ports: await testPorts(),
      configDir: join(work, `relay-${i}`, "config"),
      queueDir: join(work, `relay-${i}`, "queue"),
      proc: undefined,
      logFiles: [],
      generation: 0,
      ready: false,
      routed: 0,
    });

  // the Service
  const front = { host: "127.0.0.1", port: await freePort(), refused: 0 };
  let rr = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    const ready = pods.filter((p) => p.ready && p.proc);
    if (!ready.length) {
      front.refused++;
      return void client.destroy();
    }
    const pod = ready[rr++ % ready.length]!;
    pod.routed++;
    const up = net.connect({ host: "127.0.0.1", port: pod.ports.smtp });
    sockets.add(up);
    up.on("close", () => {
      sockets.delete(up);
      client.destroy();
    });
    up.on("error", () => {
      front.refused++;
      client.destroy();
    });
    client.on("close", () => up.destroy());
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((r) => server.listen(front.port, front.host, r));

  let polling = true;
  const poll = async (): Promise<void> => {
    while (polling) {
      await Promise.all(
        pods.map(async (p) => {
          if (!p.proc) return void (p.ready = false);
          const r = await fetch(`http://127.0.0.1:${p.ports.admin}/readyz`, {
            signal: AbortSignal.timeout(1000),
          }).catch(() => undefined);
          p.ready = r?.status === 200;
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const poller = poll();

  const fleet: Fleet = {
    work,
    ca,
    relayCert,
    token,
    front,
    pods,
    async configure(ordinal) {
      const pod = pods[ordinal]!;
      pod.generation++;
      const patch = o.patch(pod);
      const base = testConfig(pod.ports, pod.queueDir);
      const cfg: RelayConfigInput = {
        ...base,
        relay: "mail/edge",
        hostname: `edge-${ordinal}.relay.test`,
        generation: pod.generation,
        admin: { port: pod.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
        // the handover's own credential (the operator's `<relay>-fleet` Secret)
        fleet: { keyFile: "secrets/fleet/key" },
        ...patch,
        queue: { ...base.queue, ...patch.queue, handover: { host: front.host, port: front.port } },
      };
      await writeConfigDir(pod.configDir, {
        "config.json": JSON.stringify(cfg),
        "tls/tls.crt": await readFile(relayCert.certFile),
        "tls/tls.key": await readFile(relayCert.keyFile),
        "secrets/admin/token": `${token}\n`,
        "secrets/fleet/key": `fleet-${token}\n`,
      });
    },
    async start(ordinal) {
      const pod = pods[ordinal]!;
      if (pod.proc) throw new Error(`relay-${ordinal} is running`);
      const logFile = join(work, `relay-${ordinal}.${pod.logFiles.length}.log`);
      pod.logFiles.push(logFile);
      pod.proc = await startRelayProcess(pod.configDir, pod.ports.admin, logFile, o.env?.(pod) ?? {});
    },
    async terminate(ordinal, t = {}) {
      const pod = pods[ordinal]!;
      const proc = pod.proc;
      if (!proc) throw new Error(`relay-${ordinal} is not running`);
      const deadline = Date.now() + TERMINATION_GRACE_SECONDS * 1000;
      const out: TerminateResult = { exit: "" };
      if (t.sigtermDrain) {
        proc.child.kill("SIGTERM");
      } else {
        const hook = await runPreStop(pod, work, deadline);
        out.hook = hook;
        proc.child.kill("SIGTERM");
      }
      const kill = setTimeout(() => proc.child.kill("SIGKILL"), Math.max(0, deadline - Date.now()));
      out.exit = await proc.exited;
      clearTimeout(kill);
      pod.proc = undefined;
      pod.ready = false;
      out.drain = (await readFile(pod.logFiles.at(-1)!, "utf8"))
        .split("\n")
        .filter((l) => l.includes('"event":"drain"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .findLast((l) => l.state === "drained" || l.state === "incomplete");
      return out;
    },
    async spoolMessages(ordinal) {
      return (await readSpool(pods[ordinal]!.queueDir)).length;
    },
    async stop() {
      polling = false;
      await poller;
      await Promise.all(pods.map((p) => (p.proc ? p.proc.stop(5000) : Promise.resolve())));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(work, { recursive: true, force: true });
    },
  };
  return fleet;
}

/**
 * The rendered preStop hook (operator/render/statefulset.ts drainHook) run against this pod: the
 * image's entry point becomes `node --import tsx bin/sealpost.ts`, the pod's admin URL and config
 * dir become this process's.
 */
async function runPreStop(
  pod: FleetPod,
  work: string,
  deadline: number,
): Promise<{ exit: number | string; output: string }> {
  const entry = ["sealpost-entry"];
  const rendered = drainHook({
    drainTokenFile: "secrets/admin/token",
    settings: { command: entry },
  } as unknown as RelayRenderInput) as { preStop: { exec: { command: string[] } } } | undefined;
  if (!rendered) throw new Error("drainHook rendered no hook");
  const args = rendered.preStop.exec.command
    .slice(entry.length)
    .map((a) =>
      a
        .replace(`http://127.0.0.1:${ADMIN_PORT}`, `http://127.0.0.1:${pod.ports.admin}`)
        .replace(`${CONFIG_DIR}/`, `${pod.configDir}/`),
    );
  const logFile = join(work, `prestop-${pod.ordinal}.${pod.logFiles.length}.log`);
  const hook = startProcess(
    "prestop",
    process.execPath,
    ["--import", "tsx", join(root, "bin/sealpost.ts"), ...args],
    logFile,
    { cwd: root },
  );
  const kill = setTimeout(() => hook.child.kill("SIGKILL"), Math.max(0, deadline - Date.now()));
  const exit = await hook.exited;
  clearTimeout(kill);
  return { exit, output: await hook.log() };
}
