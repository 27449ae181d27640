// A policy's exceptions on its status (issue 19 item 5): the list with each one's state, the line
// kubectl get shows, and the Events of a change: granted (it became Active), expired (it was Pending
// or Active and is now Expired), refused (longer than a relay's maxDuration). Pure.
import type { ExceptionVerdict } from "../compile/exceptions.js";
import type { EventInput } from "../runtime/events.js";

type Listed = Pick<ExceptionVerdict, "name" | "state" | "until" | "message">;

/** status.exceptions and status.activeExceptions (absent without exceptions / none active). */
export function exceptionsStatus(v: readonly ExceptionVerdict[]): {
  exceptions?: Listed[];
  activeExceptions?: string;
} {
  if (!v.length) return {};
  const active = v.filter((x) => x.state === "Active").map((x) => x.name);
  return {
    exceptions: v.map(({ name, state, until, message }) => ({ name, state, until, message })),
    ...(active.length ? { activeExceptions: active.join(", ") } : {}),
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
