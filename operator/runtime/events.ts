// Kubernetes Events (events.k8s.io/v1) for problems, their repair, and relay configuration
// revisions. Best effort: a failed Event never fails a reconcile. Which status changes get one is
// statusEvents' decision (operator/controllers/status-write.ts); a steady state emits nothing.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { printable } from "../../relay/contract/printable.js";
import { R, type KubeClient, type KubeObject } from "./kube.js";

export const REPORTING_CONTROLLER = "sealpost.dev/operator";

export interface EventInput {
  type: "Normal" | "Warning";
  reason: string;
  action: string;
  note: string;
}

/**
 * The longest note the apiserver takes: 1,024 bytes of UTF-8 (it refuses the whole Event past them,
 * and text from outside, a partner certificate's issuer, is not ASCII-only: attack review, session 18).
 */
export const NOTE_MAX_BYTES = 1024;

/** The longest start of `s` within `maxBytes` of UTF-8, never cutting a character in two. Pure. */
export function utf8Prefix(s: string, maxBytes: number): string {
  if (s.length * 3 <= maxBytes || Buffer.byteLength(s) <= maxBytes) return s;
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
  }
  return s.slice(0, end);
}

/** events.k8s.io/v1 MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The Event object for `regarding` (pure). */
export function renderEvent(
  regarding: KubeObject,
  e: EventInput,
  instance: string,
  now: Date,
  suffix: string,
): KubeObject {
  const ns = regarding.metadata.namespace ?? "default";
  return {
    apiVersion: R.Event.apiVersion,
    kind: R.Event.kind,
    metadata: { name: `${regarding.metadata.name}.${suffix}`, namespace: ns },
    eventTime: microTime(now),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: instance.slice(0, 128),
    action: e.action.slice(0, 128),
    reason: e.reason.slice(0, 128),
    type: e.type,
    // text from outside (a partner certificate's issuer) with its control characters escaped
    note: utf8Prefix(printable(e.note), NOTE_MAX_BYTES),
    regarding: {
      apiVersion: regarding.apiVersion,
      kind: regarding.kind,
      name: regarding.metadata.name,
      namespace: ns,
      uid: regarding.metadata.uid,
      resourceVersion: regarding.metadata.resourceVersion,
    },
  };
}

export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly instance: string,
    private readonly log?: Logger,
  ) {}

  async record(regarding: KubeObject, e: EventInput): Promise<void> {
    const ev = renderEvent(regarding, e, this.instance, new Date(), randomBytes(8).toString("hex"));
    try {
      await this.client.create(ev);
    } catch (err) {
      this.log?.warn({ err: (err as Error).message, reason: e.reason }, "could not record event");
    }
  }
}
