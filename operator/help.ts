// `sealpost operator --help`: each flag (operator/main.ts) with its environment variable
// (SEALPOST_<FLAG_IN_CAPS>; a flag wins) and its default.
import { helpText, type FlagDoc } from "../bin/usage.js";

const env = (flag: string): string => `SEALPOST_${flag.toUpperCase().replace(/-/g, "_")}`;

const FLAGS: [flag: string, arg: string | undefined, description: string, dflt?: string][] = [
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
  ["policy-workers", "N", "MailDomainPolicy reconciles at once", "8"],
  ["relay-min-interval", "SECONDS", "a MailRelay is reconciled at most once per this period", "0.25s"],
  ["identity", "NAME", "this operator's identity in leader election", "<hostname>_<pid>"],
];

export const OPERATOR_HELP = helpText({
  usage: "sealpost operator [flags]",
  description:
    "Runs the operator: watches MailRelay, MailDomainPolicy and RelayCredential objects and runs the\n" +
    "relays. Every flag can be set by its environment variable; a flag wins.",
  flags: [
    ...FLAGS.map(([flag, arg, description, dflt]): FlagDoc => ({
      flag: `--${flag}`,
      ...(arg ? { arg } : {}),
      description,
      env: env(flag),
      ...(dflt !== undefined ? { default: dflt } : {}),
    })),
    { flag: "-h, --help", description: "this help" },
    { flag: "-V, --version", description: "the version" },
  ],
});
