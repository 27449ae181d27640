// The operator's command-line flags: the one table of them (main.ts parses it, help.ts prints it)
// and their values, parsed. Pure.

/**
 * Every flag of `sealpost operator`: its name, its argument (none: a switch), what it does and its
 * default. main.ts parses these flags and help.ts prints them, both from this one table.
 */
export const OPERATOR_FLAGS = [
  ["kubeconfig", "FILE", "kubeconfig to use", "$KUBECONFIG, ~/.kube/config, else in-cluster"],
  ["namespaces", "A,B", "namespaces to watch, comma-separated", "all"],
  ["leader-elect", undefined, "run for leadership (a Lease); only the leader reconciles", "false"],
  ["leader-election-namespace", "NS", "namespace of the Lease", "the operator's namespace"],
  ["leader-election-id", "NAME", "name of the Lease", "sealpost-operator"],
  ["lease-duration", "SECONDS", "how long a leader's Lease holds", "15s"],
  ["renew-deadline", "SECONDS", "a leader that has not renewed within this steps down", "10s"],
  ["retry-period", "SECONDS", "how often the Lease is renewed or tried", "2s"],
  ["metrics-port", "PORT", "port of /metrics", "8080"],
  ["health-port", "PORT", "port of /healthz and /readyz", "8081"],
  ["bind-address", "ADDRESS", "address the metrics and health ports bind", "0.0.0.0"],
  ["log-level", "LEVEL", "trace, debug, info, warn, error or fatal", "info"],
  ["relay-image", "IMAGE", "image of the relay pods", "ghcr.io/sealpost/sealpost:latest"],
  [
    "relay-image-from-container",
    "NAME",
    "read the relay image from this container of the operator's own pod ($POD_NAME), so an image rewrite (kustomize images:) moves the relays too; wins over --relay-image",
    "unset",
  ],
  [
    "allowed-relay-images",
    "A,B",
    "images a MailRelay's spec.image may name besides the default relay image, comma-separated",
    "none",
  ],
  ["relay-image-pull-policy", "POLICY", "imagePullPolicy of the relay pods", "IfNotPresent"],
  ["relay-command", "CMD", "relay container command, space-separated", "the image's entrypoint"],
  ["operator-namespace", "NS", "the operator's own namespace", "$POD_NAMESPACE, else sealpost-system"],
  [
    "operator-pod-labels",
    "K=V,...",
    "labels of the operator's pods (relay NetworkPolicies admit them)",
    "app.kubernetes.io/name=sealpost-operator",
  ],
  ["resync-period", "SECONDS", "every object is reconciled again at least this often", "300s"],
  ["policy-figures-period", "SECONDS", "how often policy delivery figures are read from relay pods", "30s"],
  ["policy-workers", "N", "MailDomainPolicy reconciles at once", "16"],
  ["relay-min-interval", "SECONDS", "a MailRelay is reconciled at most once per this period", "0.25s"],
  ["identity", "NAME", "this operator's identity in leader election", "<hostname>_<pid>"],
] as const satisfies readonly (readonly [
  flag: string,
  arg: string | undefined,
  description: string,
  dflt: string,
])[];
export type OperatorFlag = (typeof OPERATOR_FLAGS)[number][0];

/** The environment variable of a flag: SEALPOST_<FLAG_IN_CAPS> (a flag given on the command line wins). */
export const flagEnv = (flag: string): string => `SEALPOST_${flag.toUpperCase().replace(/-/g, "_")}`;

/** A duration flag in seconds ("30" or "30s"), in milliseconds; `dflt` is in seconds too. */
export function seconds(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt * 1000;
  const n = Number(v.replace(/s$/, ""));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`invalid duration ${v}`);
  return n * 1000;
}

/** A count flag (a positive integer). */
export function count(v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`invalid count ${v}`);
  return n;
}

/** "k=v,k2=v2" as a label map. */
export function labels(v: string): Record<string, string> {
  return Object.fromEntries(
    v
      .split(",")
      .filter(Boolean)
      .map((kv) => {
        const [k, val = ""] = kv.split("=");
        return [k!.trim(), val.trim()];
      }),
  );
}
