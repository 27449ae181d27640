// `sealpost report [--namespace N] [--policy P] [--json] [--kubeconfig F]` (bin/report.ts runs it):
// the per-partner transport security report across the fleet, as Exchange's Transit Security report.
// It reads the MailDomainPolicies' status.report through the Kubernetes API (@kubernetes/client-node,
// the kubeconfig's default order): the operator has already summed every relay pod's /status into
// it, so the CLI needs no admin token and no network path to the relay pods, and shows the same
// numbers as `kubectl get mdp -o yaml` (rows.ts builds the rows once for the table and the JSON).
import { parseArgs } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import { GROUP, VERSION } from "../../api/v1alpha1/api-version.js";
import { printable, safeJson } from "../../relay/printable.js";
import { formatReportTable, reportRows, type ReportedPolicy } from "./rows.js";
import type { TransitReportStatus } from "../../api/v1alpha1/transit-report.js";

const USAGE = `usage: sealpost report [--namespace N] [--policy P] [--json] [--kubeconfig F]

The transport security report: per MailDomainPolicy and recipient domain over the last days, messages
delivered by level (dane, mta-sts, pinned, verified, encrypted, clear), deferred and bounced by reason,
summed over the relay pods by the operator (status.report).

flags:
  -n, --namespace N   only this namespace (default: all namespaces)
  -p, --policy P      only the MailDomainPolicy named P
      --json          the rows as JSON
      --kubeconfig F  the kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  -h, --help          this help
`;

export interface ReportCliIo {
  out(s: string): void;
  err(s: string): void;
  /** The cluster to read (tests); absent: --kubeconfig or client-node's default order. */
  kubeConfig?: KubeConfig;
}

interface PolicyList {
  items?: { metadata?: { namespace?: string; name?: string }; status?: { report?: TransitReportStatus } }[];
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runReportCli(argv: string[], io: ReportCliIo): Promise<number> {
  let values: { namespace?: string; policy?: string; json: boolean; kubeconfig?: string; help: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        namespace: { type: "string", short: "n" },
        policy: { type: "string", short: "p" },
        json: { type: "boolean", default: false },
        kubeconfig: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    io.err(`sealpost report: ${(e as Error).message}\nRun 'sealpost report --help' for the flags.\n`);
    return 2;
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const k8s = await import("@kubernetes/client-node");
  let kc = io.kubeConfig;
  if (!kc) {
    kc = new k8s.KubeConfig();
    if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
    else kc.loadFromDefault();
  }
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const q = { group: GROUP, version: VERSION, plural: "maildomainpolicies" };
  let list: PolicyList;
  try {
    list = (await (values.namespace
      ? api.listNamespacedCustomObject({ ...q, namespace: values.namespace })
      : api.listClusterCustomObject(q))) as PolicyList;
  } catch (e) {
    io.err(printable(`sealpost report: listing MailDomainPolicies: ${(e as Error).message}`) + "\n");
    return 1;
  }
  const policies: ReportedPolicy[] = (list.items ?? [])
    .filter((p) => !values.policy || p.metadata?.name === values.policy)
    .map((p) => ({
      namespace: p.metadata?.namespace ?? "",
      name: p.metadata?.name ?? "",
      ...(p.status?.report ? { report: p.status.report } : {}),
    }));
  const rows = reportRows(policies);
  if (values.json) io.out(safeJson({ rows }, 2) + "\n");
  else if (!rows.length)
    io.out(
      policies.length
        ? "no messages reported yet by the relay pods of the selected policies\n"
        : "no MailDomainPolicy found\n",
    );
  else io.out(formatReportTable(rows));
  return 0;
}
