// MailRelay reconciler: compile the relay's config from the cluster's view, render every object the
// relay needs, server-side apply them under the field manager "sealpost" (owner references make the
// garbage collector remove them with the relay), then report status. Level-triggered: it reads
// everything from the informer caches each time and holds nothing between runs.
import { randomBytes } from "node:crypto";
import {
  API_VERSION,
  MailRelay as MailRelaySchema,
  type MailRelay,
  type MailRelayStatus,
} from "../../api.js";
import type { EncodedConfig } from "../../compile/relay-config.js";
import { configTooLarge } from "../../compile/config-fit.js";
import { collapsedName } from "../../compile/left-out.js";
import {
  issuedSecretFacts,
  operatorLabelled,
  ownFleetSecret,
  relayIssuedSecretRefusal,
  relayIssuedSecrets,
  type RelayIssuedSecret,
} from "../../compile/references.js";
import {
  certificateState,
  renderMtaStsCertificate,
  renderServerCertificate,
} from "../../render/certificate.js";
import { ownDomainsStatus } from "../../status/own-domains.js";
import { renderRelayObjects } from "../../render/index.js";
import { renderConfigMap } from "../../render/configmap.js";
import { renderStatefulSet } from "../../render/statefulset.js";
import { renderFleetSecret, renderRelayIssuedSecret } from "../../render/secret.js";
import { snatExposure } from "../../render/service.js";
import type { RelayRenderInput } from "../../render/input.js";
import { CONFIG_HASH_ANNOTATION, names, type Owner } from "../../render/meta.js";
import type { ReconcileResult } from "../../runtime/controller.js";
import { problemsCondition, type Condition, type ConditionInput } from "../../runtime/conditions.js";
import { ApiError, R, type KubeObject } from "../../runtime/kube.js";
import { keyOf, secretKeyFilled, splitKey, type MailRelayObject } from "../../objects.js";
import { certificateExpiringCondition, certificateNotAfter } from "../../status/certificate-expiry.js";
import { orphanedQueueVolumes } from "../../status/orphaned-volumes.js";
import type { ReconcilerDeps } from "../deps.js";
import { applyIfNeeded } from "../apply-if-needed.js";
import { probeRelay, relayAdminToken } from "../relay-probe.js";
import { adoptIssuedSecret } from "../issued-secret-adoption.js";
import { currentStatus, writeStatus } from "../status-write.js";
import { relayDegraded, relayEnforced, relayReady, statefulSetHold, type RelayFacts } from "./conditions.js";
import { relayImage } from "../../compile/relay-image.js";
import { nextExceptionChange } from "../../compile/exceptions.js";
import { relayPod } from "../../render/pod.js";
import {
  decideMounts,
  liveMounts,
  mountIntervalMs,
  templateBase,
  wantedMounts,
} from "../../render/mounted-sources.js";
import { ensureQueueFinalizer, finalizeMailRelay } from "./deletion.js";
import { podSettingsRefusal } from "./pod-settings-refusal.js";
import { immutableRefusal, replaceable, type LiveConfigMap } from "./immutable-config.js";

function ownerOf(r: MailRelayObject): Owner {
  return {
    apiVersion: r.apiVersion ?? API_VERSION,
    kind: r.kind ?? "MailRelay",
    name: r.metadata.name,
    namespace: r.metadata.namespace ?? "",
    uid: r.metadata.uid ?? "",
  };
}

/** The queue size of an existing StatefulSet: volumeClaimTemplates can't change after creation. */
function liveQueueSize(sts: KubeObject | undefined): string | undefined {
  const spec = sts?.spec as
    | {
        volumeClaimTemplates?: {
          metadata?: { name?: string };
          spec?: { resources?: { requests?: { storage?: string } } };
        }[];
      }
    | undefined;
  return spec?.volumeClaimTemplates?.find((v) => v.metadata?.name === "queue")?.spec?.resources?.requests
    ?.storage;
}

export function renderInput(
  relay: MailRelay,
  owner: Owner,
  compiled: EncodedConfig,
  deps: Pick<ReconcilerDeps, "settings">,
  queueSize: string,
  image: string = deps.settings.image,
): RelayRenderInput {
  const declared = relay.spec.listeners;
  const listeners = (["smtp", "smtps", "submission"] as const)
    .filter((n) => declared[n].enabled)
    .map((n) => ({ name: n, port: declared[n].port }));
  return {
    owner,
    listeners,
    service: {
      type: relay.spec.service.type,
      ...(relay.spec.service.annotations ? { annotations: relay.spec.service.annotations } : {}),
      ...(relay.spec.service.externalTrafficPolicy
        ? { externalTrafficPolicy: relay.spec.service.externalTrafficPolicy }
        : {}),
      ...(relay.spec.service.loadBalancerSourceRanges
        ? { loadBalancerSourceRanges: [...relay.spec.service.loadBalancerSourceRanges] }
        : {}),
    },
    serverCertSecret: relay.spec.certificate.secretRef?.name ?? names.serverCertificateSecret(owner.name),
    replicas: relay.spec.replicas,
    queueSize,
    ...(relay.spec.queue.storageClassName ? { storageClassName: relay.spec.queue.storageClassName } : {}),
    resources: {
      requests: { ...relay.spec.resources.requests },
      limits: { ...relay.spec.resources.limits },
    },
    configStored: compiled.stored,
    configHash: compiled.hash,
    ...(compiled.config.queue.handover && compiled.config.fleet && compiled.config.admin.tokenFile
      ? { drainTokenFile: compiled.config.admin.tokenFile }
      : {}),
    restartHash: compiled.restartHash,
    sources: compiled.sources,
    egressPorts: compiled.egressPorts,
    networkPolicy: {
      metricsFrom: relay.spec.networkPolicy.metricsFrom,
      egressExcept: [...relay.spec.networkPolicy.egressExcept],
      internalEgress: [...relay.spec.networkPolicy.internalEgress],
      allowedInternalCidrs: [...compiled.config.delivery.allowedInternalCidrs],
    },
    ...(compiled.config.inbound.internalNextHop
      ? { internalNextHop: { ...compiled.config.inbound.internalNextHop } }
      : {}),
    ...(compiled.config.queue.handover ? { handoverPort: compiled.config.queue.handover.port } : {}),
    ...(compiled.config.ownDomains?.mtaSts ? { mtaStsPort: compiled.config.ownDomains.mtaSts.port } : {}),
    pod: relayPod(relay.spec, image),
    settings: deps.settings,
  };
}

/**
 * The relay's ConfigMap that someone made immutable (immutable-config.ts): deleted, that object at
 * that version only, and written again, with a Warning Event; `refusal` is rethrown when it is not the
 * operator's to replace.
 */
async function replaceImmutableConfig(
  deps: ReconcilerDeps,
  raw: MailRelayObject,
  obj: KubeObject,
  refusal: unknown,
): Promise<boolean> {
  const name = obj.metadata.name;
  const live = await deps.client.get<KubeObject & LiveConfigMap>(R.ConfigMap, obj.metadata.namespace, name);
  if (!replaceable(live, raw.metadata.uid)) throw refusal;
  await deps.client.delete(R.ConfigMap, obj.metadata.namespace, name, {
    ...(live.metadata.uid ? { uid: live.metadata.uid } : {}),
    ...(live.metadata.resourceVersion ? { resourceVersion: live.metadata.resourceVersion } : {}),
  });
  await deps.events.record(raw, {
    type: "Warning",
    reason: "ConfigReplaced",
    action: "Apply",
    note: `ConfigMap ${name} was made immutable by someone other than the operator, which kept the relay on a configuration the operator did not write: deleted and written again; the chart's admission policy (<release>-managed-objects) refuses such changes`,
  });
  deps.log.warn({ configMap: name }, "relay ConfigMap made immutable by someone else: replaced");
  const result = await deps.client.apply<KubeObject>(obj);
  deps.applied.record(obj, result, Date.now());
  return true;
}

/** The objects rendered from the compiled config, kept at their last applied version when it is too large. */
const CONFIG_DERIVED_KINDS = new Set(["ConfigMap", "StatefulSet", "NetworkPolicy"]);

export async function reconcileMailRelay(deps: ReconcilerDeps, key: string): Promise<ReconcileResult | void> {
  const { namespace, name } = splitKey(key);
  const raw = deps.state.caches.relays.get(namespace, name);
  if (!raw) return; // owner references: the garbage collector cleans up
  const parsed = MailRelaySchema.safeParse(raw);
  // deleted: kept until its queues are empty (mailrelay-deletion.ts), nothing else is applied
  if (raw.metadata.deletionTimestamp) {
    const deleted = parsed.success ? parsed.data : undefined;
    return finalizeMailRelay(deps, raw, deleted, () => applyStoppedConfig(deps, raw, deleted));
  }
  await ensureQueueFinalizer(deps, raw);
  const generation = raw.metadata.generation;
  // the Secrets this process created for cert-manager to issue into, as its last status write recorded
  // them: carried in every status write (a server-side apply of the whole status drops what it omits)
  let issuedUIDs = (currentStatus(deps, raw) as MailRelayStatus | undefined)?.issuedSecretUIDs;
  const uidsField = () =>
    issuedUIDs && Object.keys(issuedUIDs).length ? { issuedSecretUIDs: issuedUIDs } : {};
  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    await writeStatus(deps, raw, { observedGeneration: generation, ...uidsField() }, [
      { type: "Ready", status: "False", reason: "InvalidSpec", message, observedGeneration: generation },
      { type: "Accepted", status: "False", reason: "InvalidSpec", message, observedGeneration: generation },
    ]);
    return;
  }
  const relay = parsed.data;
  const owner = ownerOf(raw);
  // an open relay through kube-proxy's SNAT: refused before anything is applied
  const unsafe = snatExposure(relay.spec);
  if (unsafe) {
    const refusal = {
      status: "False" as const,
      reason: "SnatInRelayFrom",
      message: unsafe,
      observedGeneration: generation,
    };
    await writeStatus(deps, raw, { observedGeneration: generation, ...uidsField() }, [
      { type: "Ready", ...refusal },
      { type: "Accepted", ...refusal },
    ]);
    return;
  }
  const image = relayImage(relay.spec.image, deps.settings);
  if ("refused" in image) {
    const refusal = {
      status: "False" as const,
      reason: "ImageNotAllowed",
      message: image.refused,
      observedGeneration: generation,
    };
    await writeStatus(deps, raw, { observedGeneration: generation, ...uidsField() }, [
      { type: "Ready", ...refusal },
      { type: "Accepted", ...refusal },
    ]);
    return;
  }
  const issued = await ensureIssuedSecrets(deps, raw, relay, owner, issuedUIDs ?? {});
  issuedUIDs = issued.uids;
  const serverRefused = issued.refused.get("server");
  // the server certificate's Secret is not (known to be) the operator's own: see ensureIssuedSecrets
  const serverHeld = serverRefused !== undefined || issued.pending.has("server");
  const mtaStsHeld = issued.refused.has("mtaSts") || issued.pending.has("mtaSts");
  const fleetCreated = await ensureFleetSecret(deps, relay, owner);
  // the config as applied: with every selected policy, or the fewest left out that make it fit
  // (compile/config-fit.ts); the MTA-STS endpoint only from the Secret recorded here (own-domains.ts),
  // which the cached status may not carry yet
  // only with the material the pod template mounts (render/mounted-sources.ts): a policy that needs
  // more is left out (MountPending) until the template takes it
  const sts = deps.state.caches.statefulSets.get(namespace, names.statefulSet(name));
  const live = liveMounts(sts);
  const compileRelay =
    issuedUIDs && Object.keys(issuedUIDs).length
      ? { ...relay, status: { ...relay.status, issuedSecretUIDs: issuedUIDs } }
      : relay;
  let compiled: EncodedConfig;
  try {
    compiled = await deps.compiler.fitted(compileRelay, live?.paths);
  } catch (e) {
    const message = (e as Error).message;
    await writeStatus(deps, raw, { observedGeneration: generation, ...uidsField() }, [
      { type: "Ready", status: "False", reason: "InvalidSpec", message, observedGeneration: generation },
      { type: "Accepted", status: "False", reason: "InvalidSpec", message, observedGeneration: generation },
    ]);
    return;
  }

  const desiredSize = relay.spec.queue.size;
  const liveSize = liveQueueSize(sts);
  let input = renderInput(relay, owner, compiled, deps, liveSize ?? desiredSize, image.image);
  const cm = deps.state.caches.configMaps.get(namespace, names.configMap(name));
  const hashBefore = cm?.metadata.annotations?.[CONFIG_HASH_ANNOTATION];
  let configApplied = false;
  // a Secret the operator did not create says nothing about the relay's certificate
  const certSecret = serverHeld
    ? undefined
    : deps.state.caches.secrets.get(namespace, input.serverCertSecret);
  // pods mount <relay>-tls by name: none is created or rolled onto a Secret not the operator's, and a
  // new relay's none before cert-manager issued into it (conditions.ts statefulSetHold)
  const held = statefulSetHold({
    exists: sts !== undefined,
    secretHeld: serverHeld,
    issued: relay.spec.certificate.issuerRef !== undefined,
    secretFilled:
      certSecret !== undefined &&
      secretKeyFilled(certSecret, "tls.crt") &&
      secretKeyFilled(certSecret, "tls.key"),
    secret: input.serverCertSecret,
  });
  // which sources the pod template carries: policy material is sticky and joins it at most once per
  // the relay's spec.policyMountInterval (render/mounted-sources.ts, the one decision)
  const wanted = wantedMounts(compiled);
  let mounts = decideMounts(
    wanted,
    templateBase(input, wanted.own),
    live,
    deps.now().getTime(),
    // the StatefulSet is applied this time (not held, nor frozen too large below)
    !held &&
      !configTooLarge({
        configBytes: compiled.stored.length,
        configJsonBytes: Buffer.byteLength(compiled.json),
      }),
    mountIntervalMs(relay.spec),
  );
  // a remount's StatefulSet, applied ahead of the ConfigMap; why the apiserver refused it
  let statefulSetDone = false;
  let remountRefused: Error | undefined;
  if (mounts.remount) {
    // the template takes the pending material now: the policies waiting for it come in
    const remounted = await deps.compiler.fitted(compileRelay, mounts.paths);
    const remountInput: RelayRenderInput = {
      ...renderInput(relay, owner, remounted, deps, liveSize ?? desiredSize, image.image),
      sources: mounts.sources,
      mounts: mounts.annotations,
    };
    try {
      // the template first: the config naming the new files is applied only once the pod template
      // mounts them. One the apiserver refuses (too large for etcd: thousands of long keys made live
      // at once) must not leave a ConfigMap naming files no pod mounts, which every pod refuses, so
      // that no later change reached the relay (test/integration/attack-tenant-template-size)
      if (
        !configTooLarge({
          configBytes: remounted.stored.length,
          configJsonBytes: Buffer.byteLength(remounted.json),
        })
      ) {
        await applyIfNeeded(deps, renderStatefulSet(remountInput));
        statefulSetDone = true;
      }
      compiled = remounted;
      input = remountInput;
    } catch (e) {
      remountRefused = e instanceof Error ? e : new Error(String(e));
      deps.log.warn(
        { relay: keyOf(raw), err: remountRefused.message },
        "the pod template could not take the policy material waiting for it: its policies stay left out",
      );
      // as if nothing waited: the config stays compiled against what the pods mount, and the
      // template keeps its sources (or takes exactly those the config reads, when it changes anyway)
      mounts = decideMounts(
        { ...wanted, pending: [] },
        templateBase(input, wanted.own),
        live,
        deps.now().getTime(),
        !held,
        mountIntervalMs(relay.spec),
      );
    }
  }
  input = { ...input, sources: mounts.sources, mounts: mounts.annotations };
  const configBytes = compiled.stored.length;
  const configJsonBytes = Buffer.byteLength(compiled.json);
  const tooLarge = configTooLarge({ configBytes, configJsonBytes });
  // too large: nothing derived from the new config is applied (no half-apply: the ConfigMap, the pod
  // template's mounted sources and the egress rules stay as last applied, consistent with each other)
  for (const obj of renderRelayObjects(input)) {
    if (tooLarge && CONFIG_DERIVED_KINDS.has(obj.kind ?? "")) continue;
    if ((held || statefulSetDone) && obj.kind === "StatefulSet") continue;
    const announced = obj.kind === "ConfigMap" ? deps.applied.lastAnnotations(obj) : undefined;
    let applied: boolean;
    try {
      applied = await applyIfNeeded(deps, obj).catch((e: unknown) => {
        if (immutableRefusal(obj, e)) return replaceImmutableConfig(deps, raw, obj, e);
        throw e;
      });
    } catch (e) {
      const refused = podSettingsRefusal(obj, e);
      if (!refused) throw e;
      const refusal = { status: "False" as const, reason: "InvalidPodSettings", message: refused };
      await writeStatus(deps, raw, { observedGeneration: generation, ...uidsField() }, [
        { type: "Ready", ...refusal, observedGeneration: generation },
        { type: "Accepted", ...refusal, observedGeneration: generation },
      ]);
      return;
    }
    if (applied && obj.kind === "ConfigMap")
      configApplied = (announced?.[CONFIG_HASH_ANNOTATION] ?? hashBefore) !== compiled.hash;
  }

  // the server certificate, when cert-manager issues it, and the MTA-STS endpoint's (spec.mtaSts)
  let certProblem: string | undefined;
  const issuerRef = relay.spec.certificate.issuerRef;
  if (issuerRef) {
    try {
      // never over a Secret the operator did not create: cert-manager would keep a tenant's key that
      // matches the spec and report the Certificate Ready (compile/references.ts issuedSecretRefusal)
      if (!serverHeld)
        await applyIfNeeded(deps, renderServerCertificate(owner, relay.spec.hostname, issuerRef));
      if (compiled.own.certificateNames.length && !mtaStsHeld)
        await applyIfNeeded(deps, renderMtaStsCertificate(owner, compiled.own.certificateNames, issuerRef));
    } catch (e) {
      if (!(e instanceof ApiError) || (e.code !== 404 && e.code !== 403)) throw e;
      // 403: RBAC or the chart's admission policy refused it (e.g. a ClusterIssuer not listed in
      // admissionPolicy.allowedClusterIssuers): say so on the relay instead of retrying silently
      const body = e.body as { message?: string } | undefined;
      certProblem =
        e.code === 404
          ? "cert-manager's Certificate API is not installed"
          : `the server Certificate was refused: ${body?.message ?? e.message}`;
    }
  }
  // one Event per configuration revision (not one per policy that changed it)
  if (configApplied)
    await deps.events.record(raw, {
      type: "Normal",
      reason: "ConfigApplied",
      action: "Apply",
      note: `configuration ${compiled.hash.slice(0, 12)} applied: ${compiled.included.length} policies${
        compiled.problems.size ? `, ${compiled.problems.size} left out` : ""
      }`,
    });

  // status
  const stsStatus = (sts?.status ?? {}) as { replicas?: number; readyReplicas?: number };
  const readyPods = deps.state.readyPods(relay);
  const probe = readyPods.length
    ? await probeRelay(deps, readyPods, compiled.hash, await relayAdminToken(deps, relay))
    : undefined;
  const cert = serverHeld
    ? { ready: false }
    : issuerRef
      ? certificateState(deps.state.caches.certificates.get(namespace, names.serverCertificate(name)))
      : { ready: deps.state.caches.secrets.get(namespace, input.serverCertSecret) !== undefined };
  const g = generation;
  const accepted = problemsCondition(
    "Accepted",
    [
      ...[...issued.refused.values()].map((message) => ({ reason: "InvalidReference", message })),
      ...compiled.relayProblems,
    ],
    { reason: "Compiled", message: `configuration compiled with ${compiled.included.length} policies` },
    g,
  );
  const orphans = orphanedQueueVolumes(
    deps.state.caches.queueVolumes.list(namespace),
    names.statefulSet(name),
    relay.spec.replicas,
  );
  const readyReplicas = stsStatus.readyReplicas ?? 0;
  const facts: RelayFacts = {
    replicas: relay.spec.replicas,
    readyReplicas,
    readyPods: readyPods.length,
    behindPods: probe?.behind ?? [],
    refusedPods: probe?.refused ?? [],
    configHash: compiled.hash,
    configBytes,
    configJsonBytes,
    accepted,
    certificate: {
      ready: cert?.ready ?? false,
      ...(certProblem ? { problem: certProblem } : {}),
      ...(cert?.message ? { message: cert.message } : {}),
      ...(serverRefused ? { refused: serverRefused } : {}),
      ...(issued.pending.has("server")
        ? {
            message: `Secret ${namespace}/${input.serverCertSecret} exists but is not in the operator's cache yet`,
          }
        : {}),
      secret: input.serverCertSecret,
    },
    excluded: [...compiled.problems.keys()],
    leftOutForSize: [...compiled.problems].flatMap(([k, ps]) =>
      ps.some((p) => p.reason === "ConfigTooLarge") ? [k] : [],
    ),
    leftOutCollapsed: compiled.config.deferredPolicies.some((d) => d.name === collapsedName(keyOf(raw))),
    queueSize: { desired: desiredSize, live: liveSize },
    orphanedVolumes: orphans,
    statefulSet: names.statefulSet(name),
    held,
  };
  const enforced = relayEnforced(facts, g);
  const conditions: ConditionInput[] = [
    relayReady(facts, enforced, g),
    accepted,
    enforced,
    relayDegraded(facts, g),
  ];
  const notAfter = certificateNotAfter(certSecret?.data?.["tls.crt"]);
  const expiring = certificateExpiringCondition(notAfter, deps.now(), g ?? 0);
  if (certSecret) conditions.push(expiring);
  const wasExpiring = (
    raw.status as { conditions?: { type: string; status: string }[] } | undefined
  )?.conditions?.find((c) => c.type === "CertificateExpiring");
  if (certSecret && expiring.status === "True" && wasExpiring?.status !== "True")
    await deps.events.record(raw, {
      type: "Warning",
      reason: expiring.reason,
      action: "CertificateExpiring",
      note: expiring.message,
    });

  await writeStatus(
    deps,
    raw,
    {
      observedGeneration: g,
      replicas: stsStatus.replicas ?? 0,
      readyReplicas,
      configHash: compiled.hash,
      policyCount: compiled.included.length,
      orphanedQueueVolumes: orphans.length ? orphans : undefined,
      ...uidsField(),
      ownDomains: ownDomainsStatus(
        compiled.own,
        (probe?.reports ?? []).flatMap((r) => (r.report.tlsRptReceived ? [r.report.tlsRptReceived] : [])),
        compiled.own.certificateNames.length
          ? !mtaStsHeld &&
              (certificateState(deps.state.caches.certificates.get(namespace, names.mtaStsCertificate(name)))
                ?.ready ??
                false)
          : undefined,
      ),
      certificate: {
        ready: cert?.ready ?? false,
        secretName: input.serverCertSecret,
        ...(cert && "notAfter" in cert && cert.notAfter
          ? { notAfter: cert.notAfter }
          : notAfter
            ? { notAfter: notAfter.toISOString().replace(/\.\d{3}Z$/, "Z") }
            : {}),
      },
    },
    conditions,
  );
  deps.log.debug(
    { relay: keyOf(raw), hash: compiled.hash, policies: compiled.included.length },
    "relay reconciled",
  );
  // everything else applied and reported: the remount is tried again with the retry's backoff
  if (remountRefused !== undefined) throw remountRefused;
  // a selected policy's exception starts or ends: compile again then (compile/exceptions.ts)
  const exceptionChange = nextExceptionChange(deps.state.selectedPolicies(relay), deps.now().getTime());
  if (enforced.status === "False")
    return { requeueAfterMs: Math.min(deps.enforcePollMs, exceptionChange ?? Infinity) };
  if (fleetCreated) return { requeueAfterMs: 1000 }; // compile the handover in once the cache has it
  if (issued.pending.size) return { requeueAfterMs: 1000 }; // judge the Secret once the cache has it
  // received TLS-RPT figures change without a cluster event: refreshed like the policies' figures;
  // an exception starts or ends without one too
  const tlsRptPoll = compiled.own.ownDomains?.tlsRpt && readyPods.length ? deps.figuresPollMs : undefined;
  // material waiting for the pod template: taken in once the rate limit allows
  const mountAt =
    mounts.retryAt !== undefined ? Math.max(1000, mounts.retryAt - deps.now().getTime()) : undefined;
  const next = Math.min(tlsRptPoll ?? Infinity, exceptionChange ?? Infinity, mountAt ?? Infinity);
  if (next !== Infinity) return { requeueAfterMs: next };
}

/**
 * A deleted relay's config: compiled as always, with inbound.stopped (the compile reads the deletion
 * timestamp), and only the ConfigMap applied: the pods reload it and refuse new mail while the queue
 * finalizer waits (deletion.ts). Resolves with why it could not be applied, if so.
 */
async function applyStoppedConfig(
  deps: ReconcilerDeps,
  raw: MailRelayObject,
  relay: MailRelay | undefined,
): Promise<string | undefined> {
  if (!relay) return "the MailRelay's spec does not parse";
  let compiled: EncodedConfig;
  try {
    compiled = await deps.compiler.fitted(relay);
  } catch (e) {
    return (e as Error).message;
  }
  if (
    configTooLarge({ configBytes: compiled.stored.length, configJsonBytes: Buffer.byteLength(compiled.json) })
  )
    return "the compiled configuration is too large";
  const input = renderInput(relay, ownerOf(raw), compiled, deps, relay.spec.queue.size);
  await applyIfNeeded(deps, renderConfigMap(input));
  return undefined;
}

/** What ensureIssuedSecrets found for a relay's issued Secrets (compile/references.ts relayIssuedSecrets). */
interface IssuedSecrets {
  /** The uids to record in status.issuedSecretUIDs. */
  uids: Partial<Record<RelayIssuedSecret, string>>;
  /** A Secret of that name the operator did not create: why it is never mounted, served or issued into. */
  refused: Map<RelayIssuedSecret, string>;
  /** Created by someone since the cache was read (409): judged once the cache has it. */
  pending: Set<RelayIssuedSecret>;
}

/**
 * The Secrets cert-manager issues a relay's certificates into (issuerRef): `<relay>-tls` and, with
 * spec.mtaSts, `<relay>-mta-sts`. The operator creates each itself, empty, before the Certificate
 * (render/secret.ts), and records its uid in status.issuedSecretUIDs at once, before anything else of
 * the reconcile can fail; only the Secret of the recorded uid is the relay's (compile/references.ts
 * issuedSecretRefusal, the rule the credentials' Secrets follow too). A tenant who may create Secrets
 * could otherwise create them first with a key of theirs that matches the Certificate's spec:
 * cert-manager keeps such a Secret and reports the Certificate Ready, and the pods presented the
 * tenant's key on 25/465/587 and the MTA-STS endpoint (test/integration/attack-squatted-relay-secret).
 *
 * Fail-closed, for a Secret refused here: no Certificate is applied over it; the MTA-STS endpoint is
 * not compiled in (own-domains.ts: neither served nor mounted); and for `<relay>-tls`, which the pod
 * template mounts by name, the StatefulSet is not applied: a new relay gets no pods at all (none
 * starts on the tenant's key), an existing one keeps its last applied template (no roll mounts the
 * Secret anew) while the ConfigMap still carries config changes. Ready and Accepted are False,
 * InvalidReference, naming the Secret and the fix. What the operator cannot do is take the Secret
 * away from pods already running: kubelet refreshes a mounted Secret in place, by name. Stopping
 * them (scaling to 0) would, but every relay upgraded from a release without this check has such a
 * Secret (cert-manager's, issued before), and an upgrade must not stop every relay's mail. Such a
 * Secret is adopted instead when cert-manager provably issued it for the relay's own Certificate
 * (controllers/issued-secret-adoption.ts, compile/references.ts issuedSecretAdoption); one without
 * that proof the administrator deletes (docs/upgrade.md), the operator creates its own at once and
 * cert-manager issues into it.
 */
async function ensureIssuedSecrets(
  deps: ReconcilerDeps,
  raw: MailRelayObject,
  relay: MailRelay,
  owner: Owner,
  recorded: Partial<Record<RelayIssuedSecret, string>>,
): Promise<IssuedSecrets> {
  // a role not used now keeps its uid: spec.mtaSts removed and added back finds its own Secret again
  const uids: Partial<Record<RelayIssuedSecret, string>> = { ...recorded };
  const refused = new Map<RelayIssuedSecret, string>();
  const pending = new Set<RelayIssuedSecret>();
  let created = false; // or adopted: recorded at once either way
  for (const { role, name } of relayIssuedSecrets(relay)) {
    const existing = deps.state.caches.secrets.get(owner.namespace, name);
    if (existing) {
      const facts = issuedSecretFacts(existing);
      const refusal = relayIssuedSecretRefusal(owner.namespace, owner.name, role, name, recorded, facts);
      if (!refusal) continue;
      // none recorded: cert-manager's own Secret from a release before the operator created them (an
      // upgrade) is adopted on proof of that (compile/references.ts issuedSecretAdoption)
      const adoption =
        recorded[role] === undefined && facts.uid && relay.spec.certificate.issuerRef
          ? await adoptIssuedSecret(deps, raw, name, relay.spec.certificate.issuerRef, facts.uid)
          : undefined;
      if (adoption && "uid" in adoption) {
        uids[role] = adoption.uid;
        created = true;
        continue;
      }
      const message = adoption ? `${refusal}; not adopted: ${adoption.refused}` : refusal;
      refused.set(role, message);
      deps.log.warn({ relay: `${owner.namespace}/${owner.name}`, secret: name }, message);
      continue;
    }
    try {
      const s = await deps.client.create(renderRelayIssuedSecret(owner, name));
      if (s.metadata.uid) {
        uids[role] = s.metadata.uid;
        created = true;
      }
      deps.log.info({ relay: `${owner.namespace}/${owner.name}`, secret: name }, "issued Secret created");
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== 409) throw e;
      pending.add(role); // created by someone else since the cache was read: its add event requeues
    }
  }
  if (created) {
    // recorded at once, the rest of the status as it was: a failure later in this reconcile (a
    // Certificate refused, the apiserver away) must not leave the operator's own Secret unrecorded,
    // which the next reconcile would refuse
    const { conditions, ...fields } = (currentStatus(deps, raw) ?? {}) as Record<string, unknown> & {
      conditions?: Condition[];
    };
    await writeStatus(
      deps,
      raw,
      { ...fields, issuedSecretUIDs: uids },
      (conditions ?? []).map(({ lastTransitionTime: _t, ...c }) => c),
    );
  }
  return { uids, refused, pending };
}

/**
 * The fleet Secret (render/secret.ts) for a relay whose pods hand their queue over (admin token set,
 * direct smtp listener): created once with a random key when the cache does not have it; an existing
 * one is never rewritten. Returns whether it created it.
 */
async function ensureFleetSecret(deps: ReconcilerDeps, relay: MailRelay, owner: Owner): Promise<boolean> {
  const smtp = relay.spec.listeners.smtp;
  if (!relay.spec.admin?.tokenSecretRef || !smtp.enabled || smtp.proxyProtocol?.enabled) return false;
  const existing = deps.state.caches.secrets.get(owner.namespace, names.fleetSecret(owner.name));
  if (existing) {
    const controllerUid = existing.metadata.ownerReferences?.find((o) => o.controller)?.uid;
    if (!ownFleetSecret({ controllerUid, operatorLabelled: operatorLabelled(existing) }, owner.uid))
      deps.log.warn(
        { relay: `${owner.namespace}/${owner.name}`, secret: names.fleetSecret(owner.name) },
        "the fleet Secret was not created for this relay: the queue handover stays off; delete the Secret so the operator creates its own",
      );
    return false;
  }
  try {
    await deps.client.create(renderFleetSecret(owner, randomBytes(32).toString("base64url")));
  } catch (e) {
    if (e instanceof ApiError && e.code === 409) return false; // the cache was behind
    throw e;
  }
  deps.log.info({ relay: `${owner.namespace}/${owner.name}` }, "fleet Secret created");
  return true;
}
