// Attack (strings review): a recipient domain publishes a valid MTA-STS policy (mode testing) whose
// file, within the 64 KiB the relay reads, lists 3,000 mx patterns. The relay keeps the policy as
// the TLS-RPT policy of every attempt to the domain (policy strings and mx hosts: the list twice),
// and each attempt's log line and, with TLS-RPT on, each attempt's event appended to the day's file
// on the queue volume carry it: about 130 KB of the domain's text per delivery attempt, delivered
// or not (a bounce to a forged sender in that domain is one).
import assert from "node:assert/strict";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { submitPlain } from "../support/submit.js";

/** One log line, or one TLS-RPT event, with everything it says of an ordinary policy, with room. */
const LINE_MAX = 8 * 1024;
const PATTERNS = 3000;

let f: RelayFixture;
let dns: DnsServer;
let sts: MtaStsServer;
let mx: Sink;

before(async () => {
  f = await relayFixture("attack-sts-mx-list");
  const web = await makeLeaf(f.ca, { cn: "mta-sts.big.test", dnsNames: ["mta-sts.big.test"], name: "web" });
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  const mxs = ["mx.big.test", ...Array.from({ length: PATTERNS - 1 }, (_, i) => `m${i}.big.test`)];
  const policy = stsPolicy("testing", mxs);
  assert.ok(policy.length < 64 * 1024, `${policy.length}`);
  sts.setPolicy("big.test", policy);
  mx = await startSink();
  dns = await startDnsServer({
    "big.test": { MX: [{ preference: 10, exchange: "mx.big.test" }] },
    "mx.big.test": { A: ["127.0.0.1"] },
    "_mta-sts.big.test": { TXT: ["v=STSv1; id=1;"] },
    "mta-sts.big.test": { A: ["127.0.0.1"] },
  });
  await f.configure(
    {
      dns: { servers: [dns.address] },
      mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
      defaultOutbound: { tls: { mode: "mta-sts", caFile: "ca.crt" } },
      defaultOutboundPolicy: "mail/catch-all",
      tlsRpt: { organizationName: "Example Corp", contactInfo: "postmaster@local.test" },
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  await f.start({ mxPort: mx.port });
  await submitPlain(f.ports.smtp, {
    from: "a@local.test",
    to: ["b@big.test"],
    data: "From: a@local.test\r\nSubject: hi\r\n\r\nhello\r\n",
  });
  await waitFor("the delivery", () => mx.messages.find((m) => m.to.includes("b@big.test")));
  await waitFor("the attempt's log line", () => f.logs!.find((l) => l.event === "delivery"));
});

after(async () => {
  await f?.stop(() => Promise.all([mx?.close(), sts?.close(), dns?.stop()]));
});

describe("attack: an MTA-STS policy's long mx list in every attempt's records", () => {
  it("the attempt's log line is bounded", () => {
    const sizes = f.logs!.lines.map((l) => ({ event: l.event, size: JSON.stringify(l).length }));
    const longest = sizes.reduce((a, b) => (b.size > a.size ? b : a));
    assert.ok(
      longest.size <= LINE_MAX,
      `a log line (${String(longest.event)}) of ${longest.size} characters`,
    );
  });

  it("the attempt's TLS-RPT event on the queue volume is bounded", async () => {
    const dir = join(f.work, "queue", "tlsrpt");
    const files = await waitFor("the day's TLS-RPT file", async () => {
      const found = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith(".jsonl"));
      return found.length ? found : undefined;
    });
    let bytes = 0;
    for (const n of files) bytes += (await stat(join(dir, n))).size;
    assert.ok(bytes <= LINE_MAX, `the day's file holds ${bytes} bytes after one attempt`);
  });
});
