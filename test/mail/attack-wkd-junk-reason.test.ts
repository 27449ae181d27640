// Attack (strings review): a recipient domain's Web Key Directory (openpgpkey.<domain>, the
// domain's to run) answers the relay's key lookup with 256 KiB (its limit, wkd.ts MAX_KEY_BYTES) of
// armored blocks that do not parse. The lookup's failure said why block by block ("refused: key block
// does not parse: <openpgp.js's message>; ..." 3,449 times): about 400 KB of the failure's message,
// kept as it was in the OpenPGP log record and in each recipient's delivery log line, at every
// attempt, for every recipient of the domain. (The envelope and /status keep it bounded already.)
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { wkdLocation } from "../../relay/outbound/wkd.js";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { submitPlain } from "../support/submit.js";
import { startWkdServer, type WkdServer } from "../support/wkd-server.js";

const TOKEN = "admin-token-0123456789abcdef";
/** What the relay keeps of a reply it did not write (reply-text.ts REPLY_TEXT_MAX), with room. */
const KEPT_MAX = 1024;
/** One log line with such a reason (or two) and everything else it says. */
const LINE_MAX = 8 * 1024;
const RCPT = "bob@junk.test";

let f: RelayFixture;
let dns: DnsServer;
let wkd: WkdServer;
let sink: Sink;

before(async () => {
  f = await relayFixture("attack-wkd-junk-reason");
  const web = await makeLeaf(f.ca, { cn: "openpgpkey.junk.test", dnsNames: ["openpgpkey.junk.test"] });
  wkd = await startWkdServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  dns = await startDnsServer({ "openpgpkey.junk.test": { A: ["127.0.0.1"] } });
  sink = await startSink();
  const block = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n";
  const loc = wkdLocation(RCPT)!;
  wkd.set(loc.advanced.host, loc.advanced.path, {
    key: Buffer.from(block.repeat(Math.floor((256 * 1024) / block.length))),
  });
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      queue: { dir: `${f.work}/queue`, retry: { initial: 600, max: 600 }, workers: 8 },
      dns: { servers: [dns.address] },
      wkd: { caFile: "wkd/ca.crt", httpsPort: wkd.port },
      policies: [
        {
          name: "t/junk",
          domains: ["junk.test"],
          outbound: {
            tls: { mode: "opportunistic" },
            nextHop: { host: "127.0.0.1", port: sink.port },
            openpgp: { webKeyDirectory: true, missingKey: "defer" },
          },
        },
      ],
    },
    {
      files: {
        "secrets/admin/token": `${TOKEN}\n`,
        "wkd/ca.crt": await readFile(f.ca.certFile),
      },
    },
  );
  await f.start();
  await submitPlain(f.ports.smtp, {
    from: "a@local.test",
    to: [RCPT],
    data: "From: a@local.test\r\nSubject: hi\r\n\r\nhello\r\n",
  });
  await waitFor("the recipient's deferral", () =>
    f.logs!.find((l) => l.event === "recipient" && l.status === "deferred"),
  );
});

after(async () => {
  await f?.stop(() => Promise.all([dns?.stop(), wkd?.close(), sink?.close()]));
});

describe("attack: a Web Key Directory's junk in the relay's log and /status", () => {
  it("the key lookup failed, and said so", () => {
    const line = f.logs!.find((l) => l.event === "recipient" && l.status === "deferred")!;
    assert.equal(line.code, "OPENPGP_KEY_LOOKUP_FAILED");
  });

  it("no log line carries more than a bounded line of the failure", () => {
    const sizes = f.logs!.lines.map((l) => ({ event: l.event, size: JSON.stringify(l).length }));
    const longest = sizes.reduce((a, b) => (b.size > a.size ? b : a));
    assert.ok(
      longest.size <= LINE_MAX,
      `a log line (${String(longest.event)}) of ${longest.size} characters`,
    );
  });

  it("/status keeps a bounded lastDeferral", async () => {
    const res = await fetch(`http://127.0.0.1:${f.ports.admin}/status`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = (await res.json()) as { policies?: Record<string, { lastDeferral?: { reason?: string } }> };
    const reason = body.policies?.["t/junk"]?.lastDeferral?.reason ?? "";
    assert.ok(
      reason.length <= KEPT_MAX,
      `the policy's lastDeferral.reason holds ${reason.length} characters`,
    );
  });
});
