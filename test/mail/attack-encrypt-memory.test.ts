// Attack (S/MIME and OpenPGP review, session 18): encrypting a message holds it many times over: its
// text as a string, the MIME entity, the CMS or OpenPGP structure, the base64 or armored output and
// their line arrays. Measured (peak RSS added by one message): S/MIME 16 MiB -> +258 MiB, 32 MiB ->
// +476 MiB; OpenPGP 16 MiB -> +375 MiB, 32 MiB -> +661 MiB. The delivery memory budget
// (queue.memoryBytes, a quarter of the pod's memory limit) counted 4x, and an attempt costing more
// than the whole budget was admitted alone: one 32 MiB attachment to an encrypting partner (the
// default size limit is 50 MiB) took a 512 MiB pod past its limit, and the kernel killed it; the
// message, still queued, did it again at every restart. An attempt whose encryption would hold more
// than half of the pod's memory (twice the budget) is now not started: its recipients are deferred
// with a reason that names the fix, never sent in clear, never crashing the relay.
// Here the budget is made small (4 MiB) so that a 1 MiB message stands for the 32 MiB one.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { sendMessage } from "../support/queue-volume.js";
import { startSink, type Sink } from "../support/sink.js";
import { submitPlain } from "../support/submit.js";

let f: RelayFixture;
let partner: Sink;
let local: Sink;

before(async () => {
  f = await relayFixture("attack-encrypt-memory");
  partner = await startSink();
  local = await startSink();
  const bob = await makeLeaf(f.ca, { cn: "bob", emails: ["bob@partner.test"], rsa: true });
  await f.configure(
    {
      inbound: {
        require: "none",
        relayFrom: ["127.0.0.1"],
        localDomains: ["local.test"],
        internalNextHop: { host: "127.0.0.1", port: local.port },
      },
      queue: {
        dir: `${f.work}/queue`,
        retry: { initial: 0.2, max: 1 },
        workers: 8,
        memoryBytes: 4 * 1024 * 1024,
      },
      policies: [
        {
          name: "partner/smime",
          domains: ["partner.test"],
          outbound: {
            tls: { mode: "opportunistic" },
            nextHop: { host: "127.0.0.1", port: partner.port },
            smime: { certificateFiles: ["secrets/partner-smime/certs.pem"] },
          },
        },
      ],
    },
    { files: { "secrets/partner-smime/certs.pem": await readFile(bob.certFile) } },
  );
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([partner?.close(), local?.close()]));
});

const submit = (to: string, body: string): Promise<string> =>
  submitPlain(f.ports.smtp, {
    from: "alice@local.test",
    to: [to],
    data: `From: <alice@local.test>\r\nTo: <${to}>\r\nSubject: large\r\n\r\n${body}`,
  });

describe("attack: encrypting one large message takes the pod's memory", () => {
  it("a message whose encryption would hold more than half the pod's memory is deferred, not encrypted", async () => {
    const line = `${"x".repeat(76)}\r\n`;
    const id = await submit("bob@partner.test", line.repeat(Math.ceil((1024 * 1024) / line.length)));
    const first = await waitFor(
      "the first attempt's recipient line",
      () =>
        f.logs!.lines.find((l) => l.queueId === id && l.event === "recipient") as
          { status?: string; response?: string; code?: string } | undefined,
      60_000,
    );
    assert.equal(first.status, "deferred", JSON.stringify(first));
    assert.match(first.response ?? "", /memory/i, JSON.stringify(first));
    assert.equal(partner.messages.length, 0, "nothing sent to the partner");
  });

  it("a small message to the same partner is encrypted and sent", async () => {
    await submit("bob@partner.test", "small\r\n");
    await waitFor(
      "the small message at the partner",
      () => (partner.messages.length ? true : undefined),
      60_000,
    );
    assert.match(partner.messages[0]!.data.toString("latin1"), /application\/pkcs7-mime/i);
  });

  it("a client that declares the size (SIZE=) is told at RCPT for that recipient; the others go on", async () => {
    const size = 1024 * 1024;
    const refused = await sendMessage(f.ports.smtp, "bob@partner.test", "declared", {
      size,
      from: "alice@local.test",
    });
    assert.match(refused, /^552 5\.3\.4 Message too large to encrypt for partner\.test/, refused);
    const other = await sendMessage(f.ports.smtp, ["bob@partner.test", "carol@local.test"], "mixed", {
      size,
      from: "alice@local.test",
    });
    assert.match(other, /^250 /, "the local recipient's copy is queued");
  });
});
