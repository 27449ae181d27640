// The receipt log's chain (relay/receipts/chain.ts) and its file (receipt-log.ts): written entries
// verify; a changed, removed, reordered or re-hashed entry and a forged checkpoint are named by line;
// a partial last line is cut at the next open and the chain continues from the last whole entry.
import assert from "node:assert/strict";
import { createHash, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GENESIS, type Receipt } from "../../relay/contract/receipt.js";
import { createLogger } from "../../relay/log.js";
import {
  canonicalJson,
  checkpointEntry,
  entryHash,
  keyIdOf,
  receiptEntry,
  verifyReceipts,
} from "../../relay/receipts/chain.js";
import { exportFilter, handleReceiptsRequest } from "../../relay/receipts/admin-api.js";
import { waitFor } from "../support/process.js";
import { receiptOf } from "../../relay/receipts/receipt.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import type { DeliveryLine } from "../../relay/delivery-log.js";
import type { RecipientResult } from "../../relay/outbound/deliver.js";
import { ReceiptLog } from "../../relay/receipts/receipt-log.js";

const silent = createLogger(undefined, "silent");
let dir: string;

function receipt(to: string, n: number): Receipt {
  return {
    queueId: `Q${n}`,
    from: "alice@local.test",
    to,
    time: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
    nextHop: { host: "mx.partner.test", address: "127.0.0.1", port: 25 },
    tls: { level: "verify", protocol: "TLSv1.3", authenticated: "ca-chain", ca: "system", names: ["mx"] },
    requireTls: false,
    policy: { name: "p/partner", configHash: "abc", generation: 1 },
    dsn: "2.0.0",
    reply: `250 2.0.0 Ok: queued as ${n}`,
  };
}

/** A log of `n` receipts (alternating domains) and a closing checkpoint; its lines and key. */
async function writeLog(
  name: string,
  n: number,
): Promise<{ lines: string[]; log: ReceiptLog; path: string }> {
  const queueDir = join(dir, name);
  const log = await ReceiptLog.open({ queueDir, relay: "t/edge", log: silent });
  for (let i = 1; i <= n; i++) await log.append(receipt(i % 2 ? "bob@a.test" : "carol@b.test", i));
  await log.close();
  const path = join(queueDir, "receipts", "log.jsonl");
  return { lines: (await readFile(path, "utf8")).split("\n").filter(Boolean), log, path };
}

const text = (lines: string[]): string => lines.join("\n") + "\n";
const key = (log: ReceiptLog) =>
  ({ key: Buffer.from(log.publicKey, "base64"), format: "der", type: "spki" }) as const;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "receipts-unit-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("receipt chain", () => {
  it("a written log verifies, its checkpoint signed with the relay's key", async () => {
    const { lines, log } = await writeLog("ok", 5);
    assert.equal(lines.length, 6);
    const r = verifyReceipts(text(lines), createPublicKey(key(log)));
    assert.equal(r.ok, true, JSON.stringify(r.bad));
    assert.equal(r.receipts, 5);
    assert.equal(r.checkpoints, 1);
    assert.equal(r.unsigned, 0);
    assert.deepEqual(r.keyIds, [log.keyId]);
  });

  it("names the first bad entry: changed, re-hashed, removed, reordered, forged checkpoint, other key", async () => {
    const { lines, log } = await writeLog("tamper", 5);
    const pub = createPublicKey(key(log));
    const check = (l: string[], k = pub) => verifyReceipts(text(l), k).bad;
    // a changed recipient
    const edited = [...lines];
    edited[2] = edited[2]!.replace("bob@a.test", "mallory@a.test");
    assert.match(check(edited)?.why ?? "", /does not match its hash/);
    assert.equal(check(edited)?.line, 3);
    // changed and re-hashed: the next line's prev no longer matches
    const e = JSON.parse(edited[2]) as Record<string, unknown>;
    e.hash = entryHash(e);
    const rehashed = [...lines];
    rehashed[2] = canonicalJson(e);
    assert.deepEqual(check(rehashed), {
      line: 4,
      why: "seq 4: prev is not the hash of line 3 (that entry was changed)",
    });
    // a removed line
    const removed = lines.filter((_, i) => i !== 1);
    assert.equal(check(removed)?.line, 2);
    assert.match(check(removed)?.why ?? "", /seq 3 follows seq 1/);
    // two lines swapped
    const swapped = [...lines];
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    assert.equal(check(swapped)?.line, 2);
    // the checkpoint's signature
    const cp = JSON.parse(lines[5]!) as Record<string, unknown>;
    cp.signature = Buffer.alloc(64, 1).toString("base64");
    cp.hash = entryHash(cp);
    assert.deepEqual(check([...lines.slice(0, 5), canonicalJson(cp)]), {
      line: 6,
      why: "checkpoint seq 6: the signature does not verify",
    });
    // another key
    const other = generateKeyPairSync("ed25519").publicKey;
    assert.match(check(lines, other)?.why ?? "", /not the given key/);
    // a receipt that is not one
    assert.match(check(["{}"])?.why ?? "", /not a receipt entry/);
  });

  it("an export --domain redacts the other domains' receipts and still verifies end to end", async () => {
    const { log } = await writeLog("export", 4);
    const again = await ReceiptLog.open({ queueDir: join(dir, "export"), relay: "t/edge", log: silent });
    const lines: string[] = [];
    for await (const l of again.export({ domain: "a.test" })) lines.push(l);
    await again.close();
    const out = lines.join("");
    assert.equal((JSON.parse(lines[0]!) as { publicKey: string }).publicKey, log.publicKey);
    assert.match(out, /bob@a\.test/);
    assert.doesNotMatch(out, /carol@b\.test/);
    const r = verifyReceipts(out);
    assert.equal(r.ok, true, JSON.stringify(r.bad));
    assert.equal(r.receipts, 2);
    assert.equal(r.redacted, 2);
    // a field added to a receipt, or to a stub, is a change
    const added = out.replace(
      /"dsn":"2\.0\.0"/,
      '"dsn":"2.0.0","smime":{"algorithm":"aes-256-gcm","signed":false}',
    );
    assert.match(verifyReceipts(added).bad?.why ?? "", /does not match its hash/);
    const stub = out.replace(/"kind":"redacted"/, '"kind":"redacted","x":1');
    assert.match(verifyReceipts(stub).bad?.why ?? "", /a redacted entry carries only/);
  });

  it("attack: a receipt rewritten before a redacted entry (its prev re-pointed) fails, pinned key or not", async () => {
    const { log } = await writeLog("forge", 4);
    const again = await ReceiptLog.open({ queueDir: join(dir, "forge"), relay: "t/edge", log: silent });
    const lines: string[] = [];
    for await (const l of again.export({ domain: "a.test" })) lines.push(l.trimEnd());
    await again.close();
    const pub = createPublicKey(key(log));
    assert.equal(verifyReceipts(text(lines), pub).ok, true);
    // seq 1 (bob@a.test) now claims DANE and TLS 1.3, re-hashed; the redacted seq 2 re-pointed at it
    const r1 = JSON.parse(lines[1]!) as Record<string, unknown> & {
      receipt: Receipt;
      hash: string;
      prev: string;
    };
    r1.receipt.tls = { level: "dane", protocol: "TLSv1.3", authenticated: "dane", daneRecord: "3 1 1 ab" };
    r1.hash = entryHash(r1);
    const stub = JSON.parse(lines[2]!) as Record<string, unknown>;
    assert.equal(stub.kind, "redacted");
    const forged = [
      lines[0]!,
      canonicalJson(r1),
      canonicalJson({ ...stub, prev: r1.hash }),
      ...lines.slice(3),
    ];
    for (const k of [pub, undefined])
      assert.deepEqual(verifyReceipts(text(forged), k).bad, {
        line: 3,
        why: "seq 2: its content does not match its hash (the entry was changed)",
      });
    // a receipt hidden as a redacted stub (any digest): its hash no longer matches
    const hidden = [...lines];
    hidden[1] = canonicalJson({
      ...stub,
      seq: 1,
      prev: r1.prev,
      hash: (JSON.parse(lines[1]!) as { hash: string }).hash,
    });
    assert.match(verifyReceipts(text(hidden), pub).bad?.why ?? "", /does not match its hash/);
    // a header without a domain filter has no redacted entries
    const unfiltered = [lines[0]!.replace(/"filter":\{[^}]*\}/, '"filter":{}'), ...lines.slice(1)];
    assert.match(
      verifyReceipts(text(unfiltered), pub).bad?.why ?? "",
      /redacted entry where nothing is filtered/,
    );
    assert.equal(verifyReceipts(text(unfiltered), pub).bad?.line, 3);
  });

  it("attack: with the pinned key, entries no checkpoint covers fail; a version 1 log is refused", () => {
    const k = generateKeyPairSync("ed25519");
    const t = "2026-01-01T00:00:00.000Z";
    const e1 = receiptEntry(7, "f".repeat(64), t, receipt("bob@a.test", 7));
    const bad = verifyReceipts(text([canonicalJson(e1)]), k.publicKey);
    assert.equal(bad.ok, false);
    assert.match(bad.bad?.why ?? "", /not covered by a checkpoint signed with the given key/);
    // signed, it passes; without the pinned key the unsigned tail is only reported
    const cp = checkpointEntry(8, e1.hash, t, keyIdOf(k.publicKey), (d) => sign(null, d, k.privateKey));
    assert.equal(verifyReceipts(text([canonicalJson(e1), canonicalJson(cp)]), k.publicKey).ok, true);
    assert.equal(verifyReceipts(text([canonicalJson(e1)])).unsigned, 1);
    // version 1: no "v", a redacted entry of which only the hash was kept
    const { v: _, ...v1 } = receiptEntry(1, GENESIS, t, receipt("bob@a.test", 1));
    assert.deepEqual(verifyReceipts(text([canonicalJson(v1)])).bad, {
      line: 1,
      why: "a version 1 receipt log: its redacted entries cannot be checked; verify refuses it (export it again from a relay that writes version 2)",
    });
  });

  it("attack: a fleet export verifies only with every pod's key given; a substituted chain fails", () => {
    const t = "2026-01-01T00:00:00.000Z";
    const chain = (pod: string) => {
      const k = generateKeyPairSync("ed25519");
      const keyId = keyIdOf(k.publicKey);
      const e1 = receiptEntry(1, GENESIS, t, receipt("bob@a.test", 1));
      const e2 = checkpointEntry(2, e1.hash, t, keyId, (d) => sign(null, d, k.privateKey));
      const publicKey = k.publicKey.export({ type: "spki", format: "der" }).toString("base64");
      const h = { kind: "export", v: 2, relay: "t/edge", pod, publicKey, keyId, exportedAt: t, filter: {} };
      return { k: k.publicKey, keyId, text: text([h, e1, e2].map(canonicalJson)) };
    };
    const [a, b, evil] = [chain("edge-0"), chain("edge-1"), chain("edge-1")];
    const both = verifyReceipts(a.text + b.text, [a.k, b.k]);
    assert.equal(both.ok, true, JSON.stringify(both.bad));
    assert.deepEqual(
      both.headers.map((h) => `${h.pod} ${h.keyId}`),
      [`edge-0 ${a.keyId}`, `edge-1 ${b.keyId}`],
    );
    // edge-1's chain replaced by one signed with another key: refused when the keys are pinned
    const sub = verifyReceipts(a.text + evil.text, [a.k, b.k]);
    assert.equal(sub.bad?.line, 4);
    assert.match(sub.bad?.why ?? "", /export header \(pod edge-1\): key .* is not the given key/);
    // only edge-0's key: edge-1's chain fails, naming its pod
    assert.match(verifyReceipts(a.text + b.text, a.k).bad?.why ?? "", /pod edge-1/);
  });

  it("a partial last line (an interrupted append) is ignored by verify, cut at the next open, the chain continues", async () => {
    const { lines, path } = await writeLog("partial", 3);
    await appendFile(path, lines[1]!.slice(0, 40));
    const before = verifyReceipts(await readFile(path, "utf8"));
    assert.equal(before.ok, true);
    assert.equal(before.partialTail, 5);
    const log = await ReceiptLog.open({ queueDir: join(dir, "partial"), relay: "t/edge", log: silent });
    await log.append(receipt("bob@a.test", 9));
    await log.close();
    const after = verifyReceipts(await readFile(path, "utf8"));
    assert.equal(after.ok, true, JSON.stringify(after.bad));
    assert.equal(after.partialTail, undefined);
    assert.equal(after.last, 6); // 3 receipts, checkpoint, receipt, checkpoint
  });

  it("a short write (a volume filling up) is cut by recovery: the next entries do not follow half a line", async () => {
    const { path } = await writeLog("short", 2);
    const log = await ReceiptLog.open({ queueDir: join(dir, "short"), relay: "t/edge", log: silent });
    // the volume takes only part of the next batch: the handle writes 30 bytes and says so
    const fh = (log as unknown as { fh: { write(t: string): Promise<{ bytesWritten: number }> } }).fh;
    const write = fh.write.bind(fh);
    fh.write = async (t: string) => write(t.slice(0, 30));
    await log.append(receipt("carol@b.test", 7));
    fh.write = write;
    await log.append(receipt("bob@a.test", 8));
    await log.close();
    const after = verifyReceipts(await readFile(path, "utf8"));
    assert.equal(after.ok, true, JSON.stringify(after.bad));
    assert.equal(after.partialTail, undefined);
    assert.equal(after.last, 5); // 2 receipts, checkpoint, receipt (the lost one's seq reused), checkpoint
  });

  it("attack: with --domain a log line that does not parse goes out as its line number only", async () => {
    const { path } = await writeLog("unparsed", 2);
    await appendFile(path, '{"seq":9,"receipt":{"to":"carol@b.test"\n');
    const log = await ReceiptLog.open({ queueDir: join(dir, "unparsed"), relay: "t/edge", log: silent });
    const domain: string[] = [];
    for await (const l of log.export({ domain: "a.test" })) domain.push(l);
    const all: string[] = [];
    for await (const l of log.export({})) all.push(l);
    await log.close();
    assert.doesNotMatch(domain.join(""), /carol@b\.test/);
    assert.equal(domain[4], '{"kind":"unparsed","line":4}\n');
    assert.match(verifyReceipts(domain.join("")).bad?.why ?? "", /line 4 of the relay's log does not parse/);
    assert.match(all.join(""), /carol@b\.test/); // unfiltered: as it is, and verify names it
    assert.match(verifyReceipts(all.join("")).bad?.why ?? "", /not a JSON line/);
  });

  it("attack: a pre-existing receipts/ (0755) and ed25519.pem.tmp (0644) end as 0700 and a 0600 key", async () => {
    const queueDir = join(dir, "perm");
    await mkdir(join(queueDir, "receipts"), { recursive: true });
    await chmod(join(queueDir, "receipts"), 0o755);
    await writeFile(join(queueDir, "receipts", "ed25519.pem.tmp"), "", { mode: 0o644 });
    await chmod(join(queueDir, "receipts", "ed25519.pem.tmp"), 0o644);
    const log = await ReceiptLog.open({ queueDir, relay: "t/edge", log: silent });
    await log.close();
    const mode = async (f: string) => ((await stat(join(queueDir, f))).mode & 0o777).toString(8);
    assert.equal(await mode("receipts"), "700");
    assert.equal(await mode("receipts/ed25519.pem"), "600");
    assert.equal(await mode("receipts/log.jsonl"), "600");
  });

  it("attack: an export the client stops reading and abandons closes the log file (the iterator returns)", async () => {
    const cfg = join(dir, "dos");
    await mkdir(cfg, { recursive: true });
    await writeFile(join(cfg, "token"), "t0k3n");
    let returned = false;
    const endless = {
      async *export() {
        try {
          for (;;) yield await Promise.resolve("x".repeat(64 * 1024) + "\n");
        } finally {
          returned = true;
        }
      },
    } as unknown as ReceiptLog;
    const srv: Server = createServer((req, res) => {
      handleReceiptsRequest(
        {
          config: () => ({ admin: { tokenFile: "token" } }) as RelayConfig,
          configDir: cfg,
          receipts: () => endless,
        },
        req,
        res,
      );
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const { port } = srv.address() as { port: number };
      await new Promise<void>((resolve) => {
        const req = request(
          { port, host: "127.0.0.1", path: "/receipts", headers: { authorization: "Bearer t0k3n" } },
          (res) => {
            res.once("data", () => {
              res.pause();
              req.destroy();
              resolve();
            });
          },
        );
        req.end();
      });
      await waitFor("the export's iterator returned", () => (returned ? true : undefined));
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  it("export filter: a domain in canonical form, since as a time or an age", () => {
    const now = Date.UTC(2026, 0, 2);
    assert.deepEqual(exportFilter(new URLSearchParams("domain=Partner.TEST&since=2h"), now), {
      domain: "partner.test",
      since: now - 7_200_000,
    });
    assert.deepEqual(exportFilter(new URLSearchParams("since=2026-01-01T00:00:00Z"), now), {
      since: Date.UTC(2026, 0, 1),
    });
    assert.match(exportFilter(new URLSearchParams("since=yesterday"), now) as string, /neither/);
    assert.match(exportFilter(new URLSearchParams("domain=a_b"), now) as string, /not a domain/);
  });

  it("the signing key is kept: a reopened log signs with the same key", async () => {
    const queueDir = join(dir, "key");
    const a = await ReceiptLog.open({ queueDir, relay: "t/edge", log: silent });
    await a.close();
    const b = await ReceiptLog.open({ queueDir, relay: "t/edge", log: silent });
    await b.close();
    assert.equal(a.keyId, b.keyId);
  });
});

describe("receipt of a delivery", () => {
  const verified = {
    address: "b@partner.test",
    attempt: {
      endedAt: Date.UTC(2026, 0, 1),
      record: {
        level: "verify",
        nextHop: "mx.partner.test",
        port: 25,
        session: { tlsVersion: "TLSv1.3", peerVerified: true },
        evidence: { names: [".partner.test"], stsEnforced: false },
      },
    },
  } as unknown as RecipientResult;
  const line = (policy: string) =>
    ({
      status: "sent",
      queueId: "Q1",
      from: "a@local.test",
      to: "b@partner.test",
      tls: { policy, mode: "verify", level: "verify" },
      dsn: "2.0.0",
      response: "250 ok",
    }) as unknown as DeliveryLine;
  const config = (catchAll?: string) =>
    ({
      generation: 3,
      policies: [],
      defaultOutbound: {
        tls: { mode: "verify", minVersion: "TLSv1.2", caFile: "policies/catch-all/ca.pem" },
      },
      ...(catchAll ? { defaultOutboundPolicy: catchAll } : {}),
    }) as unknown as RelayConfig;

  it("the catch-all route: the CA file, name and revision of the catch-all policy, not 'system'", () => {
    const r = receiptOf(line("default"), verified, {
      config: config("mail/catch-all"),
      configHash: "h",
      requireTls: false,
      now: 0,
    })!;
    assert.equal(r.tls.authenticated, "ca-chain");
    assert.equal(r.tls.ca, "policies/catch-all/ca.pem");
    assert.equal(r.policy.name, "mail/catch-all");
    assert.match(r.policy.revision ?? "", /^[0-9a-f]{16}$/);
    // a defaultOutbound no MailDomainPolicy set keeps the route's name, with a revision
    const plain = receiptOf(line("default"), verified, {
      config: config(),
      configHash: "h",
      requireTls: false,
      now: 0,
    })!;
    assert.equal(plain.policy.name, "default");
    assert.equal(plain.tls.ca, "policies/catch-all/ca.pem");
    assert.match(plain.policy.revision ?? "", /^[0-9a-f]{16}$/);
    // a local domain: the built-in local outbound (system trust store)
    const local = receiptOf(line("local"), verified, {
      config: config(),
      configHash: "h",
      requireTls: false,
      now: 0,
    })!;
    assert.equal(local.policy.name, "local");
    assert.equal(local.tls.ca, "system");
    assert.match(local.policy.revision ?? "", /^[0-9a-f]{16}$/);
  });

  it("a revision is the hash of what was compiled, computed once per loaded config: a reload's change shows", () => {
    const ctx = (c: RelayConfig) => ({ config: c, configHash: "h", requireTls: false, now: 0 });
    const policy = (caFile: string) => ({
      name: "mail/partner",
      domains: ["partner.test"],
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.2", caFile } },
    });
    const loaded = (caFile: string) =>
      ({ ...config(), policies: [policy(caFile)] }) as unknown as RelayConfig;
    const first = loaded("policies/partner/ca.pem");
    const rev = (c: RelayConfig) => receiptOf(line("mail/partner"), verified, ctx(c))!.policy.revision;
    const expected = createHash("sha256").update(canonicalJson(first.policies[0])).digest("hex").slice(0, 16);
    assert.equal(rev(first), expected);
    assert.equal(rev(first), expected, "the same config: the same revision");
    assert.equal(rev(loaded("policies/partner/ca.pem")), expected, "an equal reload: equal");
    assert.notEqual(rev(loaded("policies/partner/new-ca.pem")), expected, "a changed policy: a new revision");
    const catchAll = receiptOf(line("default"), verified, ctx(config("mail/catch-all")))!.policy.revision;
    const other = receiptOf(line("default"), verified, ctx(config("mail/other")))!.policy.revision;
    assert.notEqual(catchAll, other, "the catch-all's name is part of its revision");
  });
});
