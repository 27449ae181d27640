// Attack (message review, round 7), from the sender's side of the wire: "encrypt or defer" under
// S/MIME and OpenPGP promises that a message's content never leaves in clear. The relay found the
// body at the first empty line; a message whose header section has a line that is not a header
// field and no empty line after it (a script that writes "Subject: x\n<text>", what Postfix's
// cleanup and every receiver read as the start of the body) was sent with that text in the OUTER,
// unencrypted header section, and the receiving Postfix stored it as clear body text. The split is
// now the receiver's (relay/header-section.ts).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { makeLeaf, type Ca, type Leaf } from "../support/certs.js";
import { startPostfix, type Message, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let ca: Ca;
let bob: Leaf;
let ports: TestPorts;
let logs: LogCapture;
let postfix: PostfixPeer;

before(async () => {
  f = await relayFixture("smime-header-section", { caName: "Partner CA" });
  ({ ca, ports } = f);
  const mx = await makeLeaf(ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  bob = await makeLeaf(ca, { cn: "Bob", emails: ["bob@partner.test"], rsa: true });
  postfix = await startPostfix({
    domains: ["partner.test"],
    tls: "require",
    cert: mx,
    hostname: "mx.partner.test",
  });
  await f.configure(
    {
      policies: [
        {
          name: "partner/smime",
          domains: ["partner.test"],
          outbound: {
            tls: { mode: "required" },
            nextHop: { host: postfix.host, port: postfix.port },
            smime: { certificateFiles: ["secrets/partner-smime/certs.pem"], missingCertificate: "defer" },
          },
        },
      ],
    },
    { files: { "secrets/partner-smime/certs.pem": await readFile(bob.certFile) } },
  );
  ({ logs } = await f.start());
});

after(async () => {
  await f?.stop(() => postfix?.stop());
});

async function delivered(tag: string): Promise<Message | undefined> {
  try {
    return await waitFor(
      `${tag} delivered`,
      async () => (await postfix.messages()).find((m) => m.raw.includes(tag)),
      15_000,
    );
  } catch {
    return undefined;
  }
}

describe("attack: S/MIME encrypt-or-defer and a header section without its empty line", () => {
  for (const [name, data] of [
    [
      "a text line right after the header fields (no empty line)",
      "From: alice@local.test\r\nTo: bob@partner.test\r\nSubject: quarterly TAG\r\n" +
        "The secret number is 4711.\r\nRegards, Alice\r\n",
    ],
    [
      "a message that is body only (no header field at all)",
      "TAG: nothing\r\nThe secret number is 4711.\r\n",
    ],
  ] as const) {
    it(`${name}: nothing of the content leaves in clear`, async () => {
      const tag = `hl${Math.random().toString(16).slice(2, 8)}`;
      const r = await swaks({
        server: "127.0.0.1",
        port: ports.smtp,
        from: "alice@local.test",
        to: "bob@partner.test",
        data: data.replace("TAG", tag),
      });
      assert.equal(r.code, 0, r.transcript);
      const l = await waitFor("smime log", () =>
        logs.find((x) => x.event === "smime" && x.queueId === r.queueId),
      );
      assert.equal(l.result, "encrypted");
      const m = await delivered(tag);
      assert.ok(m, "the message reached the partner");
      // the promise: under an S/MIME policy the content is inside the CMS envelope, never in clear
      assert.doesNotMatch(m.raw, /secret number is 4711/, `stored at the partner:\n${m.raw.slice(0, 800)}`);
    });
  }
});
