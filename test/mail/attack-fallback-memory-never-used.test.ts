// Attack review of TOO_LARGE_FOR_MEMORY (session 18): a route group that would hold more than half
// of the pod's memory is not started (relay/queue/memory-budget.ts tooLargeToHold). Its hold counted
// a policy's tlsFallback of action smime as if every message were encrypted: 16x its size. But the
// fallback encrypts only when the partner's TLS requirement cannot be met on any of its hops
// (relay/outbound/fallback.ts), which for a partner that offers verified TLS is never. With the
// defaults (512Mi pod, maxMessageSize 50Mi), every message over 16 MiB to such a partner was
// deferred at every attempt and bounced at queue.maxAge, though it would have gone out over TLS as it
// did before, and as a smaller one does. The check belongs where the fallback actually encrypts.
// Here the budget is made small (4 MiB) so that a 1 MiB message stands for a 20 MiB one.
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
let partner: Sink; // verified TLS: the fallback never applies
let clear: Sink; // no STARTTLS: the fallback encrypts
let local: Sink;

before(async () => {
  f = await relayFixture("attack-fallback-memory", { caName: "Partner CA" });
  const mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  const bob = await makeLeaf(f.ca, { cn: "bob", emails: ["bob@partner.test", "bob@clear.test"], rsa: true });
  partner = await startSink({ tls: { cert: await readFile(mx.certFile), key: await readFile(mx.keyFile) } });
  clear = await startSink();
  local = await startSink();
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
          name: "partner/verify",
          domains: ["partner.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.partner.test"] },
            nextHop: { host: "127.0.0.1", port: partner.port },
            tlsFallback: {
              action: "smime",
              smime: { certificateFiles: ["secrets/partner-smime/certs.pem"] },
            },
          },
        },
        {
          name: "partner/clear",
          domains: ["clear.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.partner.test"] },
            nextHop: { host: "127.0.0.1", port: clear.port },
            tlsFallback: {
              action: "smime",
              session: "opportunistic",
              smime: { certificateFiles: ["secrets/partner-smime/certs.pem"] },
            },
          },
        },
      ],
    },
    {
      files: {
        "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile),
        "secrets/partner-smime/certs.pem": await readFile(bob.certFile),
      },
    },
  );
  await f.start();
});

after(async () => {
  await f?.stop(() => Promise.all([partner?.close(), clear?.close(), local?.close()]));
});

const submit = (to: string, body: string): Promise<string> =>
  submitPlain(f.ports.smtp, {
    from: "alice@local.test",
    to: [to],
    data: `From: <alice@local.test>\r\nTo: <${to}>\r\nSubject: large\r\n\r\n${body}`,
  });

const large = (): string => {
  const line = `${"x".repeat(76)}\r\n`;
  return line.repeat(Math.ceil((1024 * 1024) / line.length));
};

const firstLine = (id: string) =>
  waitFor(
    "the first attempt's recipient line",
    () =>
      f.logs!.lines.find((l) => l.queueId === id && l.event === "recipient") as
        { status?: string; code?: string; response?: string } | undefined,
    60_000,
  );

describe("attack: a TLS fallback that never applies makes large mail wait for memory", () => {
  it("a large message to a partner with verified TLS and an smime fallback goes out over TLS", async () => {
    const first = await firstLine(await submit("bob@partner.test", large()));
    assert.equal(first.status, "sent", JSON.stringify(first));
    assert.equal(partner.messages.length, 1, "delivered once, over TLS");
    assert.doesNotMatch(partner.messages[0]!.data.toString("latin1"), /application\/pkcs7-mime/i);
  });

  it("where the fallback would encrypt it, the same message is deferred for memory, never sent", async () => {
    const first = await firstLine(await submit("bob@clear.test", large()));
    assert.equal(first.status, "deferred", JSON.stringify(first));
    assert.equal(first.code, "TOO_LARGE_FOR_MEMORY", JSON.stringify(first));
    assert.equal(clear.messages.length, 0, "nothing sent, in clear or encrypted");
  });

  it("a client declaring that size (SIZE=) to the partner with verified TLS is not refused at RCPT", async () => {
    const reply = await sendMessage(f.ports.smtp, "bob@partner.test", "declared", {
      size: 1024 * 1024,
      from: "alice@local.test",
    });
    assert.match(reply, /^250 /, reply);
  });
});
