// POST /check on the relay's admin port: the pre-flight check (run.ts) of one of a policy's own
// domains, for the operator (which has no SMTP egress) or an administrator with the admin token.
// The endpoint must not become a scanner (SSRF): the request names only a policy of the loaded
// config and one of its exact domains; host, port, resolver and trust anchors come from the relay's
// config (the MX port delivery uses, dns.servers, the policy's caFile, the relay's MTA-STS cache),
// addresses DNS gives are filtered as delivery filters them (delivery.allowedInternalCidrs), and any
// other field in the body is refused. One check runs at a time, a domain is checked at most once per
// DOMAIN_INTERVAL_MS, and the answer comes within ANSWER_DEADLINE_MS or is 504 (the deadline ends the
// check too; it holds its slot until it has ended: no pile-up).
//   200 CheckReport JSON | 400 malformed | 401/403 token | 403 not the policy's domain | 405 |
//   409 the policy has a nextHop (the check probes MX) | 413 body too large | 429 busy or too soon | 504
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { CheckRequest, type CheckReport } from "../contract/check.js";
import type { Policy } from "../contract/config.js";
import { canonicalDomain } from "../contract/domains.js";
import { safeJson } from "../printable.js";
import { checkAdminToken, type QueueAdminDeps } from "../queue/admin-api.js";
import type { CheckDeps } from "./run.js";

export const BODY_MAX = 4096;
export const DOMAIN_INTERVAL_MS = 30_000;
export const ANSWER_DEADLINE_MS = 60_000;

export interface CheckAdminDeps extends Pick<QueueAdminDeps, "config" | "configDir"> {
  /** The check's dependencies for one policy (the relay's resolvers, MTA-STS, filter, the policy's CA). */
  checkDeps(policy: Policy): CheckDeps;
  run(domain: string, deps: CheckDeps): Promise<CheckReport>;
  limiter: CheckLimiter;
  deadlineMs?: number;
}

/** One check at a time, and one per domain per interval. */
export class CheckLimiter {
  private busy = false;
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs = DOMAIN_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A release function, or why not now (with the seconds to wait). */
  acquire(domain: string): (() => void) | { reason: string; retryAfter: number } {
    if (this.busy) return { reason: "another check is running", retryAfter: 5 };
    const t = this.now();
    const prev = this.last.get(domain);
    if (prev !== undefined && t - prev < this.intervalMs)
      return {
        reason: `${domain} was checked less than ${this.intervalMs / 1000}s ago`,
        retryAfter: Math.ceil((this.intervalMs - (t - prev)) / 1000),
      };
    this.busy = true;
    this.last.set(domain, t);
    if (this.last.size > 1024)
      for (const [k, v] of this.last) if (t - v >= this.intervalMs) this.last.delete(k);
    return () => {
      this.busy = false;
    };
  }
}

/** The request body: exactly { policy, domain }, nothing else (no host, no port). */
const Body = z.strictObject(CheckRequest.shape);

/** The policy and domain a request may check, or the refusal. Pure. */
export function checkTarget(
  policies: readonly Policy[],
  body: unknown,
): { policy: Policy; domain: string } | { code: 400 | 403 | 409; error: string } {
  const r = Body.safeParse(body);
  if (!r.success) return { code: 400, error: "the body must be JSON {policy, domain} and nothing else" };
  const domain = canonicalDomain(r.data.domain);
  if (!domain) return { code: 400, error: "domain is not a domain name" };
  const policy = policies.find((p) => p.name === r.data.policy);
  // an exact domain of that policy, never a pattern's subdomain nor another policy's
  if (!policy || !policy.domains.includes(domain))
    return { code: 403, error: `${domain} is not a domain of policy ${r.data.policy}` };
  if (policy.outbound.nextHop)
    return { code: 409, error: `policy ${policy.name} delivers to its nextHop: the check probes MX hosts` };
  return { policy, domain };
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > BODY_MAX) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", () => resolve(undefined));
  });
}

export function handleCheckRequest(d: CheckAdminDeps, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? "/").split("?")[0];
  if (path !== "/check") return false;
  const json = (code: number, body: unknown, headers: Record<string, string> = {}): void => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store", ...headers });
    res.end(safeJson(body) + "\n");
  };
  void (async () => {
    const refused = await checkAdminToken(d, req);
    if (refused) return json(refused.code, { error: refused.error });
    if (req.method !== "POST") return json(405, { error: "method not allowed: POST {policy, domain}" });
    const text = await readBody(req);
    if (text === undefined) return json(413, { error: `body larger than ${BODY_MAX} bytes` });
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return json(400, { error: "the body is not JSON" });
    }
    const target = checkTarget(d.config().policies, body);
    if ("error" in target) return json(target.code, { error: target.error });
    const slot = d.limiter.acquire(target.domain);
    if (typeof slot !== "function")
      return json(429, { error: slot.reason }, { "retry-after": String(slot.retryAfter) });
    // the deadline also ends the check (run.ts: the probe under way closed, no address probed after
    // it): an overrunning check held the one slot for as long as its MX hosts stalled every step
    // (test/mail/attack-check-tarpit-slot.test.ts)
    const end = new AbortController();
    const run = d.run(target.domain, { ...d.checkDeps(target.policy), signal: end.signal }).finally(slot);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => {
        end.abort();
        resolve("timeout");
      }, d.deadlineMs ?? ANSWER_DEADLINE_MS);
    });
    const r = await Promise.race([run, deadline]).finally(() => clearTimeout(timer));
    if (r === "timeout") {
      run.catch(() => undefined);
      return json(504, { error: `the check of ${target.domain} did not finish in time` });
    }
    json(200, r);
  })().catch((e: unknown) => json(500, { error: String(e) }));
  return true;
}
