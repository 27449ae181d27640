// Encryption receipts end to end (issue 20 item 1): swaks -> relay -> a real Postfix partner over
// verified TLS, one domain also S/MIME-encrypted (AES-256-GCM). `sealpost receipts export` over the
// admin port gives receipts whose every fact is checked against OpenSSL's view of the certificates;
// `sealpost receipts verify` accepts them and names the first bad line when one is changed, removed
// or reordered. A relay killed (-9) while appending leaves a log that verifies up to its last whole
// entry; the relay started again continues the chain.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ReceiptEntry, ReceiptExportHeader, type Receipt } from "../../relay/contract/receipt.js";
import { runReceiptsCli } from "../../relay/receipts/receipts-cli.js";
import { makeLeaf, type Leaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor, type Managed } from "../support/process.js";
import { relayFixture, startRelayProcess, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

const run = promisify(execFile);
const TOKEN = "receipts-admin-token";

let f: RelayFixture;
let peer: PostfixPeer;
let mx: Leaf;
let carol: Leaf;

/** `openssl x509 -fingerprint -sha256` of a certificate, and the SHA-256 of its SPKI the same way. */
async function fingerprints(cert: string): Promise<{ cert: string; spki: string }> {
  const fp = await run("openssl", ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]);
  const spki = await run("sh", [
    "-c",
    `openssl x509 -in "${cert}" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r`,
  ]);
  const hex = spki.stdout.split(" ")[0]!.toUpperCase();
  return { cert: fp.stdout.trim().split("=")[1]!, spki: hex.match(/../g)!.join(":") };
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runReceiptsCli(args, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    env: { SEALPOST_ADMIN_TOKEN: TOKEN },
  });
  return { code, out, err };
}

const admin = (): string => `http://127.0.0.1:${f.ports.admin}`;

async function submit(to: string[], tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to,
    headers: { "Message-Id": `<${tag}@local.test>`, "X-Test-Id": tag },
    subject: tag,
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

async function delivered(tag: string, rcpt: string): Promise<void> {
  await waitFor(
    `${tag} delivered to ${rcpt}`,
    async () =>
      (await peer.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag && m.recipient === rcpt),
    20_000,
  );
}

/** The export's entries (after its header line). */
function entries(text: string): ReceiptEntry[] {
  return text
    .split("\n")
    .filter(Boolean)
    .slice(1)
    .map((l) => ReceiptEntry.parse(JSON.parse(l)));
}

const receiptsOf = (text: string, queueId: string): Receipt[] =>
  entries(text).flatMap((e) => (e.kind === "receipt" && e.receipt.queueId === queueId ? [e.receipt] : []));

async function configure(): Promise<void> {
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      policies: [
        {
          name: "partners/partner",
          domains: ["partner.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.partner.test"] },
            nextHop: { host: peer.host, port: peer.port },
          },
        },
        {
          name: "partners/secure",
          domains: ["secure.test"],
          outbound: {
            tls: { mode: "verify", caFile: "secrets/partner-ca/ca.crt", matchNames: ["mx.partner.test"] },
            nextHop: { host: peer.host, port: peer.port },
            smime: { certificateFiles: ["secrets/secure-smime/certs.pem"], contentEncryption: "aes-256-gcm" },
          },
        },
      ],
    },
    {
      files: {
        "secrets/admin/token": TOKEN,
        "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile),
        "secrets/secure-smime/certs.pem": await readFile(carol.certFile),
      },
    },
  );
}

before(async () => {
  f = await relayFixture("relay-receipts", { caName: "Partner CA" });
  mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  carol = await makeLeaf(f.ca, { cn: "Carol", emails: ["carol@secure.test"], rsa: true });
  peer = await startPostfix({
    domains: ["partner.test", "secure.test"],
    tls: "require",
    cert: mx,
    hostname: "mx.partner.test",
  });
  await configure();
  await f.start();
});

after(async () => {
  await f?.stop(() => peer?.stop());
});

describe("encryption receipts", () => {
  let exported = "";

  it("a delivered recipient's receipt: hop, TLS and how it was authenticated, S/MIME, policy, reply; it verifies", async () => {
    const id = await submit(["bob@partner.test", "carol@secure.test"], "rc-1");
    await delivered("rc-1", "bob@partner.test");
    await delivered("rc-1", "carol@secure.test");
    // the receipt is on disk before the queue records the delivery: the message leaves the queue after
    await waitFor("message done", () => (f.relay!.status().queue.depth === 0 ? true : undefined));
    await f.relay!.receipts!.checkpoint();
    const e = await cli("export", "--admin", admin());
    assert.equal(e.code, 0, e.err);
    exported = e.out;
    const header = ReceiptExportHeader.parse(JSON.parse(exported.split("\n")[0]!));
    // the key in the export is the one /status publishes, without the token too
    const status = (await (await fetch(`${admin()}/status`)).json()) as {
      receipts?: { publicKey: string; keyId: string };
    };
    assert.equal(status.receipts?.publicKey, header.publicKey);
    assert.equal(status.receipts?.keyId, header.keyId);
    const mxPrint = await fingerprints(mx.certFile);
    const [bob] = receiptsOf(exported, id).filter((r) => r.to === "bob@partner.test");
    assert.ok(bob, exported);
    assert.equal(bob.from, "alice@local.test");
    assert.equal(bob.messageId, "rc-1@local.test");
    assert.deepEqual(bob.nextHop, { host: peer.host, address: peer.host, port: peer.port });
    assert.equal(bob.tls.level, "verify");
    assert.equal(bob.tls.authenticated, "ca-chain");
    assert.equal(bob.tls.ca, "secrets/partner-ca/ca.crt");
    assert.deepEqual(bob.tls.names, ["mx.partner.test"]);
    assert.match(bob.tls.protocol ?? "", /^TLSv1\.[23]$/);
    assert.ok(bob.tls.cipher);
    assert.equal(bob.tls.peerCertificateSha256, mxPrint.cert);
    assert.equal(bob.tls.peerSpkiSha256, mxPrint.spki);
    assert.equal(bob.requireTls, false);
    assert.equal(bob.smime, undefined);
    assert.equal(bob.policy.name, "partners/partner");
    assert.match(bob.policy.revision ?? "", /^[0-9a-f]{16}$/);
    assert.equal(bob.policy.configHash, f.relay!.loaded.hash);
    assert.equal(bob.dsn, "2.0.0");
    assert.match(bob.reply, /^250 /);
    const [c] = receiptsOf(exported, id).filter((r) => r.to === "carol@secure.test");
    assert.deepEqual(c?.smime, {
      algorithm: "aes-256-gcm",
      signed: false,
      recipientCertificateSha256: (await fingerprints(carol.certFile)).cert,
    });
    assert.equal(c?.policy.name, "partners/secure");
    const file = join(f.work, "export.jsonl");
    await writeFile(file, exported);
    const v = await cli("verify", file);
    assert.equal(v.code, 0, v.err);
    assert.match(v.out, /ok: \d+ receipt\(s\), 0 redacted, 1 checkpoint\(s\) in 1 chain\(s\)/);
    assert.match(v.out, new RegExp(`signatures verified with key ${header.keyId}`));
    // the log on the queue volume itself, with the key /status shows
    const raw = await cli(
      "verify",
      join(f.work, "queue", "receipts", "log.jsonl"),
      "--public-key",
      header.publicKey,
    );
    assert.equal(raw.code, 0, raw.err);
  });

  it("export --domain shows that domain's receipts, the others redacted, and still verifies", async () => {
    const e = await cli("export", "--admin", admin(), "--domain", "secure.test", "--since", "1d");
    assert.equal(e.code, 0, e.err);
    assert.doesNotMatch(e.out, /bob@partner\.test/);
    assert.match(e.out, /carol@secure\.test/);
    const file = join(f.work, "secure.jsonl");
    await writeFile(file, e.out);
    const v = await cli("verify", file);
    assert.equal(v.code, 0, v.err);
    assert.match(v.out, /1 receipt\(s\), 1 redacted/);
  });

  it("a changed, removed or reordered line: verify names the first bad entry", async () => {
    await submit(["bob@partner.test"], "rc-2");
    await delivered("rc-2", "bob@partner.test");
    await submit(["bob@partner.test"], "rc-3");
    await delivered("rc-3", "bob@partner.test");
    await waitFor("message done", () => (f.relay!.status().queue.depth === 0 ? true : undefined));
    await f.relay!.receipts!.checkpoint();
    const e = await cli("export", "--admin", admin());
    const lines = e.out.split("\n").filter(Boolean);
    assert.ok(lines.length >= 6, e.out);
    const verify = async (changed: string[]) => {
      const file = join(f.work, `tampered-${Math.random().toString(16).slice(2)}.jsonl`);
      await writeFile(file, changed.join("\n") + "\n");
      return cli("verify", file);
    };
    // line 3 says TLS was stronger than it was
    const edited = [...lines];
    edited[2] = edited[2]!.replace(/"protocol":"TLSv1\.[23]"/, '"protocol":"TLSv1.4"');
    assert.notEqual(edited[2], lines[2]);
    const ev = await verify(edited);
    assert.equal(ev.code, 1);
    assert.match(ev.err, /: line 3: seq 2: its content does not match its hash/);
    // line 3 removed
    const rv = await verify(lines.filter((_, i) => i !== 2));
    assert.equal(rv.code, 1);
    assert.match(rv.err, /: line 3: seq 3 follows seq 1/);
    // lines 3 and 4 swapped
    const swapped = [...lines];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    const sv = await verify(swapped);
    assert.equal(sv.code, 1);
    assert.match(sv.err, /: line 3: seq 3 follows seq 1/);
    // the untouched export verifies
    assert.equal((await verify(lines)).code, 0);
  });

  it("kill -9 while appending: the log verifies up to its last whole entry; restarted, the relay continues the chain", async () => {
    await f.relay!.stop();
    f.relay = undefined;
    const log = join(f.work, "queue", "receipts", "log.jsonl");
    const before = (await readFile(log, "utf8")).split("\n").filter(Boolean);
    const lastSeq = (JSON.parse(before.at(-1)!) as { seq: number }).seq;
    // the relay as a child process, killed (-9) as soon as it appends receipts (two recipients)
    const child: Managed = await startRelayProcess(f.configDir, f.ports.admin, join(f.work, "child.log"));
    try {
      await submit(["bob@partner.test", "carol@secure.test"], "rc-kill");
      await waitFor(
        "an append under way",
        async () => ((await readFile(log, "utf8")).split("\n").length > before.length + 1 ? true : undefined),
        20_000,
        1,
      );
    } finally {
      await child.kill();
    }
    // and, whatever the kill left, an append cut short by it
    await appendFile(log, '{"hash":"00');
    const v = await cli("verify", log);
    assert.equal(v.code, 0, v.err);
    assert.match(v.out, /has no newline \(an interrupted append\)/);
    // started again: the partial line is cut, new entries continue the chain after the last whole one
    await f.start();
    await submit(["bob@partner.test"], "rc-after");
    await delivered("rc-after", "bob@partner.test");
    await waitFor("message done", () => (f.relay!.status().queue.depth === 0 ? true : undefined));
    await f.relay!.receipts!.checkpoint();
    const text = await readFile(log, "utf8");
    const status = f.relay!.status().receipts!;
    const after = await cli("verify", log, "--public-key", status.publicKey);
    assert.equal(after.code, 0, after.err);
    assert.doesNotMatch(after.out, /interrupted append/);
    const seqs = text
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    assert.ok(seqs.at(-1)! > lastSeq + 1);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
    );
    assert.ok(f.logs!.find((l) => /partial last entry of an interrupted append/.test(String(l.msg))));
  });
});
