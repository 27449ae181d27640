// Shadow mode for every stricter target (issue 19 item 1): dane, mta-sts, a raised minVersion and
// pins, each audited on live sessions with real peers while opportunistic TLS stays enforced. Three
// partner domains in a DNSSEC-signed zone (ldns-signzone, NSD, validated by unbound), each with its
// own real Postfix MX (127.0.0.1, .2, .3 on one port); mx.c is the host that fails each target:
//   dane      TLSA of mx.c names another key                      -> DANE_TLSA_MISMATCH
//   mta-sts   c's enforce policy lists mx.elsewhere.test only     -> MTA_STS_MX_MISMATCH
//   TLSv1.3   mx.c's Postfix speaks TLSv1.2 at most               -> TLS_HANDSHAKE_FAILED
//   pins      mx.c rotated its key: the pinned one is the old key -> TLS_PIN_MISMATCH
// Every message is delivered (audit never makes mail weaker), the would-fail counts name exactly
// mx.c, each message took exactly one connection to its MX (the verdict is read off the session that
// carried the mail; only the MTA-STS policy fetch and the DNSSEC lookups look elsewhere), and the
// transport security report counts the deliveries as encrypted.
import assert from "node:assert/strict";
import { X509Certificate, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { spkiPin } from "../../relay/outbound/pins.js";
import { makeLeaf, type Leaf } from "../support/certs.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture } from "../support/relay.js";
import { buildZone, startNsd, type Nsd } from "../support/signed-zone.js";
import { swaks } from "../support/swaks.js";
import { startUnbound, type Unbound } from "../support/unbound.js";

type AuditInput = NonNullable<NonNullable<RelayConfigInput["policies"]>[number]["outbound"]["tls"]>["audit"];

type TlsInput = NonNullable<RelayConfigInput["policies"]>[number]["outbound"]["tls"];

const NAMES = ["a", "b", "c"] as const;
const DOMAINS = NAMES.map((n) => `${n}.signed.test`);
const ADDRESS = { a: "127.0.0.1", b: "127.0.0.2", c: "127.0.0.3" } as const;

let f: RelayFixture;
let logs: LogCapture;
let nsd: Nsd;
let unbound: Unbound;
let sts: MtaStsServer;
const mx: Record<string, PostfixPeer> = {};
let pins: string[];

const spkiHex = (pem: Buffer): string =>
  createHash("sha256")
    .update(new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" }))
    .digest("hex");

before(async () => {
  f = await relayFixture("relay-tls-audit-modes", { caName: "Partner CA" });
  // one at a time: openssl's -CAcreateserial rewrites the CA's serial file
  const leaf: Record<string, Leaf> = {};
  for (const n of NAMES)
    leaf[n] = await makeLeaf(f.ca, { cn: `mx.${n}.signed.test`, dnsNames: [`mx.${n}.signed.test`] });
  // mx.c's key before its rotation: what the TLSA record and the pins still name
  const cOld = await makeLeaf(f.ca, {
    cn: "mx.c.signed.test",
    name: "mx-c-old",
    dnsNames: ["mx.c.signed.test"],
  });
  const pem = async (n: "a" | "b" | "c") => readFile(leaf[n]!.certFile);
  pins = [
    spkiPin(new X509Certificate(await pem("a")).raw)!,
    spkiPin(new X509Certificate(await pem("b")).raw)!,
  ];
  pins.push(spkiPin(new X509Certificate(await readFile(cOld.certFile)).raw)!);
  mx.a = await startPostfix({
    domains: [DOMAINS[0]!],
    tls: "offer",
    cert: leaf.a,
    hostname: "mx.a.signed.test",
  });
  const port = mx.a.port;
  for (const n of ["b", "c"] as const)
    mx[n] = await startPostfix({
      domains: [`${n}.signed.test`],
      tls: "offer",
      cert: leaf[n],
      hostname: `mx.${n}.signed.test`,
      listen: { host: ADDRESS[n], port },
      // mx.c: a partner without TLSv1.3
      ...(n === "c" ? { tlsProtocols: "<=TLSv1.2" } : {}),
      config: { inet_interfaces: "all" },
    });
  const web = await makeLeaf(f.ca, { cn: "mta-sts", dnsNames: DOMAINS.map((d) => `mta-sts.${d}`) });
  sts = await startMtaStsServer({ cert: await readFile(web.certFile), key: await readFile(web.keyFile) });
  sts.setPolicy("a.signed.test", stsPolicy("enforce", ["mx.a.signed.test"]));
  sts.setPolicy("b.signed.test", stsPolicy("enforce", ["*.b.signed.test"]));
  sts.setPolicy("c.signed.test", stsPolicy("enforce", ["mx.elsewhere.test"]));
  const zone = await buildZone(f.work, {
    origin: "signed.test",
    sign: true,
    records: NAMES.flatMap((n) => [
      `${n} IN MX 10 mx.${n}.signed.test.`,
      `mx.${n} IN A ${ADDRESS[n]}`,
      `_mta-sts.${n} IN TXT "v=STSv1; id=20260101T000000;"`,
      `mta-sts.${n} IN A 127.0.0.1`,
    ]).concat([
      `_${port}._tcp.mx.a IN TLSA 3 1 1 ${spkiHex(await pem("a"))}`,
      `_${port}._tcp.mx.b IN TLSA 3 1 1 ${spkiHex(await pem("b"))}`,
      `_${port}._tcp.mx.c IN TLSA 3 1 1 ${spkiHex(await readFile(cOld.certFile))}`,
    ]),
  });
  nsd = await startNsd(f.work, [zone]);
  unbound = await startUnbound(f.work, {
    stubs: [{ name: zone.origin, addr: nsd.stubAddr }],
    trustAnchors: zone.ds ? [zone.ds] : [],
    probe: "mx.a.signed.test",
  });
  await configure("p/none", undefined);
  ({ logs } = await f.start({ mxPort: port }));
});

after(async () => {
  await f?.stop(() =>
    Promise.all([...Object.values(mx).map((p) => p.stop()), unbound?.stop(), nsd?.stop(), sts?.close()]),
  );
});

async function configure(
  name: string,
  audit: AuditInput,
  tls: TlsInput = { mode: "opportunistic" },
): Promise<void> {
  await f.configure(
    {
      dns: { servers: [unbound.address] },
      mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
      policies: [{ name, domains: DOMAINS, outbound: { tls: { ...tls, ...(audit ? { audit } : {}) } } }],
    },
    { files: { "ca.crt": await readFile(f.ca.certFile) } },
  );
  await f.relay?.checkConfig();
}

const connections = (p: PostfixPeer): number => (p.log().match(/ connect from /g) ?? []).length;

async function submit(n: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to: `bob@${n}.signed.test`,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const delivered = (n: string, tag: string) =>
  waitFor(
    `${tag} delivered`,
    async () => (await mx[n]!.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag),
    30_000,
  );

/** One message to each domain under `name` audited as `audit`; the audit and report figures after. */
async function trial(name: string, audit: AuditInput) {
  await configure(name, audit);
  const before = Object.fromEntries(NAMES.map((n) => [n, connections(mx[n]!)]));
  await Promise.all(
    NAMES.map(async (n) => {
      const tag = `${name}-${n}`;
      await submit(n, tag);
      // delivered under the enforced opportunistic policy whatever the audited one says
      await delivered(n, tag);
    }),
  );
  const audited = await waitFor("audit figures", () => {
    const a = f.relay!.status().audit?.[name];
    return a && a.evaluated === 3 ? a : undefined;
  });
  // one connection per message: the audited verdict needed no second look at the partner's MX
  for (const n of NAMES) assert.equal(connections(mx[n]!) - before[n]!, 1, `connections to mx.${n}`);
  const report = f.relay!.status().report?.[name];
  for (const d of DOMAINS)
    assert.deepEqual(report?.domains[d], { delivered: { encrypted: 1 }, deferred: {}, bounced: {} });
  return audited;
}

function onlyMxC(a: Awaited<ReturnType<typeof trial>>, code: string): void {
  assert.deepEqual(a.wouldFail, { [code]: 1 });
  assert.deepEqual(a.hosts["mx.c.signed.test"], { evaluated: 1, wouldFail: { [code]: 1 } });
  assert.deepEqual(a.hosts["mx.a.signed.test"], { evaluated: 1, wouldFail: {} });
  assert.deepEqual(a.hosts["mx.b.signed.test"], { evaluated: 1, wouldFail: {} });
  const line = logs.find((l) => l.event === "tls-audit" && l.code === code);
  assert.equal(line?.host, "mx.c.signed.test");
}

describe("shadow mode for every stricter target, on live sessions with real peers", () => {
  it("audit dane: only mx.c, whose TLSA record names another key, would fail (DANE_TLSA_MISMATCH)", async () => {
    onlyMxC(await trial("p/dane", { mode: "dane" }), "DANE_TLSA_MISMATCH");
  });

  it("audit mta-sts: only mx.c, outside its domain's enforce policy, would fail (MTA_STS_MX_MISMATCH)", async () => {
    onlyMxC(await trial("p/sts", { mode: "mta-sts", caFile: "ca.crt" }), "MTA_STS_MX_MISMATCH");
  });

  it("audit minVersion TLSv1.3: only mx.c, a TLSv1.2 Postfix, would fail (TLS_HANDSHAKE_FAILED)", async () => {
    onlyMxC(await trial("p/tls13", { mode: "required", minVersion: "TLSv1.3" }), "TLS_HANDSHAKE_FAILED");
  });

  it("audit pins: only mx.c, whose key changed, would fail (TLS_PIN_MISMATCH)", async () => {
    onlyMxC(await trial("p/pins", { mode: "pinned", pins }), "TLS_PIN_MISMATCH");
  });
});

/**
 * The audited target enforced under `name`: mail to a and b is delivered at `level`, mail to c is
 * deferred with the code shadow mode predicted (at `nextHop`: null when the domain's only MX is
 * refused before any connection), and the report says so.
 */
async function enforce(
  name: string,
  tls: TlsInput,
  code: string,
  level: string,
  nextHop: string | null = "mx.c.signed.test",
): Promise<void> {
  await configure(name, undefined, tls);
  const ids = Object.fromEntries(
    await Promise.all(NAMES.map(async (n) => [n, await submit(n, `${name}-${n}`)] as const)),
  );
  await delivered("a", `${name}-a`);
  await delivered("b", `${name}-b`);
  const l = await waitFor(
    "c deferred",
    () => logs.find((x) => x.event === "delivery" && x.queueId === ids.c && x.result === "deferred"),
    30_000,
  );
  assert.equal(l.code, code);
  assert.equal(l.nextHop ?? null, nextHop);
  assert.equal(
    (await mx.c!.messages()).find((m) => m.headers["x-test-id"]?.[0] === `${name}-c`),
    undefined,
  );
  const report = await waitFor("report", () => {
    const r = f.relay!.status().report?.[name];
    return r?.domains["c.signed.test"]?.deferred[code] && r.domains["b.signed.test"] ? r : undefined;
  });
  for (const d of ["a.signed.test", "b.signed.test"])
    assert.deepEqual(report.domains[d], { delivered: { [level]: 1 }, deferred: {}, bounced: {} });
  assert.deepEqual(Object.keys(report.domains["c.signed.test"]!.deferred), [code]);
  assert.deepEqual(report.domains["c.signed.test"]!.delivered, {});
}

// after every shadow-mode trial: mx.c's deferred mail is retried (under whichever policy is current)
describe("switching each target to enforce defers exactly mx.c's mail, with the code shadow mode named", () => {
  it("dane: a and b delivered at level dane, c deferred DANE_TLSA_MISMATCH", async () => {
    await enforce("p/dane-on", { mode: "dane" }, "DANE_TLSA_MISMATCH", "dane");
  });

  it("mta-sts: a and b delivered at level mta-sts, c deferred MTA_STS_MX_MISMATCH", async () => {
    await enforce("p/sts-on", { mode: "mta-sts", caFile: "ca.crt" }, "MTA_STS_MX_MISMATCH", "mta-sts", null);
  });

  it("TLSv1.3: a and b delivered encrypted, c deferred TLS_HANDSHAKE_FAILED", async () => {
    await enforce(
      "p/tls13-on",
      { mode: "required", minVersion: "TLSv1.3" },
      "TLS_HANDSHAKE_FAILED",
      "encrypted",
    );
  });

  it("pins: a and b delivered at level pinned, c deferred TLS_PIN_MISMATCH", async () => {
    await enforce("p/pins-on", { mode: "pinned", pins }, "TLS_PIN_MISMATCH", "pinned");
  });
});
