// Issue 22.3: a next hop's reply text is the remote side's to choose. A hostile next hop answering
// every RCPT with nearly a megabyte (nodemailer accepts up to 1 MB per reply) used to have each reply
// stored per recipient and copied twice into the DSN: 50 recipients gave a 101 MB DSN and +467 MB
// RSS, and since the envelope with those errors is saved before the DSN is built, a crash while
// building it repeated at every restart. Now a reply is read up to 64 KiB (longer: the session is
// given up, a deferral), the reply text kept and reported is bounded (512 characters) and cleaned of
// control characters, the DSN is bounded, and the relay's RSS stays flat.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { join } from "node:path";
import { readSpool } from "../../relay/queue/spool.js";
import { startHostileMta, hugeReply, type HostileMta } from "../support/hostile-mta.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { submitPlain } from "../support/submit.js";

let f: RelayFixture;
let localSink: Sink;
let nearLimit: HostileMta;
let huge: HostileMta;
let escapes: HostileMta;

const RECIPIENTS = 50;

const submit = (from: string, to: string[], tag: string): Promise<string> =>
  submitPlain(f.ports.smtp, {
    from,
    to,
    data: `From: <${from}>\r\nSubject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nhello\r\n`,
  });

const policy = (name: string, mta: HostileMta) => ({
  name: `p/${name}`,
  domains: [`${name}.test`],
  outbound: { tls: { mode: "opportunistic" as const }, nextHop: { host: mta.host, port: mta.port } },
});

before(async () => {
  f = await relayFixture("relay-replies");
  localSink = await startSink();
  // with a terminal escape sequence in the last line of each
  const last = "5.1.1 \x1b[2J\x1b]0;owned\x07 no";
  nearLimit = await startHostileMta({ rcptReply: hugeReply(550, 60 * 1024, last) });
  huge = await startHostileMta({ rcptReply: hugeReply(550, 1000 * 1000 - 2000, last) });
  escapes = await startHostileMta({
    rcptReply: Buffer.from("550 5.1.1 \x1b[31mred\x1b[0m\x9b2J user\x00 unknown\r\n", "latin1"),
  });
  await f.configure({
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: localSink.port },
    },
    policies: [policy("near", nearLimit), policy("huge", huge), policy("escapes", escapes)],
  });
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([localSink, nearLimit, huge, escapes].map((s) => s?.close())));
});

const dsnFor = (id: string) =>
  waitFor(
    "DSN",
    () => localSink.messages.find((m) => m.data.toString("latin1").includes(`X-Queue-ID: ${id}`)),
    60_000,
  );

/** Runs `fn` and returns the relay process's peak RSS growth over it, in MiB. */
async function rssGrowth(what: string, fn: () => Promise<void>): Promise<number> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    await fn();
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  const growth = (peak - base) / 2 ** 20;
  console.log(`RSS growth, ${what}: ${growth.toFixed(1)} MiB`);
  return growth;
}

function assertBoundedLogs(id: string): void {
  const lines = f.logs!.lines.filter((l) => l.queueId === id);
  assert.ok(lines.length > 0);
  for (const l of lines) {
    const n = JSON.stringify(l).length;
    assert.ok(n < 16 * 1024, `log line of ${n} characters`);
  }
}

describe("issue 22.3: remote replies are bounded", () => {
  it(
    "50 recipients refused with 60 KiB replies: a bounded DSN, bounded log lines, flat RSS",
    { timeout: 120_000 },
    async () => {
      const to = Array.from({ length: RECIPIENTS }, (_, i) => `user${i}@near.test`);
      let id = "";
      const growth = await rssGrowth(`${RECIPIENTS} x 60 KiB replies`, async () => {
        id = await submit("alice@local.test", to, "near-limit");
        const dsn = await dsnFor(id);
        const text = dsn.data.toString("latin1");
        // every recipient is reported, each with a short diagnostic
        for (const a of to) assert.ok(text.includes(`Final-Recipient: rfc822; ${a}\r\n`), a);
        assert.ok(dsn.data.length < 128 * 1024, `DSN of ${dsn.data.length} bytes`);
        for (const m of text.matchAll(/^Diagnostic-Code: smtp; (.*)$/gm))
          assert.ok(m[1]!.length <= 600, `diagnostic of ${m[1]!.length} chars`);
        assert.ok(!text.includes("\x1b"), "no terminal escape from the remote reply");
      });
      assertBoundedLogs(id);
      assert.ok(growth < 64, `RSS grew by ${growth.toFixed(1)} MiB`);
    },
  );

  it(
    "50 recipients refused with ~1 MB replies: the session is given up, nothing large is kept, flat RSS",
    { timeout: 120_000 },
    async () => {
      const to = Array.from({ length: RECIPIENTS }, (_, i) => `user${i}@huge.test`);
      let id = "";
      const growth = await rssGrowth(`${RECIPIENTS} x ~1 MB replies`, async () => {
        id = await submit("alice@local.test", to, "huge");
        const env = await waitFor(
          "an attempt recorded",
          async () => {
            const m = (await readSpool(join(f.work, "queue"))).find((x) => x.env.id === id);
            return m && m.env.attempts >= 1 && m.env.recipients.every((r) => r.lastError) ? m.env : undefined;
          },
          60_000,
        );
        for (const r of env.recipients) {
          assert.ok(
            r.lastError!.message.length <= 512,
            `stored reply of ${r.lastError!.message.length} characters`,
          );
          if (r.state === "pending") continue;
          assert.fail(`${r.address} is ${r.state}: a reply too large to read is a deferral`);
        }
      });
      assertBoundedLogs(id);
      // no large DSN went out either
      for (const m of localSink.messages)
        assert.ok(m.data.length < 128 * 1024, `a message of ${m.data.length} bytes`);
      assert.ok(growth < 64, `RSS grew by ${growth.toFixed(1)} MiB (was +424 MiB)`);
    },
  );

  it("control characters of a reply never reach the stored state or the DSN", async () => {
    const id = await submit("alice@local.test", ["x@escapes.test"], "escapes");
    const dsn = await dsnFor(id);
    const text = dsn.data.toString("latin1");
    assert.match(text, /Diagnostic-Code: smtp; 550 5\.1\.1 \[31mred \[0m 2J user unknown\r\n/);
    // eslint-disable-next-line no-control-regex -- control characters are what it looks for
    assert.doesNotMatch(text, /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]/, "no control characters");
  });
});
