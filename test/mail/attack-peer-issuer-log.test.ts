// Attack (strings review): a next hop chooses its certificate's issuer as freely as its subject (its
// own CA's subject: as many OU attributes as fit in a chain of 100 KB). The session-18 review cut the
// subject in the delivery's log line (PEER_SUBJECT_MAX, attack-peer-subject-log) and the issuer in
// the partner certificate book (PARTNER_ISSUER_MAX), but the attempt's log line carries the whole
// session, the issuer in it as read: about 50 KB of the next hop's text in every attempt's line to
// that host (a stranger's own MX, reached by the bounces of mail forged as from its domain).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { makeLeaf, type Ca } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { submitPlain } from "../support/submit.js";

const run = promisify(execFile);
/** One log line with a bounded issuer and subject, and everything else it says. */
const LINE_MAX = 8 * 1024;

let f: RelayFixture;
let sink: Sink;

/** A CA whose subject (its leaves' issuer) is ~50 KB: 1,400 OU attributes. */
async function bigIssuerCa(dir: string): Promise<Ca> {
  const keyFile = join(dir, "big.key");
  const certFile = join(dir, "big.crt");
  await run("openssl", [
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    keyFile,
  ]);
  const subj = `/CN=Big Issuer CA${"/OU=a unit of the issuer, chosen by it".repeat(1400)}`;
  await run("openssl", [
    "req", "-x509", "-new", "-key", keyFile, "-out", certFile, "-days", "30", "-subj", subj,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]); // prettier-ignore
  return { name: "big", certFile, keyFile, dir };
}

before(async () => {
  f = await relayFixture("attack-peer-issuer-log");
  const ca = await bigIssuerCa(f.ca.dir);
  const leaf = await makeLeaf(ca, { cn: "mx.stranger.test", dnsNames: ["mx.stranger.test"] });
  sink = await startSink({
    tls: { cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) },
  });
  await f.configure({
    policies: [
      {
        name: "t/stranger",
        domains: ["stranger.test"],
        outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: sink.port } },
      },
    ],
  });
  await f.start();
  await submitPlain(f.ports.smtp, {
    from: "a@local.test",
    to: ["b@stranger.test"],
    data: "From: a@local.test\r\nSubject: hi\r\n\r\nhello\r\n",
  });
  await waitFor("the delivery", () =>
    f.logs!.find((l) => l.event === "delivery" && l.result === "delivered"),
  );
});

after(async () => {
  await f?.stop(() => sink?.close());
});

describe("attack: a next hop's certificate issuer in every attempt's log line", () => {
  it("the attempt's line carries a bounded issuer", () => {
    const line = f.logs!.find((l) => l.event === "delivery" && l.result === "delivered")!;
    const session = line.session as { tlsVersion?: string; peerIssuer?: string } | undefined;
    assert.ok(session?.tlsVersion, "the session was not encrypted: the test proves nothing");
    const size = JSON.stringify(line).length;
    assert.ok(
      size <= LINE_MAX,
      `the attempt's log line is ${size} characters, its issuer ${session.peerIssuer?.length ?? 0}`,
    );
  });
});
