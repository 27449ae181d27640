// Issue 22 finding 5: TLS-RPT must not be a spam cannon. A domain's _smtp._tls record is written
// by whoever controls that domain: its rua addresses are validated after percent-decoding (no
// header injection into the report), capped, and each target is tried a bounded number of times,
// once per run, with one run at a time.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  buildReport,
  MAX_FAILURE_DETAILS,
  MAX_REPORT_ATTEMPTS,
  MAX_REPORTS_PER_RECEIVER_RUN,
  MAX_RUA_TARGETS,
  MAX_TALLY_ENTRIES,
  parseTlsRptTxt,
  reportMessage,
  sendDay,
  TlsRptReporter,
  TlsRptStore,
  type SendDeps,
} from "../../relay/outbound/tlsrpt.js";
import { DestinationFilter } from "../../relay/net/address-class.js";
import type { Dns } from "../../relay/outbound/mx.js";
import { writeDay } from "../support/tlsrpt-day.js";

const DAY = "2026-01-01";
const INJECT =
  "mailto:victim%40target.example%3E%0D%0ASubject%3A%20Cheap%20pills%0D%0A%0D%0Abuy%20now%3Cx@attacker.example";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-bounds-"));
});
after(() => rm(dir, { recursive: true, force: true }));

function dnsWith(txt: string): Dns {
  return { resolveTxt: () => Promise.resolve([[txt]]) } as unknown as Dns;
}

async function storeWithEvents(name: string, domain = "attacker.example"): Promise<TlsRptStore> {
  const store = new TlsRptStore(join(dir, name));
  await store.record({
    t: Date.parse(`${DAY}T12:00:00Z`),
    domain,
    policy: { type: "no-policy-found", strings: [] },
    result: "success",
  });
  return store;
}

function deps(store: TlsRptStore, txt: string, o: Partial<SendDeps> = {}) {
  const queued: { to: string[]; msg: string }[] = [];
  const posted: string[] = [];
  const d: SendDeps = {
    store,
    dns: () => dnsWith(txt),
    meta: () => ({
      organizationName: "Relay",
      contactInfo: "postmaster@relay.example",
      submitter: "relay.example",
      from: "tlsrpt-noreply@relay.example",
    }),
    enqueue: (_from, to, message) => {
      queued.push({ to, msg: message.toString("latin1") });
      return Promise.resolve(`Q${queued.length}`);
    },
    post: (url) => {
      posted.push(url);
      return Promise.resolve(500);
    },
    ...o,
  };
  return { d, queued, posted };
}

describe("issue 22 finding 5: TLS-RPT spam cannon", () => {
  it("a percent-encoded rua that decodes to a header injection is refused; a plain one decodes", () => {
    assert.equal(parseTlsRptTxt([[`v=TLSRPTv1; rua=${INJECT}`]]), undefined);
    assert.deepEqual(parseTlsRptTxt([["v=TLSRPTv1; rua=mailto:tls%2Brpt@x.example"]]), [
      "mailto:tls+rpt@x.example",
    ]);
    assert.equal(
      parseTlsRptTxt([["v=TLSRPTv1; rua=mailto:a%0d%0ab@x.example,https://u:p@r.example/"]]),
      undefined,
    );
  });

  it(`a policy's report lists at most ${MAX_FAILURE_DETAILS} failure details; the rest count in its summary`, () => {
    const n = MAX_FAILURE_DETAILS + 500;
    const events = Array.from({ length: n }, (_, i) => ({
      t: Date.parse(`${DAY}T12:00:00Z`) + i,
      domain: "attacker.example",
      policy: { type: "no-policy-found" as const, strings: [] },
      result: "starttls-not-supported" as const,
      // each failure at another MX host: a domain's owner chooses its MX names
      mx: `mx${i}.attacker.example`,
      ip: "192.0.2.1",
    }));
    const meta = { organizationName: "o", contactInfo: "c", submitter: "s", from: "f@s" };
    const p = buildReport(DAY, "attacker.example", events, meta).policies[0]!;
    assert.equal(p.summary["total-failure-session-count"], n);
    assert.equal(p["failure-details"]?.length, MAX_FAILURE_DETAILS);
  });

  it(`sessions beyond the day's ${MAX_TALLY_ENTRIES} tally entries are left out and said so, once a run`, async () => {
    // a domain and its policy take two entries: the domains past half the bound are left out of the
    // day's reports (session 18), which the administrator learns from the run, not from a partner
    const domains = MAX_TALLY_ENTRIES / 2 + 7;
    await writeDay(join(dir, "omitted"), DAY, domains, (i, t0) => ({
      t: t0,
      domain: `d${i}.example`,
      policy: { type: "no-policy-found", strings: [] },
      result: "success",
    }));
    const omitted: [string, number][] = [];
    const { d } = deps(new TlsRptStore(join(dir, "omitted")), "v=spf1", {
      onOmitted: (day, sessions) => omitted.push([day, sessions]),
    });
    await sendDay(DAY, d);
    assert.deepEqual(omitted, [[DAY, 7]]);
  });

  it(`at most ${MAX_RUA_TARGETS} rua targets, duplicates once`, () => {
    const many = Array.from({ length: 50 }, (_, i) => `mailto:r${i}@victims.example`);
    const got = parseTlsRptTxt([[`v=TLSRPTv1; rua=mailto:r0@victims.example,${many.join(",")}`]]);
    assert.equal(got?.length, MAX_RUA_TARGETS);
    assert.equal(new Set(got).size, MAX_RUA_TARGETS);
  });

  it("the report mail written for a crafted record carries no injected header", async () => {
    const store = await storeWithEvents("inject");
    const { d, queued } = deps(store, `v=TLSRPTv1; rua=${INJECT},mailto:ok@attacker.example`);
    await sendDay(DAY, d);
    for (const q of queued) {
      assert.deepEqual(q.to, ["ok@attacker.example"]);
      const head = q.msg.split("\r\n\r\n")[0]!;
      assert.doesNotMatch(head, /Cheap pills|victim@target/i);
    }
    assert.throws(() =>
      reportMessage({
        from: "a@relay.example",
        to: ["x@y.example>\r\nBcc: z@w.example"],
        day: DAY,
        domain: "d.example",
        submitter: "relay.example",
        gz: Buffer.alloc(0),
        now: new Date(),
      }),
    );
    const msg = reportMessage({
      from: "a@relay.example",
      to: ["x@y.example"],
      day: DAY,
      domain: "d.example\r\nBcc: z@w.example",
      submitter: "relay.example",
      gz: Buffer.alloc(0),
      now: new Date(),
    }).toString("latin1");
    assert.doesNotMatch(msg, /^Bcc:/m);
  });

  it("one failing target: the others are not sent again, the failing one is tried a bounded number of times", async () => {
    const store = await storeWithEvents("retry");
    const { d, queued, posted } = deps(
      store,
      "v=TLSRPTv1; rua=mailto:ok@attacker.example,https://reports.attacker.example/v1",
    );
    const r = new TlsRptReporter(d);
    for (let i = 0; i < MAX_REPORT_ATTEMPTS + 3; i++) await r.due("2026-01-02");
    assert.equal(queued.length, 1, "the mailto target got its report once");
    assert.equal(posted.length, MAX_REPORT_ATTEMPTS, "the failing https target is given up");
    assert.deepEqual(await store.pendingDays("2026-01-02"), [], "the day is done");
  });

  it(`issue 20 item 5: at most ${MAX_REPORTS_PER_RECEIVER_RUN} reports a run to one receiving domain, the rest at the next run, none lost`, async () => {
    // whoever owns many domains the relay mails points every rua at one victim
    const store = new TlsRptStore(join(dir, "receiver"));
    const n = MAX_REPORTS_PER_RECEIVER_RUN + 50;
    for (let i = 0; i < n; i++)
      await store.record({
        t: Date.parse(`${DAY}T12:00:00Z`),
        domain: `d${i}.attacker.example`,
        policy: { type: "no-policy-found", strings: [] },
        result: "success",
      });
    const { d, queued } = deps(store, "v=TLSRPTv1; rua=mailto:inbox@Victim.example");
    const r = new TlsRptReporter(d);
    const first = await r.day(DAY);
    assert.equal(queued.length, MAX_REPORTS_PER_RECEIVER_RUN);
    assert.equal(first.filter((x) => x.result === "deferred").length, 50);
    assert.deepEqual(await store.pendingDays("2026-01-02"), [DAY], "the day is not done");
    await r.due("2026-01-02");
    assert.equal(queued.length, n, "each domain's report once");
    assert.equal(new Set(queued.map((q) => /TLS-Report-Domain: (\S+)/.exec(q.msg)?.[1])).size, n);
    assert.deepEqual(await store.pendingDays("2026-01-02"), [], "the day is done");
  });

  it("issue 20 item 5: https: rua aimed at loopback, the apiserver's ClusterIP or the metadata service is not POSTed to", async () => {
    const store = await storeWithEvents("ssrf");
    const { d } = deps(
      store,
      "v=TLSRPTv1; rua=https://127.0.0.1:6443/r,https://10.96.0.1/r,https://169.254.169.254/latest,https://[::1]/r,https://[fd00::1]/r",
      { post: undefined, destinations: () => new DestinationFilter([]) },
    );
    const sent = await sendDay(DAY, d);
    assert.equal(sent.length, 5);
    for (const r of sent) {
      assert.equal(r.result, "failed", r.rua);
      assert.match(r.detail ?? "", /not reported to/, r.rua);
    }
  });

  it("overlapping ticks send each report once", async () => {
    const store = await storeWithEvents("overlap");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { d, queued } = deps(store, "v=TLSRPTv1; rua=mailto:ok@attacker.example");
    const slow: SendDeps = {
      ...d,
      enqueue: async (from, to, m) => {
        await gate;
        return d.enqueue(from, to, m);
      },
    };
    const r = new TlsRptReporter(slow);
    const runs = [r.due("2026-01-02"), r.due("2026-01-02"), r.day(DAY)];
    release();
    await Promise.all(runs);
    assert.equal(queued.length, 1);
  });
});
