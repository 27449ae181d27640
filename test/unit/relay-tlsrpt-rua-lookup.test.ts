// Attack (review of the TLS-RPT retention, round 7): a day is "finished" when every target it has is
// done, and sendDay gave a domain no target at all when its _smtp._tls lookup failed for any reason
// (a SERVFAIL or a timeout read as "no rua"): a DNS hiccup at the one run after midnight marked the
// day sent, and its events, the partner's report included, were deleted. A failed lookup is now a
// failed target of its own, tried again at the next runs (relay/outbound/tlsrpt.ts discoverRua).
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TlsRptReporter, TlsRptStore, type SendDeps } from "../../relay/outbound/tlsrpt.js";
import type { Dns } from "../../relay/outbound/mx.js";

const DAY = "2026-01-01";
const TODAY = "2026-01-02";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-rua-dns-"));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("TLS-RPT: a failed rua lookup is not 'no rua'", () => {
  it("a SERVFAIL on _smtp._tls at the first run does not lose the day's report", async () => {
    const store = new TlsRptStore(dir);
    await store.record({
      t: Date.parse(`${DAY}T12:00:00Z`),
      domain: "partner.example",
      policy: { type: "sts", strings: ["version: STSv1", "mode: enforce"] },
      result: "certificate-expired",
      mx: "mx.partner.example",
      ip: "192.0.2.10",
    });
    await store.flushed();
    let dnsUp = false;
    const dns = {
      resolveTxt: (name: string) =>
        dnsUp
          ? Promise.resolve([["v=TLSRPTv1; rua=mailto:tlsrpt@partner.example"]])
          : Promise.reject(Object.assign(new Error(`queryTxt ESERVFAIL ${name}`), { code: "ESERVFAIL" })),
    } as unknown as Dns;
    const queued: string[][] = [];
    const d: SendDeps = {
      store,
      dns: () => dns,
      meta: () => ({
        organizationName: "Relay",
        contactInfo: "postmaster@relay.example",
        submitter: "relay.example",
        from: "tlsrpt-noreply@relay.example",
      }),
      enqueue: (_from, to) => {
        queued.push(to);
        return Promise.resolve(`Q${queued.length}`);
      },
    };
    const reporter = new TlsRptReporter(d);
    // 00:05 UTC: the resolver is failing for a minute
    await reporter.due(TODAY);
    const after1 = (await readdir(store.dir)).sort();
    // 01:05 UTC: the resolver answers again
    dnsUp = true;
    await reporter.due(TODAY);
    assert.deepEqual(await store.pendingDays(TODAY), [], "sent once the lookup answered");
    assert.deepEqual(
      queued,
      [["tlsrpt@partner.example"]],
      `the partner's report was never sent; files after the failed run: ${after1.join(", ")}; ` +
        `now: ${(await readdir(store.dir)).sort().join(", ")}`,
    );
  });
});
