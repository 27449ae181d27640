// MailDomainPolicy reconciler: status only (the relays own the config). For each relay that selects
// the policy it compiles that relay (pure, from the caches) to learn whether the policy is in its
// config or why not; Accepted when it is in every selecting relay's config, Enforced when every
// ready pod of those relays reports (admin /status) the config hash that contains it.
import { MailDomainPolicy as PolicySchema } from "../api.js";
import { keyOf, type PolicyProblem } from "../compile/relay-config.js";
import { MailRelay as MailRelaySchema } from "../api.js";
import type { ReconcileResult } from "../runtime/controller.js";
import type { ConditionInput } from "../runtime/conditions.js";
import { splitKey } from "../state.js";
import { probeRelay, writeStatus, type ReconcilerDeps } from "./common.js";

export async function reconcileMailDomainPolicy(
  deps: ReconcilerDeps,
  key: string,
): Promise<ReconcileResult | void> {
  const { namespace, name } = splitKey(key);
  const raw = deps.state.caches.policies.get(namespace, name);
  if (!raw || raw.metadata.deletionTimestamp) return;
  const g = raw.metadata.generation;
  const parsed = PolicySchema.safeParse(raw);
  const relays = deps.state.relaysSelecting(raw);
  const problems: PolicyProblem[] = [];
  const included: { relay: string; hash: string; relayObj: (typeof relays)[number] }[] = [];
  if (!parsed.success) {
    problems.push({
      reason: "InvalidSpec",
      message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    });
  } else {
    for (const r of relays) {
      const rp = MailRelaySchema.safeParse(r);
      if (!rp.success) continue;
      let res;
      try {
        res = deps.state.compile(rp.data);
      } catch {
        continue; // the relay's own problem, reported on the MailRelay
      }
      const mine = res.problems.get(key);
      if (mine) {
        for (const p of mine)
          if (!problems.some((x) => x.reason === p.reason && x.message === p.message)) problems.push(p);
      } else if (res.included.includes(key)) included.push({ relay: keyOf(r), hash: res.hash, relayObj: r });
    }
  }

  let accepted: ConditionInput;
  if (problems.length) {
    // the most actionable reason first: conflicts, then missing, then invalid
    const order = ["DomainConflict", "MissingReference", "InvalidReference", "InvalidSpec"];
    problems.sort((a, b) => order.indexOf(a.reason) - order.indexOf(b.reason));
    accepted = {
      type: "Accepted",
      status: "False",
      reason: problems[0]!.reason,
      message: problems.map((p) => p.message).join("; "),
      observedGeneration: g,
    };
  } else if (!relays.length) {
    accepted = {
      type: "Accepted",
      status: "True",
      reason: "NoRelay",
      message: "valid; no MailRelay in this namespace selects it",
      observedGeneration: g,
    };
  } else {
    accepted = {
      type: "Accepted",
      status: "True",
      reason: "Compiled",
      message: `compiled into ${included.length} relays: ${included.map((i) => i.relay).join(", ")}`,
      observedGeneration: g,
    };
  }

  let enforced: ConditionInput;
  if (accepted.status !== "True") {
    enforced = {
      type: "Enforced",
      status: "False",
      reason: "NotAccepted",
      message: "not in any relay configuration",
      observedGeneration: g,
    };
  } else if (!included.length) {
    enforced = {
      type: "Enforced",
      status: "Unknown",
      reason: "NoRelay",
      message: "no MailRelay selects this policy",
      observedGeneration: g,
    };
  } else {
    let ready = 0;
    const behind: string[] = [];
    for (const i of included) {
      const pods = deps.state.readyPods(i.relayObj);
      if (!pods.length) continue;
      const pr = await probeRelay(deps, pods, i.hash);
      ready += pr.ready;
      behind.push(...pr.behind.map((p) => `${namespace}/${p}`));
    }
    if (!ready)
      enforced = {
        type: "Enforced",
        status: "Unknown",
        reason: "NoReadyReplicas",
        message: "no ready relay pod to confirm the configuration",
        observedGeneration: g,
      };
    else if (behind.length)
      enforced = {
        type: "Enforced",
        status: "False",
        reason: "Pending",
        message: `${behind.length} of ${ready} ready relay pods have not loaded it yet: ${behind.join(", ")}`,
        observedGeneration: g,
      };
    else
      enforced = {
        type: "Enforced",
        status: "True",
        reason: "Enforced",
        message: `loaded by all ${ready} ready relay pods`,
        observedGeneration: g,
      };
  }

  const ready: ConditionInput =
    accepted.status !== "True"
      ? { ...accepted, type: "Ready", status: "False" }
      : enforced.status === "True"
        ? {
            type: "Ready",
            status: "True",
            reason: "Enforced",
            message: enforced.message,
            observedGeneration: g,
          }
        : { ...enforced, type: "Ready", status: "False" };
  await writeStatus(deps, raw, { observedGeneration: g }, [ready, accepted, enforced]);
  if (enforced.reason === "Pending") return { requeueAfterMs: deps.enforcePollMs };
}
