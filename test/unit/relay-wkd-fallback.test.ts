// The WKD direct-method fallback from the attacker's side (Wkd against a fake resolver and a real
// HTTPS directory on loopback, certificates made at test time): whoever forges one DNS answer for
// openpgpkey.<domain> (NXDOMAIN, or a name without an A record) must not make a recipient who
// publishes a key look keyless, because under missingKey sendClear "no key" means clear text. Only a
// DNSSEC-validated NXDOMAIN lets a 404 of the direct method mean "no key", and that answer is not
// cached. A published key that cannot encrypt (expired) is deferred too, never sent in clear.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as openpgp from "openpgp";
import { deliverOpenpgp } from "../../relay/outbound/openpgp-delivery.js";
import type { SecureAnswer, SecureDns } from "../../relay/outbound/dnssec.js";
import type { Dns } from "../../relay/outbound/mx.js";
import type { Route } from "../../relay/outbound/route.js";
import { Wkd, wkdLocation } from "../../relay/outbound/wkd.js";
import { bufferBody } from "../../relay/queue/message-body.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { startWkdServer, type WkdServer } from "../support/wkd-server.js";

const VICTIM = "victim@partner.test";
let dir: string;
let ca: Buffer;
let web: WkdServer;
let key: Buffer;

/** A resolver where openpgpkey.partner.test fails with `code` (the forged answer); the rest is 127.0.0.1. */
function forged(code: "ENOTFOUND" | "ENODATA" | undefined): Dns & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolveMx: () => Promise.reject(new Error("unused")),
    resolve6: () => Promise.reject(new Error("unused")),
    resolve4: (h: string) => {
      asked.push(h);
      if (code && h.startsWith("openpgpkey."))
        return Promise.reject(Object.assign(new Error(code), { code }));
      return Promise.resolve(["127.0.0.1"]);
    },
  };
}

const secure = (a: Partial<SecureAnswer>): SecureDns => ({
  query: (name) => Promise.resolve({ rcode: "NXDOMAIN", secure: false, answers: [], finalName: name, ...a }),
});

let n = 0;
function wkdWith(dns: Dns, secureDns?: SecureDns): { wkd: Wkd; cache: string } {
  const cache = join(dir, `cache-${n++}`);
  const wkd = new Wkd({
    dns: () => dns,
    cacheDir: () => cache,
    ca: () => ca,
    httpsPort: () => web.port,
    ...(secureDns ? { secureDns: () => secureDns } : {}),
  });
  return { wkd, cache };
}

const cached = async (cache: string): Promise<string[]> => readdir(join(cache, "wkd")).catch(() => []);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "wkd-fallback-"));
  const c = await makeCa(join(dir, "ca"));
  const leaf = await makeLeaf(c, {
    cn: "openpgpkey.partner.test",
    dnsNames: ["openpgpkey.partner.test", "partner.test"],
  });
  ca = await readFile(c.certFile);
  web = await startWkdServer({ cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) });
  const k = await openpgp.generateKey({
    userIDs: [{ name: "Victim", email: VICTIM }],
    type: "ecc",
    curve: "curve25519Legacy",
    format: "binary",
  });
  key = Buffer.from(k.publicKey);
  // the victim publishes by the advanced method only; the direct method answers 404
  const loc = wkdLocation(VICTIM)!;
  web.set(loc.advanced.host, loc.advanced.path, { key });
});

after(async () => {
  await web?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("WKD direct-method fallback from the attacker's side", () => {
  it("the advanced method finds the published key when DNS is honest", async () => {
    const { wkd } = wkdWith(forged(undefined));
    const r = await wkd.lookup(VICTIM);
    assert.equal(r.kind, "found");
  });

  it("forged NXDOMAIN for openpgpkey.<domain>, unsigned: the direct 404 is a lookup failure, not cached", async () => {
    for (const s of [undefined, secure({ secure: false })]) {
      const { wkd, cache } = wkdWith(forged("ENOTFOUND"), s);
      const r = await wkd.lookup(VICTIM);
      assert.equal(r.kind, "failed", JSON.stringify(r));
      assert.match(r.kind === "failed" ? r.reason : "", /not DNSSEC-validated/);
      assert.deepEqual(await cached(cache), []);
    }
  });

  it("forged NODATA (ENODATA: the name exists without an A record): a failure, the direct host is never asked", async () => {
    const before = web.requests.length;
    const dns = forged("ENODATA");
    const { wkd, cache } = wkdWith(dns, secure({ rcode: "NXDOMAIN", secure: true }));
    const r = await wkd.lookup(VICTIM);
    assert.equal(r.kind, "failed", JSON.stringify(r));
    assert.deepEqual(dns.asked, ["openpgpkey.partner.test"]);
    assert.deepEqual(web.requests.slice(before), []);
    assert.deepEqual(await cached(cache), []);
  });

  it("a DNSSEC-validated NXDOMAIN: the direct 404 means no key, and is not cached", async () => {
    const { wkd, cache } = wkdWith(forged("ENOTFOUND"), secure({ rcode: "NXDOMAIN", secure: true }));
    const r = await wkd.lookup(VICTIM);
    assert.equal(r.kind, "none", JSON.stringify(r));
    assert.deepEqual(await cached(cache), []);
  });

  it("a 404 of the advanced host is still no key, cached", async () => {
    const { wkd, cache } = wkdWith(forged(undefined));
    const r = await wkd.lookup("nobody@partner.test");
    assert.equal(r.kind, "none", JSON.stringify(r));
    assert.equal((await cached(cache)).length, 1);
  });

  it("sendClear policy, forged NXDOMAIN: deferred OPENPGP_KEY_LOOKUP_FAILED, nothing transmitted", async () => {
    const { wkd } = wkdWith(forged("ENOTFOUND"));
    await deferredNothingSent((a) => wkd.lookup(a));
  });

  it("sendClear policy, a published key that is expired: deferred, never sent in clear", async () => {
    const created = new Date(Date.now() - 3 * 86_400_000);
    const k = await openpgp.generateKey({
      userIDs: [{ name: "Victim", email: VICTIM }],
      type: "ecc",
      curve: "curve25519Legacy",
      date: created,
      keyExpirationTime: 86_400,
      format: "binary",
    });
    const expired = Buffer.from(k.publicKey);
    await deferredNothingSent(() =>
      Promise.resolve({ kind: "found", key: expired, source: "fetched", url: "https://x" }),
    );
  });
});

function request() {
  const route = {
    policy: "hostile/partner",
    outbound: { openpgp: { webKeyDirectory: true, missingKey: "sendClear" } },
  } as unknown as Route;
  return {
    queueId: "Q1",
    from: "alice@local.test",
    recipients: [VICTIM],
    message: bufferBody(Buffer.from("Subject: x\r\n\r\nsecret\r\n")),
    route,
  };
}

/** One delivery under a sendClear policy: the victim is deferred and nothing is transmitted. */
async function deferredNothingSent(wkd: Parameters<typeof deliverOpenpgp>[1]["wkd"]): Promise<void> {
  const sent: string[][] = [];
  const deps = { openpgp: () => Promise.resolve({ keys: [] }), wkd };
  const out = await deliverOpenpgp(request(), deps, (r) => {
    sent.push(r.recipients);
    return Promise.resolve([]);
  });
  assert.deepEqual(sent, [], "the message was transmitted (in clear)");
  assert.deepEqual(
    out.map((o) => [o.outcome, o.code]),
    [["deferred", "OPENPGP_KEY_LOOKUP_FAILED"]],
  );
}

describe("attack (review, session 6): one recipient's published key that cannot be encrypted to", () => {
  it("defers that recipient only; the others of the batch get the message, encrypted", async () => {
    // the hostile domain's key: a valid primary and user ID, its RSA encryption subkey's exponent
    // larger than the modulus, the binding signature made again over it: every check passes, and
    // encryption then fails for the whole batch
    const { privateKey } = await openpgp.generateKey({
      type: "rsa",
      rsaBits: 2048,
      userIDs: [{ email: "mallory@evil.test" }],
      format: "object",
    });
    const sub = privateKey.subkeys[0]!;
    const kp = sub.keyPacket as unknown as {
      publicParams: { e: Uint8Array };
      computeFingerprintAndKeyID(): Promise<void>;
    };
    const e = new Uint8Array(260);
    e[0] = 1;
    e[259] = 1;
    kp.publicParams.e = e;
    await kp.computeFingerprintAndKeyID();
    const old = sub.bindingSignatures[0] as unknown as Record<string, unknown>;
    const sig = new openpgp.SignaturePacket() as unknown as Record<string, unknown> & {
      sign(k: unknown, d: unknown, t: unknown, det: boolean, c: unknown): Promise<void>;
    };
    for (const k of [
      "signatureType",
      "hashAlgorithm",
      "publicKeyAlgorithm",
      "keyFlags",
      "created",
      "issuerKeyID",
      "issuerFingerprint",
      "issuerKeyVersion",
      "keyNeverExpires",
      "version",
    ])
      // prettier-ignore
      if (old[k] !== undefined) sig[k] = old[k];
    await sig.sign(
      privateKey.keyPacket,
      { key: privateKey.keyPacket, bind: kp },
      old.created,
      false,
      openpgp.config,
    );
    (sub as unknown as { bindingSignatures: unknown[] }).bindingSignatures = [sig];
    const hostile = Buffer.from(privateKey.toPublic().armor());
    const alice = await openpgp.generateKey({
      type: "ecc",
      userIDs: [{ email: "alice@victim.test" }],
      format: "object",
    });
    const route = {
      policy: "gateway",
      outbound: { openpgp: { webKeyDirectory: true, missingKey: "defer" } },
    } as unknown as Route;
    const sent: { to: string[]; body: string }[] = [];
    const out = await deliverOpenpgp(
      {
        queueId: "Q1",
        from: "alice@local.test",
        recipients: ["alice@victim.test", "mallory@evil.test"],
        message: bufferBody(Buffer.from("From: a@local.test\r\nSubject: s\r\n\r\nsecret\r\n")),
        route,
      },
      {
        openpgp: () => Promise.resolve({ keys: [alice.publicKey] }),
        wkd: (a) =>
          Promise.resolve(
            a === "mallory@evil.test"
              ? { kind: "found" as const, key: hostile, source: "fetched" as const, url: "https://x" }
              : { kind: "none" as const, reason: "404" },
          ),
      },
      async (r) => {
        sent.push({ to: r.recipients, body: (await r.message.load()).toString("latin1") });
        return [];
      },
    );
    assert.deepEqual(
      sent.map((s) => s.to),
      [["alice@victim.test"]],
      "alice gets her mail",
    );
    assert.match(sent[0]!.body, /-----BEGIN PGP MESSAGE-----/);
    assert.doesNotMatch(sent[0]!.body, /secret/);
    assert.deepEqual(
      out.map((o) => [o.address, o.outcome, o.code]),
      [["mallory@evil.test", "deferred", "OPENPGP_ENCRYPT_FAILED"]],
    );
  });
});
