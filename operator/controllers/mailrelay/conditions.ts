// A MailRelay's Ready, Enforced and Degraded conditions from what its reconcile gathered: each a
// chain of named checks (../condition-chain.ts), Enforced from the shared builder (../enforced.ts).
// Pure.
import type { ConditionInput } from "../../runtime/conditions.js";
import { everyFinding, firstFinding, firstOf, type Check, type Finding } from "../condition-chain.js";
import { enforcedCondition, type PodTally } from "../enforced.js";
import { orphanedQueueVolumesMessage } from "../../status/orphaned-volumes.js";
import { MAX_CONFIG_JSON_BYTES, MAX_CONFIG_STORED_BYTES } from "../../../relay/contract/config-encoding.js";
import { configTooLarge } from "../../compile/config-fit.js";

/** What the MailRelay reconcile gathered for its status. */
export interface RelayFacts extends PodTally {
  /** spec.replicas, and the StatefulSet's ready replicas. */
  replicas: number;
  readyReplicas: number;
  /** sha256 of the compiled config.json; the size of its gzip (what the ConfigMap holds) and of the JSON. */
  configHash: string;
  configBytes: number;
  configJsonBytes: number;
  accepted: ConditionInput;
  /** refused: the Secret at the server certificate's name is not the one the operator created for it. */
  certificate: { ready: boolean; problem?: string; message?: string; refused?: string; secret: string };
  /** The selected policies left out of the config; those of them left out only for its size (config-fit.ts). */
  excluded: readonly string[];
  leftOutForSize: readonly string[];
  /** They are left out together, as a broken catch-all (compile/left-out.ts collapsedDeferrals). */
  leftOutCollapsed: boolean;
  queueSize: { desired: string; live?: string | undefined };
  orphanedVolumes: readonly string[];
  statefulSet: string;
  /** Why the StatefulSet was not applied (statefulSetHold), if it was not. */
  held?: Finding | undefined;
}

const short = (hash: string): string => hash.slice(0, 12);

// The StatefulSet: applied unless its pods would mount a server certificate they cannot start on

/** What decides whether the reconcile applies the relay's StatefulSet (reconcile.ts does the I/O). */
export interface StatefulSetFacts {
  /** The StatefulSet exists (the operator's cache has it). */
  exists: boolean;
  /** The server certificate Secret is not (known to be) the operator's own (reconcile.ts ensureIssuedSecrets). */
  secretHeld: boolean;
  /** cert-manager issues the server certificate into that Secret (spec.certificate.issuerRef). */
  issued: boolean;
  /** Its tls.crt and tls.key are both non-empty (as the cache saw it last). */
  secretFilled: boolean;
  /** The server certificate Secret's name. */
  secret: string;
}

/** Pods mount the Secret by name: none is created or rolled onto a Secret not the operator's. */
const serverSecretNotOwn: Check<StatefulSetFacts> = (f) =>
  f.secretHeld
    ? {
        reason: "InvalidReference",
        message: `Secret ${f.secret} is not known to be the operator's own: no pod is created or rolled to mount it`,
      }
    : undefined;

/**
 * A new relay's pods wait for cert-manager: the operator creates the issued Secret empty, kubelet
 * mounts it at once, and a pod started on an empty certificate exits and backs off until kubelet
 * refreshes the volume (a minute and more; before, a missing Secret kept the pod waiting for its
 * mount, retried within seconds). A StatefulSet that exists is always applied: holding back an
 * update of a running fleet for a Secret's state would freeze it, and a renewal keeps it filled.
 */
const certificatePending: Check<StatefulSetFacts> = (f) =>
  !f.exists && f.issued && !f.secretFilled
    ? {
        reason: "CertificatePending",
        message: `waiting for cert-manager to issue ${f.secret}: the StatefulSet is created once it holds a certificate`,
      }
    : undefined;

/** Why the StatefulSet is not applied in this reconcile, or undefined: it is. */
export function statefulSetHold(f: StatefulSetFacts): Finding | undefined {
  return firstOf([serverSecretNotOwn, certificatePending], f);
}

function tooLargeMessage(f: RelayFacts): string {
  const over =
    f.configBytes > MAX_CONFIG_STORED_BYTES
      ? `its gzip is ${f.configBytes} bytes, over the ${MAX_CONFIG_STORED_BYTES}-byte limit of its ConfigMap (1 MiB with metadata)`
      : `over the ${MAX_CONFIG_JSON_BYTES}-byte limit the relay loads`;
  return `config.json is ${f.configJsonBytes} bytes (${f.configBytes} gzipped), ${over}, even with every selected policy left out: not applied, the relay keeps its last applied configuration; narrow spec.policySelector to select fewer MailDomainPolicies, or split them across MailRelays`;
}

function leftOutForSizeMessage(f: RelayFacts): string {
  const n = f.leftOutForSize.length;
  const how = f.leftOutCollapsed
    ? `even one by one they do not fit: the ${n} the relay took in or grew last are left out together, with any catch-all policy and any wildcard over their domains, and mail to every domain that no applied policy names is deferred (their partners' hosts are held to their rules over wider address ranges)`
    : `the ${n} the relay took in or grew last are left out and mail to their domains is deferred`;
  return `the configuration would be over its limit (${MAX_CONFIG_STORED_BYTES} bytes gzipped) with every selected policy: ${how}: ${named(f.leftOutForSize)}; remove or shrink policies (fewer domains, shorter names), narrow spec.policySelector, or split them across MailRelays`;
}

// Enforced

const scaledToZero: Check<RelayFacts> = (f) =>
  f.replicas === 0 ? { status: "Unknown", reason: "ScaledToZero", message: "replicas is 0" } : undefined;

export function relayEnforced(f: RelayFacts, g: number | undefined): ConditionInput {
  return enforcedCondition(
    f,
    [scaledToZero],
    {
      noReadyPods: "no relay pod is ready to report its configuration",
      behind: (t) =>
        `${t.behindPods.length} of ${t.readyPods} ready pods do not run configuration ${short(f.configHash)} yet: ${t.behindPods.join(", ")}`,
      enforced: (t) => `all ${t.readyPods} ready pods run configuration ${short(f.configHash)}`,
    },
    g,
  );
}

// Degraded: every finding counts, the first names the reason

/** The config is not applied at all (Ready and Degraded). */
const configTooLargeFinding: Check<RelayFacts> = (f) =>
  configTooLarge(f) ? { reason: "ConfigTooLarge", message: tooLargeMessage(f) } : undefined;

/** It is applied with policies left out for its size (Degraded only: the relay serves). */
const leftOutForSize: Check<RelayFacts> = (f) =>
  !configTooLarge(f) && f.leftOutForSize.length
    ? { reason: "ConfigTooLarge", message: leftOutForSizeMessage(f) }
    : undefined;

/** How many left-out policies the Degraded message names (each policy's own status says why). */
const NAMED_EXCLUDED = 10;

/** The first NAMED_EXCLUDED of `keys`, and how many more. */
const named = (keys: readonly string[]): string =>
  `${keys.slice(0, NAMED_EXCLUDED).join(", ")}${keys.length > NAMED_EXCLUDED ? `, and ${keys.length - NAMED_EXCLUDED} more` : ""}`;

const policiesExcluded: Check<RelayFacts> = (f) =>
  f.excluded.length
    ? {
        reason: "PoliciesExcluded",
        message: `${f.excluded.length} selected policies left out (mail to the domains they own is deferred): ${named(f.excluded)}`,
      }
    : undefined;

const queueResizeUnsupported: Check<RelayFacts> = ({ queueSize: q }) =>
  q.live && q.live !== q.desired
    ? {
        reason: "QueueResizeUnsupported",
        message: `queue size ${q.desired} not applied: the StatefulSet's volumes are ${q.live} (resize the PVCs by hand)`,
      }
    : undefined;

const orphanedQueueVolume: Check<RelayFacts> = (f) =>
  f.orphanedVolumes.length
    ? {
        reason: "OrphanedQueueVolume",
        message: orphanedQueueVolumesMessage([...f.orphanedVolumes], f.statefulSet),
      }
    : undefined;

export function relayDegraded(f: RelayFacts, g: number | undefined): ConditionInput {
  return everyFinding(
    "Degraded",
    [configTooLargeFinding, leftOutForSize, policiesExcluded, queueResizeUnsupported, orphanedQueueVolume],
    f,
    { reason: "AsExpected", message: "all selected policies compiled in" },
    g,
  );
}

// Ready: the first thing that keeps the relay from serving

const notAccepted: Check<RelayFacts> = ({ accepted: a }) =>
  a.status !== "True" ? { reason: a.reason, message: a.message } : undefined;

/** Its server certificate's Secret is someone else's (controllers/mailrelay/reconcile.ts ensureIssuedSecrets). */
const certificateSecretRefused: Check<RelayFacts> = ({ certificate: c }) =>
  c.refused ? { reason: "InvalidReference", message: c.refused } : undefined;

/** No pods yet: the StatefulSet waits for the first certificate (statefulSetHold). */
const certificateNotIssuedYet: Check<RelayFacts> = (f) =>
  f.held?.reason === "CertificatePending" && !f.certificate.problem ? f.held : undefined;

const certificateNotReady: Check<RelayFacts> = ({ certificate: c }) =>
  c.problem || !c.ready
    ? {
        reason: "CertificateNotReady",
        message: c.problem ?? c.message ?? `server certificate Secret ${c.secret} not ready`,
      }
    : undefined;

const replicasNotReady: Check<RelayFacts> = (f) =>
  f.readyReplicas < f.replicas
    ? { reason: "ReplicasNotReady", message: `${f.readyReplicas} of ${f.replicas} pods ready` }
    : undefined;

export function relayReady(f: RelayFacts, enforced: ConditionInput, g: number | undefined): ConditionInput {
  const notEnforced: Check<RelayFacts> = () =>
    enforced.status === "False" ? { reason: enforced.reason, message: enforced.message } : undefined;
  return firstFinding(
    "Ready",
    [
      certificateSecretRefused,
      notAccepted,
      configTooLargeFinding,
      certificateNotIssuedYet,
      certificateNotReady,
      replicasNotReady,
      notEnforced,
    ],
    f,
    (x) => ({ reason: "Ready", message: `${x.readyReplicas} pods ready` }),
    g,
  );
}
