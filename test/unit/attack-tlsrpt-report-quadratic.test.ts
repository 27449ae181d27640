// Attack (observability review, session 18): the daily TLS-RPT report of a domain is built on the
// event loop from that day's session lines (relay/outbound/tlsrpt.ts sendDay, buildReport), and the
// build grew each policy's list by copying it whole per session: quadratic in the sessions one
// domain had in a day. 60,000 sessions to one domain (a busy partner, or a stranger's own domain fed
// by the bounces of mail forged as from it, each bounce one session) held the event loop for 15 s in
// one piece, 200,000 for minutes: every SMTP session, delivery and admin probe stood still meanwhile
// (the liveness probe restarts the pod, and the next start runs the same report again). sendDay also
// filtered the whole day's lines once per domain (domains x sessions). The run is hourly and at start.
// Tests assert no time: the work is counted (steps of array iteration, reads of a line's domain), and
// must grow linearly with the day's sessions.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import {
  buildReport,
  DayTally,
  sendDay,
  type DayState,
  type SendDeps,
  type TlsRptEvent,
  type TlsRptStore,
} from "../../relay/outbound/tlsrpt.js";
import type { TlsRptReport } from "../../relay/tlsrpt-report.js";
import type { Dns } from "../../relay/outbound/mx.js";

const DAY = "2026-01-01";
const META = {
  organizationName: "Relay",
  contactInfo: "postmaster@relay.example",
  submitter: "relay.example",
  from: "tlsrpt-noreply@relay.example",
};

const session = (domain: string, i: number): TlsRptEvent => ({
  t: Date.parse(`${DAY}T12:00:00Z`) + i,
  domain,
  policy: { type: "no-policy-found", strings: [] },
  result: i % 10 ? "success" : "starttls-not-supported",
  mx: `mx.${domain}`,
  ip: "192.0.2.1",
});

/**
 * Steps of array iteration `fn` takes (spreads, for...of over arrays): a list copied per session is
 * a step per element per copy. `fn` is synchronous, so nothing else runs while it is counted.
 */
function iterationSteps<T>(fn: () => T): { value: T; steps: number } {
  const original = Array.prototype[Symbol.iterator];
  let steps = 0;
  Array.prototype[Symbol.iterator] = function (this: unknown[]) {
    const it = original.call(this);
    return {
      next: () => {
        steps++;
        return it.next();
      },
      [Symbol.iterator]() {
        return this;
      },
    } as ArrayIterator<unknown>;
  };
  try {
    return { value: fn(), steps };
  } finally {
    Array.prototype[Symbol.iterator] = original;
  }
}

/** The day's reports, with the number of reads of a session line's domain sendDay made. */
async function run(
  events: TlsRptEvent[],
  state?: DayState,
): Promise<{ reports: TlsRptReport[]; domainReads: number }> {
  let domainReads = 0;
  const counted = events.map((e) => {
    const { domain, ...rest } = e;
    return Object.defineProperty({ ...rest }, "domain", {
      enumerable: true,
      get: () => {
        domainReads++;
        return domain;
      },
    }) as TlsRptEvent;
  });
  const reports: TlsRptReport[] = [];
  const d: SendDeps = {
    // the store's day as sendDay reads it: the sessions counted as they come (TlsRptStore.tally)
    store: {
      tally: (day: string) => {
        const t = new DayTally(day);
        for (const e of counted) t.add(e);
        return Promise.resolve(t);
      },
    } as unknown as TlsRptStore,
    dns: () =>
      ({
        resolveTxt: (name: string) =>
          Promise.resolve([[`v=TLSRPTv1; rua=https://${name.replace(/^_smtp\._tls\./, "")}/v1`]]),
      }) as unknown as Dns,
    meta: () => META,
    enqueue: () => Promise.resolve("Q1"),
    post: (_url, gz) => {
      reports.push(JSON.parse(gunzipSync(gz).toString("utf8")) as TlsRptReport);
      return Promise.resolve(200);
    },
  };
  await sendDay(DAY, d, state);
  return { reports, domainReads };
}

describe("attack: a day's TLS-RPT reports cost work quadratic in its sessions", () => {
  it("5,000 sessions to one domain: one report, counted right, built in steps linear in them", () => {
    const n = 5_000;
    const events = Array.from({ length: n }, (_, i) => session("busy.example", i));
    const { value: report, steps } = iterationSteps(() => buildReport(DAY, "busy.example", events, META));
    const s = report.policies[0]!.summary;
    assert.equal(s["total-successful-session-count"] + s["total-failure-session-count"], n);
    assert.equal(s["total-failure-session-count"], n / 10);
    // a list copied per session: n * n / 2 steps (12.5 million here); in place, a few per session
    assert.ok(steps <= 10 * n, `${steps} steps of array iteration for ${n} sessions`);
  });

  it("500 domains of 10 sessions each: a report each, each session's domain read a few times, not once per domain", async () => {
    const domains = 500;
    const n = domains * 10;
    const events = Array.from({ length: n }, (_, i) => session(`d${i % domains}.attacker.example`, i));
    const { reports, domainReads } = await run(events);
    assert.equal(reports.length, domains);
    // the day's lines filtered once per domain: domains x sessions reads (2.5 million here)
    assert.ok(domainReads <= 5 * n, `${domainReads} reads of a session's domain for ${n} sessions`);
  });

  it("a later run of a day of 500 domains lists the day's saved state once, not once per domain", async () => {
    const domains = 500;
    const events = Array.from({ length: domains }, (_, i) => session(`d${i}.attacker.example`, i));
    // the state an earlier run left: each domain's target failed once, to be tried again
    const targets: DayState["targets"] = {};
    for (let i = 0; i < domains; i++)
      targets[`d${i}.attacker.example https://d${i}.attacker.example/v1`] = { result: "failed", attempts: 1 };
    let listings = 0;
    const counted = new Proxy(targets, {
      ownKeys: (t) => {
        listings++;
        return Reflect.ownKeys(t);
      },
    });
    const { reports } = await run(events, { targets: counted });
    assert.equal(reports.length, domains);
    assert.ok(listings <= 2, `the day's state was listed ${listings} times for ${domains} domains`);
  });
});
