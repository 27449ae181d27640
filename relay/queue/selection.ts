// Which queued messages a bulk queue command acts on (postsuper/postqueue parity, issue 17): the
// messages with a pending recipient at a domain (`--domain`), whose last failure has a reason code or
// text (`--reason`), received longer ago than an age (`--older-than`), all of the given criteria at
// once; or every message (`--all`). A bulk command without any criterion is refused, so a typo never
// deletes the whole queue. Pure: the admin API (admin-api.ts) and the CLI (queue-cli.ts) share it.
import { domainPart } from "../contract/domains.js";
import { fail, ok, type Result } from "../contract/failure.js";
import type { Envelope } from "./envelope.js";

export interface Selection {
  all?: boolean;
  /** Recipient domain (case-insensitive), of a pending recipient. */
  domain?: string;
  /** A pending recipient's last failure: its code (exact) or a part of its text (case-insensitive). */
  reason?: string;
  /** Received at least this many seconds ago. */
  olderThanSeconds?: number;
}

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90s", "30m", "2h", "3d" (or plain seconds) as seconds; undefined when it is none of those. */
export function parseAge(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(s.trim());
  return m ? Number(m[1]) * UNIT[m[2] || "s"]! : undefined;
}

/** The selection of a bulk request's query (all, domain, reason, olderThan). */
export function selectionOf(q: URLSearchParams): Result<Selection> {
  const sel: Selection = {};
  if (q.get("all") === "true") sel.all = true;
  const domain = q.get("domain");
  if (domain) sel.domain = domain.toLowerCase().replace(/\.$/, "");
  const reason = q.get("reason");
  if (reason) sel.reason = reason;
  const older = q.get("olderThan");
  if (older !== null) {
    const s = parseAge(older);
    if (s === undefined)
      return fail("BAD_SELECTION", false, `olderThan: "${older}" is not an age such as 90s, 30m, 2h or 3d`);
    // an age of 0 filters nothing: it is no selection of its own (a whole queue needs --all)
    if (s > 0) sel.olderThanSeconds = s;
  }
  if (!sel.all && !sel.domain && !sel.reason && sel.olderThanSeconds === undefined)
    return fail(
      "BAD_SELECTION",
      false,
      "a bulk command needs a selection: --domain, --reason, --older-than, or --all for every message",
    );
  return ok(sel);
}

/** Whether the selection takes this message. */
export function selects(env: Envelope, sel: Selection, now: number): boolean {
  if (sel.olderThanSeconds !== undefined && now - env.receivedAt < sel.olderThanSeconds * 1000) return false;
  const pending = env.recipients.filter((r) => r.state === "pending");
  if (sel.domain && !pending.some((r) => domainPart(r.address).toLowerCase() === sel.domain)) return false;
  if (sel.reason) {
    const needle = sel.reason.toLowerCase();
    const matches = pending.some(
      (r) =>
        r.lastError !== undefined &&
        (r.lastError.code === sel.reason || r.lastError.message.toLowerCase().includes(needle)),
    );
    if (!matches) return false;
  }
  return true;
}
