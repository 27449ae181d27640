// Asking a relay pod to run the pre-flight check (its admin POST /check, relay/check/admin-api.ts):
// the operator has no SMTP egress (its NetworkPolicy), the relay pods have. One request per domain,
// with the relay's admin token; the answer is read bounded (CHECK_ANSWER_MAX) and must parse as a
// CheckReport, else it counts as no answer. PolicyChecks runs a policy's request in the background so
// that no reconcile waits a minute for partner servers, and keeps the outcome until the reconcile
// that writes it: nothing half-written, a failed request is retried after RETRY_MS.
import { request } from "node:http";
import { signAdminRequest } from "../../relay/contract/admin-auth.js";
import { CHECK_ANSWER_MAX, CheckReport, type CheckRequest } from "../../relay/contract/check.js";
import type { PodObject } from "../objects.js";

export type CheckAnswer =
  | { ok: true; report: CheckReport }
  | { ok: false; reason: "Timeout" | "Unreachable" | "Refused" | "InvalidAnswer"; message: string };

export type CheckAsk = (
  pod: PodObject,
  port: number,
  token: string,
  body: CheckRequest,
) => Promise<CheckAnswer>;

/** The relay answers within 60 s (its deadline) or says 504; this is the operator's own limit. */
export const ASK_TIMEOUT_MS = 75_000;

export const httpCheckAsk: CheckAsk = (pod, port, token, body) =>
  new Promise((resolve) => {
    const ip = pod.status?.podIP;
    if (!ip) return resolve({ ok: false, reason: "Unreachable", message: "the pod has no IP" });
    const host = ip.includes(":") ? `[${ip}]` : ip;
    const payload = JSON.stringify(body);
    const hostHeader = `${host}:${port}`;
    const req = request(
      `http://${hostHeader}/check`,
      {
        method: "POST",
        timeout: ASK_TIMEOUT_MS,
        headers: {
          host: hostHeader,
          // signed with the token, which never crosses the pod network (relay/contract/admin-auth.ts)
          authorization: signAdminRequest(token, "POST", "/check", hostHeader),
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > CHECK_ANSWER_MAX) {
            req.destroy();
            return resolve({
              ok: false,
              reason: "InvalidAnswer",
              message: `answer larger than ${CHECK_ANSWER_MAX} bytes`,
            });
          }
          chunks.push(c);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            return resolve({
              ok: false,
              reason: "InvalidAnswer",
              message: `HTTP ${res.statusCode}: not JSON`,
            });
          }
          if (res.statusCode === 504)
            return resolve({
              ok: false,
              reason: "Timeout",
              message: "the relay's check did not finish in time",
            });
          if (res.statusCode !== 200) {
            const error = (json as { error?: unknown } | null)?.error;
            return resolve({
              ok: false,
              reason: "Refused",
              message: `HTTP ${res.statusCode}: ${typeof error === "string" ? error.slice(0, 256) : "refused"}`,
            });
          }
          const r = CheckReport.safeParse(json);
          resolve(
            r.success
              ? { ok: true, report: r.data }
              : { ok: false, reason: "InvalidAnswer", message: "the answer is not a check report" },
          );
        });
        res.on("error", () => resolve({ ok: false, reason: "Unreachable", message: "the answer broke off" }));
      },
    );
    req.on("timeout", () => {
      req.destroy();
      resolve({ ok: false, reason: "Timeout", message: `no answer within ${ASK_TIMEOUT_MS / 1000}s` });
    });
    req.on("error", (e) => resolve({ ok: false, reason: "Unreachable", message: e.message.slice(0, 256) }));
    req.end(payload);
  });

/** What a background request came to. */
export type CheckOutcome<T> = { ok: true; value: T } | { ok: false; reason: string; message: string };

/** How long after a failed request the same token is asked again. */
export const RETRY_MS = 60_000;

/** Background check requests, one per policy key and token (this process only: a new leader asks again). */
export class PolicyChecks<T> {
  private readonly runs = new Map<string, { token: string; finished?: number; outcome?: CheckOutcome<T> }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The outcome for `token`, or "running" (started now, when not yet running or a failure is old enough). */
  poll(key: string, token: string, start: () => Promise<CheckOutcome<T>>): CheckOutcome<T> | "running" {
    const r = this.runs.get(key);
    if (r && r.token === token) {
      if (!r.outcome) return "running";
      if (r.outcome.ok || this.now() - r.finished! < RETRY_MS) return r.outcome;
    }
    const run: { token: string; finished?: number; outcome?: CheckOutcome<T> } = { token };
    this.runs.set(key, run);
    void start()
      .catch((e: unknown): CheckOutcome<T> => ({ ok: false, reason: "Unreachable", message: String(e) }))
      .then((o) => {
        run.outcome = o;
        run.finished = this.now();
      });
    return "running";
  }

  /** Forget a policy's run (its answer was written, or the annotation is gone). */
  forget(key: string): void {
    this.runs.delete(key);
  }

  /** Milliseconds until a failed request may be retried. */
  retryInMs(key: string): number {
    const r = this.runs.get(key);
    return r?.finished ? Math.max(1000, RETRY_MS - (this.now() - r.finished)) : 1000;
  }
}
