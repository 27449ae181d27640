// OpenPGP gateway encryption end to end: swaks -> relay -> Postfix, keys made by GnuPG, published in
// a Web Key Directory (HTTPS on loopback, certificate from the test CA, names from the test DNS) or
// given in a keyring file, and GnuPG (an independent OpenPGP implementation) decrypts what Postfix
// stored and gets back the exact MIME entity the sender wrote; the signed variant's signature
// verifies. A recipient with no key is deferred and nothing leaves. From the attacker's side: a
// directory that answers with a huge body, a key for another user ID, a redirect to http, to an
// internal address or to a metadata address gets nothing: the message is deferred and never sent
// in clear, although those policies say sendClear for recipients that publish no key. Nor does one
// forged DNS answer: a recipient who publishes a key by the advanced method while openpgpkey.<domain>
// answers NXDOMAIN (unsigned) or has no A record is deferred, not taken for keyless.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { startPostfix, type Message, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { readReceipts } from "../support/receipts.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { sampleMessage } from "../support/sample-mime.js";
import { swaks } from "../support/swaks.js";
import { startWkdServer, type WkdServer } from "../support/wkd-server.js";

const run = promisify(execFile);

let f: RelayFixture;
let dns: DnsServer;
let wkd: WkdServer;
let postfix: PostfixPeer;
let logs: LogCapture;
const homes: string[] = [];
let bobHome: string;
let carolHome: string;
let erinHome: string;
let relayFpr: string;

/** The attacker's directories: each answers the victim's lookup with something the relay must refuse. */
const HOSTILE = ["huge.test", "wronguid.test", "redirhttp.test", "redirinternal.test", "redirmeta.test"];
/** The victim publishes a key at openpgpkey.<domain>, but the attacker's DNS answer hides that host. */
const FORGED = { nxdomain: "nxpgp.test", nodata: "nodatapgp.test" } as const;
const DOMAINS = ["partner.test", "signed.test", ...HOSTILE, ...Object.values(FORGED)];

async function gpg(
  home: string,
  args: string[],
  input?: string,
): Promise<{ stdout: string; stderr: string }> {
  const p = run("gpg", ["--homedir", home, "--batch", "--no-tty", ...args], {
    maxBuffer: 16 * 1024 * 1024,
    encoding: "latin1",
  });
  if (input !== undefined) p.child.stdin?.end(input);
  return p;
}

/** A GnuPG home with one fresh key (ed25519 + cv25519) for `uid`; its fingerprint. */
async function gpgKey(name: string, uid: string): Promise<{ home: string; fpr: string }> {
  const home = join(f.work, `gnupg-${name}`);
  await mkdir(home, { mode: 0o700 });
  homes.push(home);
  await gpg(home, ["--passphrase", "", "--quick-gen-key", uid, "future-default", "default", "never"]);
  const listed = await gpg(home, ["--with-colons", "--list-keys"]);
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(listed.stdout)![1]!;
  return { home, fpr };
}

const exportKey = async (home: string, who: string, armor = false): Promise<Buffer> =>
  Buffer.from((await gpg(home, ["--export", ...(armor ? ["--armor"] : []), who])).stdout, "latin1");

/** GnuPG's own WKD URL for an address (gpg-wks-client): host and path. */
async function wkdUrl(address: string): Promise<{ host: string; path: string }> {
  const { stdout } = await run("/usr/lib/gnupg/gpg-wks-client", ["--print-wkd-url", address]);
  const u = new URL(stdout.trim());
  return { host: u.hostname, path: `${u.pathname}${u.search}` };
}

async function submit(
  to: string[],
  tag: string,
  /** The message's To: field (default: every recipient; the others are then Bcc). */
  headerTo = to.join(", "),
): Promise<{ id: string; entity: Buffer }> {
  const o = sampleMessage(tag, headerTo);
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to,
    data: o.data,
  });
  assert.equal(r.code, 0, r.transcript);
  return { id: r.queueId!, entity: o.entity };
}

async function delivered(tag: string, rcpt: string): Promise<Message> {
  return waitFor(
    `${tag} delivered to ${rcpt}`,
    async () =>
      (await postfix.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag && m.recipient === rcpt),
    30_000,
  );
}

/** gpg --decrypt of the PGP/MIME message Postfix stored: the entity's bytes and gpg's status lines. */
async function decrypt(m: Message, home: string): Promise<{ entity: Buffer; status: string }> {
  const armored = /-----BEGIN PGP MESSAGE-----[^]*?-----END PGP MESSAGE-----\r?\n/.exec(m.raw)?.[0];
  assert.ok(armored, "no OpenPGP message in the stored mail");
  const inFile = join(f.work, `in-${Math.random().toString(16).slice(2)}.asc`);
  const outFile = `${inFile}.out`;
  await writeFile(inFile, armored, "latin1");
  const { stdout } = await gpg(home, ["--status-fd", "1", "--output", outFile, "--decrypt", inFile]);
  return { entity: await readFile(outFile), status: stdout };
}

const pgpLog = (id: string, result: string) => () =>
  logs.find((l) => l.event === "openpgp" && l.queueId === id && l.result === result);

/** Two deferrals of the same message (the first and a retry), then nothing of it at Postfix. */
async function deferredTwiceNothingSent(
  id: string,
  tag: string,
  code: string,
): Promise<Record<string, unknown>> {
  const both = await waitFor(`two deferrals of ${tag}`, () => {
    const d = logs.lines.filter((l) => l.event === "openpgp" && l.queueId === id && l.result === "deferred");
    return d.length >= 2 ? d : undefined;
  });
  for (const d of both) assert.equal(d.code, code, JSON.stringify(d));
  const leaked = (await postfix.messages()).filter((m) => m.headers["x-test-id"]?.[0] === tag);
  assert.deepEqual(leaked, [], "the message left the relay");
  assert.equal(
    logs.lines.some((l) => l.event === "openpgp" && l.queueId === id && l.result === "sent-clear"),
    false,
  );
  return both[0]!;
}

before(async () => {
  f = await relayFixture("relay-openpgp", { caName: "Partner CA" });
  const hosts = DOMAINS.flatMap((d) => [`openpgpkey.${d}`, d]);
  const web = await makeLeaf(f.ca, { cn: "openpgpkey.partner.test", dnsNames: hosts, name: "wkd" });
  const mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  wkd = await startWkdServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  dns = await startDnsServer({
    ...Object.fromEntries(
      HOSTILE.concat("partner.test", "signed.test").map((d) => [`openpgpkey.${d}`, { A: ["127.0.0.1"] }]),
    ),
    // openpgpkey.nxpgp.test: NXDOMAIN (not DNSSEC-validated); openpgpkey.nodatapgp.test exists, no A
    [`openpgpkey.${FORGED.nodata}`]: { TXT: ["v=forged"] },
    ...Object.fromEntries(Object.values(FORGED).map((d) => [d, { A: ["127.0.0.1"] }])),
    // the redirect target's name is the domain itself, which points inside the cluster
    "redirinternal.test": { A: ["127.0.0.45"] },
  });
  postfix = await startPostfix({ domains: DOMAINS, tls: "require", cert: mx, hostname: "mx.partner.test" });

  let bobFpr: string;
  ({ home: bobHome, fpr: bobFpr } = await gpgKey("bob", "Bob <bob@partner.test>"));
  ({ home: carolHome } = await gpgKey("carol", "Carol <carol@partner.test>"));
  ({ home: erinHome } = await gpgKey("erin", "Erin <erin@signed.test>"));
  const relayKey = await gpgKey("relay", "Sealpost Relay <relay@local.test>");
  relayFpr = relayKey.fpr;
  const mallory = await gpgKey("mallory", "Mallory <mallory@evil.test>");
  assert.ok(bobFpr);
  // erin checks the relay's signature with its public key
  await gpg(
    erinHome,
    ["--import"],
    (await exportKey(relayKey.home, "relay@local.test", true)).toString("latin1"),
  );

  // bob publishes by WKD (advanced method), as GnuPG names it
  const bobUrl = await wkdUrl("bob@partner.test");
  wkd.set(bobUrl.host, bobUrl.path, { key: await exportKey(bobHome, "bob@partner.test") });
  // the hostile directories
  const victim = async (d: string) => wkdUrl(`victim@${d}`);
  const huge = await victim("huge.test");
  wkd.set(huge.host, huge.path, { hugeBytes: 8 * 1024 * 1024 });
  const wrong = await victim("wronguid.test");
  wkd.set(wrong.host, wrong.path, { key: await exportKey(mallory.home, "mallory@evil.test") });
  const http = await victim("redirhttp.test");
  wkd.set(http.host, http.path, { redirect: `http://${http.host}:${wkd.port}${http.path}` });
  const internal = await victim("redirinternal.test");
  wkd.set(internal.host, internal.path, { redirect: `https://redirinternal.test:${wkd.port}/k` });
  const meta = await victim("redirmeta.test");
  wkd.set(meta.host, meta.path, { redirect: "https://169.254.169.254/latest/meta-data/" });
  // published by the advanced method; the direct method (https://<domain>/...) answers 404
  for (const d of Object.values(FORGED)) {
    const v = await victim(d);
    const own = await gpgKey(`victim-${d.split(".")[0]}`, `Victim <victim@${d}>`);
    wkd.set(v.host, v.path, { key: await exportKey(own.home, `victim@${d}`) });
  }

  const nextHop = { host: postfix.host, port: postfix.port };
  const policies: NonNullable<RelayConfigInput["policies"]> = [
    {
      name: "partner/pgp",
      domains: ["partner.test"],
      outbound: {
        tls: { mode: "required" },
        nextHop,
        openpgp: {
          keyringFiles: ["secrets/partner-pgp/keys.asc"],
          webKeyDirectory: true,
          missingKey: "defer",
        },
      },
    },
    {
      name: "partner/pgp-signed",
      domains: ["signed.test"],
      outbound: {
        tls: { mode: "required" },
        nextHop,
        openpgp: {
          keyringFiles: ["secrets/signed-pgp/keys.asc"],
          signingKeyFile: "secrets/relay-pgp/key.asc",
        },
      },
    },
    ...[...HOSTILE, ...Object.values(FORGED)].map((d) => ({
      name: `hostile/${d}`,
      domains: [d],
      outbound: {
        tls: { mode: "required" as const },
        nextHop,
        // "no key published" would be sent in clear: a broken lookup must not count as that
        openpgp: { webKeyDirectory: true, missingKey: "sendClear" as const },
      },
    })),
  ];
  await f.configure(
    {
      dns: { servers: [dns.address] },
      // only the WKD server's and Postfix's address; 127.0.0.45 stands for the cluster's inside
      delivery: { allowedInternalCidrs: ["127.0.0.1/32"] },
      wkd: { caFile: "wkd/ca.crt", httpsPort: wkd.port },
      policies,
    },
    {
      files: {
        "wkd/ca.crt": await readFile(f.ca.certFile),
        "secrets/partner-pgp/keys.asc": await exportKey(carolHome, "carol@partner.test", true),
        "secrets/signed-pgp/keys.asc": await exportKey(erinHome, "erin@signed.test", true),
        "secrets/relay-pgp/key.asc": Buffer.from(
          (
            await gpg(relayKey.home, [
              "--pinentry-mode",
              "loopback",
              "--passphrase",
              "",
              "--export-secret-keys",
              "--armor",
              "relay@local.test",
            ])
          ).stdout,
          "latin1",
        ),
      },
    },
  );
  ({ logs } = await f.start());
});

after(async () => {
  await f?.stop(async () => {
    await Promise.all(
      homes.map((h) => run("gpgconf", ["--homedir", h, "--kill", "gpg-agent"]).catch(() => undefined)),
    );
    await Promise.all([dns?.stop(), wkd?.close(), postfix?.stop()]);
  });
});

describe("OpenPGP gateway encryption (PGP/MIME)", () => {
  it("a WKD-published key: arrives encrypted as RFC 3156 PGP/MIME; gpg --decrypt gives back the exact entity", async () => {
    const { id, entity } = await submit(["bob@partner.test"], "pgp-wkd");
    const m = await delivered("pgp-wkd", "bob@partner.test");
    const ct = m.headers["content-type"]?.[0] ?? "";
    assert.match(ct, /^multipart\/encrypted; protocol="application\/pgp-encrypted"; boundary="/);
    const boundary = /boundary="([^"]+)"/.exec(ct)![1]!;
    const parts = m.body.split(`--${boundary}`);
    assert.match(
      parts[1]!,
      /^\r?\nContent-Type: application\/pgp-encrypted\r?\n[^]*\r?\n\r?\nVersion: 1\r?\n/,
    );
    assert.match(parts[2]!, /^\r?\nContent-Type: application\/octet-stream[^]*-----BEGIN PGP MESSAGE-----/);
    assert.equal(parts[3]?.trim(), "--");
    // routing headers outside, content headers and body inside only
    assert.equal(m.headers.subject?.[0], "quarterly pgp-wkd");
    assert.equal(m.headers["message-id"]?.[0], "<pgp-wkd@local.test>");
    assert.equal(m.headers["content-language"], undefined);
    assert.doesNotMatch(m.raw, /secret number|data\.bin|multipart\/mixed/);
    const { entity: got, status } = await decrypt(m, bobHome);
    assert.deepEqual(got, entity);
    assert.match(status, /DECRYPTION_OKAY/);
    const l = await waitFor("openpgp log", pgpLog(id, "encrypted"));
    assert.deepEqual(
      (l.keys as { source: string }[]).map((k) => k.source),
      ["wkd"],
    );
    assert.ok(
      wkd.requests.some((r) =>
        r.startsWith("openpgpkey.partner.test/.well-known/openpgpkey/partner.test/hu/"),
      ),
    );
  });

  it("a keyring from a Secret and a WKD key in one message: each recipient decrypts the same entity", async () => {
    const { id, entity } = await submit(["bob@partner.test", "carol@partner.test"], "pgp-ring");
    const forBob = await delivered("pgp-ring", "bob@partner.test");
    const forCarol = await delivered("pgp-ring", "carol@partner.test");
    assert.equal(forBob.body, forCarol.body);
    assert.deepEqual((await decrypt(forCarol, carolHome)).entity, entity);
    assert.deepEqual((await decrypt(forBob, bobHome)).entity, entity);
    const l = await waitFor("openpgp log", pgpLog(id, "encrypted"));
    assert.deepEqual(
      (l.keys as { address: string; source: string }[]).map((k) => `${k.address}:${k.source}`).sort(),
      ["bob@partner.test:wkd", "carol@partner.test:keyring"],
    );
    // each recipient's encryption receipt names the key it was encrypted to and where it came from
    const keys = l.keys as { address: string; fingerprint: string; source: string }[];
    for (const to of ["bob@partner.test", "carol@partner.test"]) {
      const r = await waitFor(`receipt for ${to}`, async () =>
        (await readReceipts(join(f.work, "queue"))).find((x) => x.queueId === id && x.to === to),
      );
      const k = keys.find((x) => x.address === to)!;
      assert.deepEqual(r.openpgp, {
        signed: false,
        recipientKeyFingerprint: k.fingerprint,
        keySource: k.source,
      });
    }
    const metrics = await f.relay!.metrics.registry.metrics();
    assert.match(
      metrics,
      /sealpost_relay_openpgp_recipients_total\{policy="partner\/pgp",result="encrypted"\} [3-9]/,
    );
  });

  it("attack (session 15): a Bcc recipient gets its own message; no copy names another recipient's key", async () => {
    // an OpenPGP message names the id of every key it is encrypted to: one message for both showed
    // bob that carol had a copy, though the sender put her in Bcc
    const { entity } = await submit(
      ["bob@partner.test", "carol@partner.test"],
      "pgp-bcc",
      "bob@partner.test",
    );
    const forBob = await delivered("pgp-bcc", "bob@partner.test");
    const forCarol = await delivered("pgp-bcc", "carol@partner.test");
    assert.notEqual(forBob.body, forCarol.body, "one ciphertext for both: each copy names both keys");
    assert.deepEqual((await decrypt(forBob, bobHome)).entity, entity);
    assert.deepEqual((await decrypt(forCarol, carolHome)).entity, entity);
    await assert.rejects(decrypt(forBob, carolHome), "bob's copy is encrypted to carol's key too");
  });

  it("signed inside the encryption (RFC 3156 section 6.2): gpg verifies the relay's signature and recovers the entity", async () => {
    const { id, entity } = await submit(["erin@signed.test"], "pgp-signed");
    const m = await delivered("pgp-signed", "erin@signed.test");
    const { entity: got, status } = await decrypt(m, erinHome);
    assert.deepEqual(got, entity);
    assert.match(status, /^\[GNUPG:\] GOODSIG /m);
    assert.match(status, new RegExp(`^\\[GNUPG:\\] VALIDSIG \\S+ .* ${relayFpr}$`, "m"));
    await waitFor("openpgp log", pgpLog(id, "signed-encrypted"));
  });

  it("attack: a From: the envelope sender's domain does not vouch for is encrypted, not signed with the relay's key", async () => {
    const o = sampleMessage("pgp-forged", "erin@signed.test", "Bank CEO <ceo@bank.test>");
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "alice@local.test",
      to: ["erin@signed.test"],
      data: o.data,
    });
    assert.equal(r.code, 0, r.transcript);
    const m = await delivered("pgp-forged", "erin@signed.test");
    const { entity, status } = await decrypt(m, erinHome);
    assert.deepEqual(entity, o.entity);
    assert.doesNotMatch(status, /GOODSIG/, "signed by the relay for a From: it does not vouch for");
    const l = await waitFor("openpgp log", pgpLog(r.queueId!, "encrypted"));
    assert.match(String(l.notSigned), /envelope sender domain local\.test is not bank\.test/);
  });

  it("no key in the keyring nor in WKD (404) with missingKey defer: deferred 4.7.5, nothing leaves", async () => {
    const { id } = await submit(["dave@partner.test"], "pgp-nokey");
    const d = await deferredTwiceNothingSent(id, "pgp-nokey", "OPENPGP_NO_KEY");
    assert.match(String(d.reason), /no key published/);
  });
});

describe("OpenPGP WKD from the attacker's side: refused, deferred, never sent in clear", () => {
  for (const [domain, why] of [
    ["huge.test", /answer larger than/],
    ["wronguid.test", /no key with a user ID for victim@wronguid\.test/],
    ["redirhttp.test", /redirect to http: refused/],
    ["redirinternal.test", /redirinternal\.test: address 127\.0\.0\.45 refused \(loopback address\)/],
    ["redirmeta.test", /redirect to 169\.254\.169\.254 refused/],
  ] as const) {
    it(`${domain}: ${String(why)}`, async () => {
      const tag = `pgp-${domain.split(".")[0]}`;
      const { id } = await submit([`victim@${domain}`], tag);
      const d = await deferredTwiceNothingSent(id, tag, "OPENPGP_KEY_LOOKUP_FAILED");
      assert.match(String(d.reason), why);
    });
  }
  for (const [domain, why] of [
    [FORGED.nxdomain, /no key at https:\/\/nxpgp\.test\/.* not DNSSEC-validated/],
    [FORGED.nodata, /openpgpkey\.nodatapgp\.test: DNS ENODATA/],
  ] as const) {
    it(`sendClear, a key published but openpgpkey.${domain} hidden by DNS: deferred, nothing leaves`, async () => {
      const tag = `pgp-${domain.split(".")[0]}`;
      const { id } = await submit([`victim@${domain}`], tag);
      const d = await deferredTwiceNothingSent(id, tag, "OPENPGP_KEY_LOOKUP_FAILED");
      assert.match(String(d.reason), why);
    });
  }
});
