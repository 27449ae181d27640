// What every controller's reconcile is handed by the composition root (operator/operator.ts).
import type { Logger } from "pino";
import type { RelaySettings } from "../render/input.js";
import type { AppliedObjects } from "../runtime/applied.js";
import type { EventRecorder } from "../runtime/events.js";
import type { KubeClient } from "../runtime/kube.js";
import type { CompileMemo } from "../compile/memo.js";
import type { ClusterState } from "../state.js";
import type { StatusProbe } from "./relay-probe.js";
import type { CheckAsk, PolicyChecks } from "./check-ask.js";
import type { CheckStatus } from "../../api/v1alpha1/preflight-check.js";
import type { WrittenStatus } from "./status-write.js";

export interface ReconcilerDeps {
  client: KubeClient;
  state: ClusterState;
  /** What this process compiled from the state, remembered per input. */
  compiler: CompileMemo;
  settings: RelaySettings;
  events: EventRecorder;
  log: Logger;
  probe: StatusProbe;
  /** How often to look again at pods that have not loaded the latest config yet. */
  enforcePollMs: number;
  /** How often to refresh a policy's delivery figures from its relays' pods (they change without events). */
  figuresPollMs: number;
  now: () => Date;
  /** What this process applied last (skips applies that would change nothing). */
  applied: AppliedObjects;
  /** Unwatched objects are applied again at least this often (drift repair); 0: on every reconcile. */
  reapplyMs: number;
  /** Status this process wrote that the informer cache may not show yet (see writeStatus). */
  written: WrittenStatus;
  /** Pre-flight checks on request (maildomainpolicy/check.ts); absent: the annotation is not acted on. */
  checks?: PolicyChecks<Omit<NonNullable<CheckStatus>, "token">>;
  checkAsk?: CheckAsk;
}
