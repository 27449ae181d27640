// sealpost operator CLI.
//   tsx operator/main.ts [--kubeconfig FILE] [--namespaces a,b] [--leader-elect] [--metrics-port 8080]
//     [--health-port 8081] [--log-level info] [--relay-image IMG] [--relay-command "node dist/relay/main.js"]
// Every flag has an environment variable (SEALPOST_<FLAG_IN_CAPS>, e.g. SEALPOST_RELAY_IMAGE); flags win.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { parseOrExit, version } from "../bin/usage.js";
import { count, flagEnv, labels, OPERATOR_FLAGS, seconds, type OperatorFlag } from "./flags.js";
import { OPERATOR_HELP } from "./help.js";
import { loadKubeAuth } from "./runtime/kubeconfig.js";
import { Operator } from "./operator.js";
import { KubeClient } from "./runtime/kube.js";
import { relayImageFromOwnPod } from "./runtime/relay-image-source.js";
import { serveHttp } from "./runtime/health.js";
import { limitHeapGrowth } from "./runtime/heap-growth.js";
import { LeaderElector } from "./runtime/leader.js";
import { OperatorMetrics } from "./runtime/metrics.js";

const options = {
  ...Object.fromEntries(
    OPERATOR_FLAGS.map(([name, arg]) => [name, { type: arg === undefined ? "boolean" : "string" } as const]),
  ),
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

function flag(values: Record<string, unknown>, name: OperatorFlag): string | undefined {
  const v = values[name];
  if (typeof v === "string") return v;
  if (v === true) return "true";
  return process.env[flagEnv(name)];
}

async function main(): Promise<void> {
  const { values } = parseOrExit("sealpost operator", () => parseArgs({ options, allowPositionals: false }));
  if (values.help) return void process.stdout.write(OPERATOR_HELP);
  if (values.version) return void process.stdout.write(`sealpost ${version()}\n`);
  limitHeapGrowth();
  const log = pino({ level: flag(values, "log-level") ?? "info", base: { component: "operator" } });
  // client-node's KubeConfig only when the kubeconfig needs it (runtime/kubeconfig.ts)
  const kc = await loadKubeAuth(flag(values, "kubeconfig"));

  const identity = flag(values, "identity") ?? `${hostname()}_${process.pid}`;
  const operatorNamespace =
    flag(values, "operator-namespace") ?? process.env.POD_NAMESPACE ?? "sealpost-system";
  const namespaces = flag(values, "namespaces")
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const command = flag(values, "relay-command");
  const imageContainer = flag(values, "relay-image-from-container");
  const relayImage = imageContainer
    ? await relayImageFromOwnPod(new KubeClient(kc), operatorNamespace, process.env.POD_NAME, imageContainer)
    : (flag(values, "relay-image") ?? "ghcr.io/sealpost/sealpost:latest");
  const metrics = new OperatorMetrics(true);
  const op = new Operator({
    kubeConfig: kc,
    namespaces,
    log,
    identity,
    metrics,
    resyncMs: seconds(flag(values, "resync-period"), 300),
    figuresPollMs: seconds(flag(values, "policy-figures-period"), 30),
    workers: count(flag(values, "policy-workers"), 16),
    relayIntervalMs: seconds(flag(values, "relay-min-interval"), 0.25),
    settings: {
      image: relayImage,
      allowedImages: (flag(values, "allowed-relay-images") ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      imagePullPolicy:
        (flag(values, "relay-image-pull-policy") as "IfNotPresent" | undefined) ?? "IfNotPresent",
      ...(command ? { command: command.split(" ").filter(Boolean) } : {}),
      operatorNamespace,
      operatorPodLabels: labels(
        flag(values, "operator-pod-labels") ?? "app.kubernetes.io/name=sealpost-operator",
      ),
    },
  });

  let leader: LeaderElector | undefined;
  let leaderHealthy = true;
  const bind = flag(values, "bind-address") ?? "0.0.0.0";
  const healthPort = Number(flag(values, "health-port") ?? 8081);
  const metricsPort = Number(flag(values, "metrics-port") ?? 8080);
  const health = { healthy: () => leaderHealthy, ready: () => op.hasSynced() };
  const servers: Awaited<ReturnType<typeof serveHttp>>[] = [];
  if (healthPort === metricsPort)
    servers.push(await serveHttp(healthPort, bind, { health, registry: metrics.registry }));
  else {
    servers.push(await serveHttp(healthPort, bind, { health }));
    servers.push(await serveHttp(metricsPort, bind, { registry: metrics.registry }));
  }
  log.info(
    {
      identity,
      namespaces: namespaces ?? "all",
      relayImage,
      health: servers[0]!.port,
      metrics: servers.at(-1)!.port,
    },
    "starting",
  );

  op.startInformers();
  let stopping = false;
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down");
    const hard = setTimeout(() => process.exit(code), 20_000);
    hard.unref();
    await op.stop().catch(() => {});
    await leader?.stop();
    for (const s of servers) s.server.close();
    process.exit(code);
  };
  process.once("SIGTERM", () => void shutdown(0));
  process.once("SIGINT", () => void shutdown(0));

  if (flag(values, "leader-elect") === "true") {
    leader = new LeaderElector(op.client, {
      namespace: flag(values, "leader-election-namespace") ?? operatorNamespace,
      name: flag(values, "leader-election-id") ?? "sealpost-operator",
      identity,
      leaseDurationMs: seconds(flag(values, "lease-duration"), 15),
      renewDeadlineMs: seconds(flag(values, "renew-deadline"), 10),
      retryPeriodMs: seconds(flag(values, "retry-period"), 2),
      log,
      onStartedLeading: () => {
        metrics.leader.set(1);
        op.startControllers().catch((e: Error) =>
          log.error({ err: e.message }, "controllers failed to start"),
        );
      },
      onStoppedLeading: () => {
        metrics.leader.set(0);
        // never reconcile without the lease: stop and let the Deployment restart us as a candidate
        leaderHealthy = false;
        if (!stopping) {
          log.error("leadership lost; exiting");
          void shutdown(1);
        }
      },
    });
    leader.start();
  } else {
    await op.startControllers();
  }
}

main().catch((e: Error) => {
  console.error(e);
  process.exit(1);
});
