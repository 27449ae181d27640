// Attack (strings review): a next hop answers the relay's connection with a long multi-line 554
// greeting (60 KB, within the 64 KiB the relay reads of a reply: reply-text.ts REPLY_READ_MAX). The
// reply a next hop gives to RCPT or DATA is cut to one line of 512 characters wherever the relay
// keeps it (reply-text.ts), but a refusal before the transaction (greeting, EHLO, STARTTLS, AUTH)
// came back as nodemailer's error message, which holds the reply twice ("Invalid greeting.
// response=<reply>: <reply>"), and was kept as it was: in the attempt's log line (120 KB a try,
// line breaks and all) and as the policy's lastDeferral.reason in /status, outside the byte budget of
// the per-policy figures (relay/status-figures.ts). A tenant with a few dozen policies whose next
// hops it runs (or a partner's servers, one policy each) take /status past the 4 MiB the
// operator's probe reads (operator/controllers/relay-probe.ts): the pod reads as not answering, and
// the operator no longer knows which configuration the relay enforces, for every tenant's policies
// (the consequence attack-status-figures-budget closed for the figures).
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { httpStatusProbe } from "../../operator/controllers/relay-probe.js";
import type { PodObject } from "../../operator/objects.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { submitPlain } from "../support/submit.js";

const TOKEN = "admin-token-0123456789abcdef";
const POLICIES = 40;
/** What the relay keeps of a reply it did not write (reply-text.ts REPLY_TEXT_MAX), with room. */
const KEPT_MAX = 1024;
/** One log line with such a reason (or two) and everything else it says. */
const LINE_MAX = 8 * 1024;

let f: RelayFixture;
let greeter: net.Server;
const sockets = new Set<net.Socket>();

/** A next hop whose greeting is a ~60 KB multi-line 554 (lines of 1000 octets). */
async function startGreeter(): Promise<number> {
  const port = await freePort("127.0.0.1");
  const line = `554-5.7.1 ${"x".repeat(988)}\r\n`;
  const greeting = line.repeat(60) + "554 5.7.1 go away\r\n";
  greeter = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    s.write(greeting);
  });
  await new Promise<void>((resolve) => greeter.listen(port, "127.0.0.1", resolve));
  return port;
}

before(async () => {
  f = await relayFixture("attack-greeting-reason");
  const port = await startGreeter();
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      // one try each is enough: no retries while the test reads
      queue: { dir: `${f.work}/queue`, retry: { initial: 600, max: 600 }, workers: 8 },
      policies: Array.from({ length: POLICIES }, (_, i) => ({
        name: `tenant/p${i}`,
        domains: [`p${i}.tenant.test`],
        outbound: { tls: { mode: "opportunistic" as const }, nextHop: { host: "127.0.0.1", port } },
      })),
    },
    { files: { "secrets/admin/token": `${TOKEN}\n` } },
  );
  await f.start();
  await submitPlain(f.ports.smtp, {
    from: "a@local.test",
    to: Array.from({ length: POLICIES }, (_, i) => `b@p${i}.tenant.test`),
    data: "From: a@local.test\r\nSubject: hi\r\n\r\nhello\r\n",
  });
  // every policy's next hop answered once
  await waitFor("a deferral of every policy", () => {
    const n = f.logs!.lines.filter((l) => l.event === "delivery" && l.result === "deferred").length;
    return n >= POLICIES ? n : undefined;
  });
});

after(async () => {
  await f?.stop(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        greeter.close(() => resolve());
      }),
  );
});

describe("attack: a next hop's long greeting in the relay's log and /status", () => {
  it("no log line carries more than a bounded line of the refusal", () => {
    // the attempt's line (event delivery) and the recipient's (its response)
    const longest = Math.max(...f.logs!.lines.map((l) => JSON.stringify(l).length));
    assert.ok(longest <= LINE_MAX, `a log line of ${longest} characters carries the next hop's greeting`);
    const attempts = f.logs!.lines.filter((l) => l.event === "delivery" && l.result === "deferred");
    assert.ok(
      attempts.every((l) => typeof l.reason !== "string" || !/[\r\n]/.test(l.reason)),
      "the reason keeps the reply's line breaks",
    );
  });

  it("/status keeps a bounded lastDeferral, and the operator's probe still reads it", async () => {
    const res = await fetch(`http://127.0.0.1:${f.ports.admin}/status`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const text = await res.text();
    const body = JSON.parse(text) as {
      policies?: Record<string, { lastDeferral?: { reason?: string } }>;
    };
    const pod = { status: { podIP: "127.0.0.1" } } as unknown as PodObject;
    const report = await httpStatusProbe(pod, f.ports.admin, TOKEN);
    assert.ok(report, `the operator's probe read no answer from the pod (/status is ${text.length} bytes)`);
    const reasons = Object.values(body.policies ?? {}).map((p) => p.lastDeferral?.reason ?? "");
    assert.equal(reasons.length, POLICIES);
    const longest = Math.max(...reasons.map((r) => r.length));
    assert.ok(longest <= KEPT_MAX, `a policy's lastDeferral.reason holds ${longest} characters`);
  });
});
