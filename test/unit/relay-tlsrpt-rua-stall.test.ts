// Attack (review of the TLS-RPT lookup fix, round 7): a partner domain controls its own _smtp._tls
// answers. Answering once with an https rua whose endpoint fails the POST, then SERVFAILing every
// later lookup, left the rua target (hidden behind the failing lookup) due for ever: the day never
// finished and every hourly run re-read it and repeated the lookup until the 7-day prune. A record
// naming a new endpoint every run after a failed POST did the same, and sent the one report again
// to each. A due target a run cannot try now counts an attempt, and a day tries at most ten targets
// per domain (relay/outbound/tlsrpt.ts sendDay).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  MAX_REPORT_ATTEMPTS,
  TlsRptReporter,
  TlsRptStore,
  type SendDeps,
} from "../../relay/outbound/tlsrpt.js";
import type { Dns } from "../../relay/outbound/mx.js";

const DAY = "2026-01-01";
const TODAY = "2026-01-02";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-rua-stall-"));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("TLS-RPT: a hostile domain's rua lookup cannot hold a day open", () => {
  it("a day whose domain answers once, then SERVFAILs, finishes within the attempt limit", async () => {
    const store = new TlsRptStore(dir);
    await store.record({
      t: Date.parse(`${DAY}T12:00:00Z`),
      domain: "hostile.example",
      policy: { type: "sts", strings: ["version: STSv1", "mode: enforce"] },
      result: "certificate-expired",
      mx: "mx.hostile.example",
      ip: "192.0.2.10",
    });
    await store.flushed();
    let lookups = 0;
    const dns = {
      resolveTxt: (name: string) =>
        ++lookups === 1
          ? Promise.resolve([["v=TLSRPTv1; rua=https://tlsrpt.hostile.example/r"]])
          : Promise.reject(Object.assign(new Error(`queryTxt ESERVFAIL ${name}`), { code: "ESERVFAIL" })),
    } as unknown as Dns;
    let posts = 0;
    const d: SendDeps = {
      store,
      dns: () => dns,
      meta: () => ({
        organizationName: "Relay",
        contactInfo: "postmaster@relay.example",
        submitter: "relay.example",
        from: "tlsrpt-noreply@relay.example",
      }),
      enqueue: () => Promise.resolve("Q1"),
      post: () => {
        posts++;
        return Promise.resolve(503);
      },
    };
    const reporter = new TlsRptReporter(d);
    // hourly runs: far more than every target's attempt limit (1 rua + 1 lookup target)
    const runs = 4 * MAX_REPORT_ATTEMPTS + 2;
    for (let i = 0; i < runs; i++) await reporter.due(TODAY);
    assert.deepEqual(
      await store.pendingDays(TODAY),
      [],
      `after ${runs} runs the day is still pending (${lookups} hostile lookups, ${posts} POST); ` +
        `state: ${JSON.stringify(await store.dayState(DAY))}`,
    );
  });
  it("a domain that changes its rua after a failed POST cannot hold the day open either", async () => {
    const store = new TlsRptStore(join(dir, "rotate"));
    await store.record({
      t: Date.parse(`${DAY}T12:00:00Z`),
      domain: "hostile.example",
      policy: { type: "sts", strings: ["version: STSv1", "mode: enforce"] },
      result: "certificate-expired",
      mx: "mx.hostile.example",
      ip: "192.0.2.10",
    });
    await store.flushed();
    // every run the record names a fresh endpoint; the one of the first run failed its POST
    let run = 0;
    const dns = {
      resolveTxt: () => Promise.resolve([[`v=TLSRPTv1; rua=https://r${run}.hostile.example/r`]]),
    } as unknown as Dns;
    const posted: string[] = [];
    const d: SendDeps = {
      store,
      dns: () => dns,
      meta: () => ({
        organizationName: "Relay",
        contactInfo: "postmaster@relay.example",
        submitter: "relay.example",
        from: "tlsrpt-noreply@relay.example",
      }),
      enqueue: () => Promise.resolve("Q1"),
      post: (url) => {
        posted.push(url);
        return Promise.resolve(posted.length === 1 ? 503 : 200);
      },
    };
    const reporter = new TlsRptReporter(d);
    const runs = 4 * MAX_REPORT_ATTEMPTS + 2;
    for (run = 0; run < runs; run++) await reporter.due(TODAY);
    assert.deepEqual(
      await store.pendingDays(TODAY),
      [],
      `after ${runs} runs the day is still pending; the one report was POSTed ${posted.length} times ` +
        `(${posted.length - 1} after a success); state: ${JSON.stringify(await store.dayState(DAY))}`,
    );
  });
});
