// What relay/delivery-observers.ts writes to the log for each delivery event: every event's `reason`
// comes from outside (a next hop's reply, a WKD answer, an MTA-STS policy file, a certificate) and each
// source was bounded where it was found (the strings review, session 19); the log line bounds it once
// more, in one place, so a source not yet found cannot write a line of any length per recipient and
// attempt. Pure (a fake log and metrics).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deliveryObservers, type ObserverDeps } from "../../relay/delivery-observers.js";

const LONG = "x".repeat(100_000);
/** As many characters as a reason of the log keeps (delivery-observers.ts MAX_LOGGED_REASON). */
const MAX_LOGGED_REASON = 1024;

function observers() {
  const lines: Record<string, unknown>[] = [];
  const log = (o: Record<string, unknown>) => lines.push(o);
  const counter = { inc: () => undefined };
  const d = {
    metrics: new Proxy({}, { get: () => counter }),
    log: { info: log, warn: log, error: log, debug: log },
    figures: { record: () => undefined },
    config: () => ({ policies: [] }),
    tlsRpt: () => undefined,
  } as unknown as ObserverDeps;
  return { o: deliveryObservers(d), lines };
}

describe("the delivery log bounds an outsider's reason in one place", () => {
  it(`every event's reason is at most ${MAX_LOGGED_REASON} characters`, () => {
    const { o, lines } = observers();
    const base = { queueId: "Q", policy: "p", recipients: ["a@x.test"], reason: LONG };
    o.onMtaSts({
      ...base,
      domain: "x.test",
      source: "none",
      stsMode: "no-policy",
      result: "sts-policy-invalid",
    });
    o.onSmime({ ...base, result: "deferred" });
    o.onOpenpgp({ ...base, result: "deferred" });
    o.onDkim({ ...base, result: "deferred", domain: "x.test", selector: "s" });
    o.onFallback({ ...base, action: "smime", trigger: "t", result: "deferred" } as never);
    o.onAttempt({ ...base, result: "deferred", domain: "x.test", level: "may" } as never);
    assert.equal(lines.length, 6);
    for (const l of lines)
      assert.ok(
        String(l.reason).length <= MAX_LOGGED_REASON,
        `${String(l.event)}: a reason of ${String(l.reason).length} characters`,
      );
  });
});

describe("an observer that throws never changes a delivery's outcome", () => {
  it("attack: a throw in what the relay records of a delivery is logged, not thrown into the Deliverer", () => {
    const lines: Record<string, unknown>[] = [];
    const log = (o: Record<string, unknown>) => lines.push(o);
    const d = {
      metrics: new Proxy({}, { get: () => ({ inc: () => undefined }) }),
      log: { info: log, warn: log, error: log, debug: log },
      // the per-policy figures book fails (a bug, a full map): thrown after the next hop's 250, it
      // discarded the delivered results (sent again at every retry, then a "failed" DSN at maxAge)
      figures: {
        record: () => {
          throw new Error("figures book broken");
        },
      },
      config: () => ({ policies: [] }),
      tlsRpt: () => undefined,
    } as unknown as ObserverDeps;
    const o = deliveryObservers(d);
    assert.doesNotThrow(() =>
      o.onAttempt({ queueId: "Q", policy: "p", recipients: ["a@x.test"], result: "delivered" } as never),
    );
    assert.deepEqual(
      lines.map((l) => [l.event, l.observer, l.err]),
      [
        ["delivery", undefined, undefined], // the attempt's own line is written first
        ["observer-error", "onAttempt", "figures book broken"],
      ],
    );
  });
});
