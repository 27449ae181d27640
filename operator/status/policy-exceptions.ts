// A policy's exceptions on its status (issue 19 item 5): the list with each one's state, the line
// kubectl get shows, and the Events of a change: granted (it became Active), expired (it was Pending
// or Active and is now Expired), refused (longer than a relay's maxDuration). Pure.
import type { ExceptionVerdict } from "../compile/exceptions.js";
import { statusText } from "../runtime/conditions.js";
import type { EventInput } from "../runtime/events.js";

type Listed = Pick<ExceptionVerdict, "name" | "state" | "until" | "message">;

/**
 * The CRD's maxLength of an exception's status message and of activeExceptions: a longer one (an
 * Active exception's message carries its reason, up to 1,024 characters, and requestedBy; sixteen
 * names of 63) made the apiserver refuse the whole status for ever (review of the fix, round 7).
 */
const EXCEPTION_TEXT_MAX = 1024;

/** The active exceptions' names as one line of at most EXCEPTION_TEXT_MAX: as many as fit, then a count. Pure. */
function activeLine(names: readonly string[]): string {
  for (let n = names.length; n > 0; n--) {
    const line = names.slice(0, n).join(", ") + (n < names.length ? `, and ${names.length - n} more` : "");
    if (line.length <= EXCEPTION_TEXT_MAX) return line;
  }
  return `${names.length} exceptions`;
}

/** status.exceptions and status.activeExceptions (absent without exceptions / none active). */
export function exceptionsStatus(v: readonly ExceptionVerdict[]): {
  exceptions?: Listed[];
  activeExceptions?: string;
} {
  if (!v.length) return {};
  const active = v.filter((x) => x.state === "Active").map((x) => x.name);
  return {
    exceptions: v.map(({ name, state, until, message }) => ({
      name,
      state,
      until,
      message: statusText(message, EXCEPTION_TEXT_MAX),
    })),
    ...(active.length ? { activeExceptions: activeLine(active) } : {}),
  };
}

/** The Events for the change from `previous` (the status as written) to `next`. */
export function exceptionEvents(
  previous: readonly Listed[] | undefined,
  next: readonly ExceptionVerdict[],
): EventInput[] {
  const out: EventInput[] = [];
  for (const x of next) {
    const before = previous?.find((p) => p.name === x.name);
    if (before?.state === x.state) continue;
    if (x.state === "Active")
      out.push({
        type: "Normal",
        reason: "ExceptionGranted",
        action: "Exception",
        note: `exception ${x.name} in force: ${x.message}`,
      });
    else if (x.state === "Expired" && before && before.state !== "Refused")
      out.push({
        type: "Normal",
        reason: "ExceptionExpired",
        action: "Exception",
        note: `exception ${x.name} expired at ${x.until}: the policy applies as written`,
      });
    else if (x.state === "Refused")
      out.push({ type: "Warning", reason: "ExceptionRefused", action: "Exception", note: x.message });
  }
  return out;
}
