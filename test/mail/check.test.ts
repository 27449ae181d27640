// The pre-flight check (`sealpost check`, issue 19 item 2) against real peers, each domain its own
// scenario (the check's --port is the scenario's server):
//   plain.test         unsigned zone, MX -> Postfix with a test-CA certificate  -> verify
//   verify.signed.test signed MX, no TLSA, same Postfix, checked without the CA -> required (no roots)
//   good.signed.test   signed MX, TLSA 3 1 1 of Postfix's key                   -> dane
//   sts.signed.test    MTA-STS enforce policy naming its MX (test server)       -> mta-sts
//   self.signed.test   Postfix with a self-signed certificate                   -> required
//   strip.signed.test  the STARTTLS-stripping proxy in front of Postfix         -> opportunistic
// and the relay's admin POST /check (the same check, run by a real relay for one of its policies'
// domains): refused without the token, for a domain no policy owns, and with a host or port in the
// request (it cannot be pointed at an arbitrary host:port).
import assert from "node:assert/strict";
import { X509Certificate, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCheckCli } from "../../relay/check/cli.js";
import { CheckReport } from "../../relay/contract/check.js";
import { spkiPin } from "../../relay/outbound/pins.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { sealpost } from "../support/cli.js";
import { startMtaStsServer, stsPolicy, type MtaStsServer } from "../support/mta-sts-server.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { freePort } from "../support/ports.js";
import { buildZone, startNsd, type Nsd } from "../support/signed-zone.js";
import { startStripProxy, type StripProxy } from "../support/strip-proxy.js";
import { startUnbound, type Unbound } from "../support/unbound.js";

let f: RelayFixture;
let good: PostfixPeer; // test-CA certificate
let self: PostfixPeer; // self-signed certificate
let proxy: StripProxy;
let nsd: Nsd;
let unbound: Unbound;
let sts: MtaStsServer;
let leafPin: string;
let leafSpkiHex: string;

const spkiHex = (pem: Buffer): string =>
  createHash("sha256")
    .update(new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" }))
    .digest("hex");

before(async () => {
  f = await relayFixture("check");
  const names = ["mx.plain.test", ...["verify", "good", "sts", "strip"].map((n) => `mx-${n}.signed.test`)];
  const leaf = await makeLeaf(f.ca, { cn: "mx.plain.test", dnsNames: names });
  const leafPem = await readFile(leaf.certFile);
  leafPin = spkiPin(new X509Certificate(leafPem).raw)!;
  leafSpkiHex = spkiHex(leafPem);
  good = await startPostfix({ domains: ["plain.test"], cert: leaf, hostname: "mx.plain.test" });
  // self-signed: a CA certificate presented as the server's own
  const selfCa = await makeCa(join(f.work, "self"), "mx-self.signed.test");
  self = await startPostfix({
    domains: ["self.signed.test"],
    cert: { certFile: selfCa.certFile, keyFile: selfCa.keyFile },
    hostname: "mx-self.signed.test",
  });
  proxy = await startStripProxy({ upstream: { host: good.host, port: good.port }, mode: "strip" });
  const stsLeaf = await makeLeaf(f.ca, {
    cn: "mta-sts.sts.signed.test",
    dnsNames: ["mta-sts.sts.signed.test"],
  });
  sts = await startMtaStsServer({
    cert: await readFile(stsLeaf.certFile),
    key: await readFile(stsLeaf.keyFile),
  });
  sts.setPolicy("sts.signed.test", stsPolicy("enforce", ["mx-sts.signed.test"]));
  const zones = [
    await buildZone(f.work, {
      origin: "signed.test",
      sign: true,
      records: [
        ...["verify", "good", "sts", "self", "strip"].flatMap((n) => [
          `${n} IN MX 10 mx-${n}.signed.test.`,
          `mx-${n} IN A 127.0.0.1`,
        ]),
        `_${good.port}._tcp.mx-good IN TLSA 3 1 1 ${leafSpkiHex}`,
        '_mta-sts.sts IN TXT "v=STSv1; id=20260101"',
        "mta-sts.sts IN A 127.0.0.1",
      ],
    }),
    await buildZone(f.work, {
      origin: "plain.test",
      sign: false,
      records: ["@ IN MX 10 mx.plain.test.", "mx IN A 127.0.0.1"],
    }),
  ];
  nsd = await startNsd(f.work, zones);
  unbound = await startUnbound(f.work, {
    stubs: zones.map((z) => ({ name: z.origin, addr: nsd.stubAddr })),
    trustAnchors: zones.flatMap((z) => (z.ds ? [z.ds] : [])),
    probe: "mx-good.signed.test",
  });
});

after(async () => {
  await f?.stop(() =>
    Promise.all([good?.stop(), self?.stop(), proxy?.stop(), sts?.close(), unbound?.stop(), nsd?.stop()]),
  );
});

async function check(domain: string, port: number, ca = true): Promise<CheckReport> {
  let out = "";
  let err = "";
  const args = [domain, "--json", "--dns", unbound.address, "--port", String(port), "--timeout", "20"];
  if (ca) args.push("--ca-file", f.ca.certFile, "--mta-sts-port", String(sts.port));
  const code = await runCheckCli(args, { out: (s) => (out += s), err: (s) => (err += s) });
  assert.equal(code, 0, err);
  return CheckReport.parse(JSON.parse(out));
}

describe("sealpost check against real peers", () => {
  it("verify: a CA-signed certificate carrying a name under the domain, insecure MX (no dane)", async () => {
    const r = await check("plain.test", good.port);
    assert.equal(r.mx.dnssec, "insecure");
    assert.deepEqual(r.mx.hosts, [{ name: "mx.plain.test", priority: 10 }]);
    const h = r.hosts[0]!;
    assert.equal(h.starttls, true);
    assert.deepEqual(h.versions, { "TLSv1.2": true, "TLSv1.3": true });
    assert.equal(h.tls?.version, "TLSv1.3");
    assert.equal(h.verifies, true);
    assert.equal(h.nameMatches, true);
    assert.deepEqual(h.names, ["plain.test", ".plain.test"]); // the MX name is not trusted: DNS unsigned
    assert.equal(h.chain[0]?.pin, leafPin);
    assert.ok(h.chain[0]?.sans.includes("DNS:mx.plain.test"));
    assert.equal(h.modes.dane.code, "DANE_REQUIRED");
    assert.equal(h.modes["mta-sts"].fallback, true);
    assert.equal(r.strictest, "verify");
    assert.deepEqual(r.pins, [leafPin]);
    assert.equal(r.minVersion, "TLSv1.3");
  });

  it("without the CA bundle the same server does not verify against the system roots: required", async () => {
    const r = await check("verify.signed.test", good.port, false);
    assert.equal(r.mx.dnssec, "secure");
    const h = r.hosts[0]!;
    assert.equal(h.verifies, false);
    assert.ok(h.verifyError);
    // delivery under verify asks no DNSSEC question: the MX name is never a verify name there
    assert.deepEqual(h.names, ["verify.signed.test", ".verify.signed.test"]);
    assert.equal(h.nameMatches, false);
    assert.equal(h.modes.verify.code, "TLS_VERIFY_FAILED");
    assert.equal(h.tlsa.status, "none");
    assert.equal(r.strictest, "required");
  });

  it("dane: a signed TLSA record matching the server's key", async () => {
    const r = await check("good.signed.test", good.port);
    const h = r.hosts[0]!;
    assert.equal(h.tlsa.status, "dane");
    assert.equal(h.tlsa.matches, true);
    assert.deepEqual(h.tlsa.records, [`3 1 1 ${leafSpkiHex}`]);
    assert.deepEqual(h.modes.dane, { ok: true, level: "dane" });
    assert.equal(r.strictest, "dane");
  });

  it("mta-sts: an enforce policy whose mx names the MX", async () => {
    const r = await check("sts.signed.test", good.port);
    assert.equal(r.mtaSts.id, "20260101");
    assert.equal(r.mtaSts.mode, "enforce");
    assert.deepEqual(r.mtaSts.mx, ["mx-sts.signed.test"]);
    assert.equal(r.hosts[0]!.mtaStsMatch, true);
    assert.equal(r.hosts[0]!.modes.dane.fallback, true); // no TLSA
    assert.equal(r.strictest, "mta-sts");
    assert.ok(sts.requests.includes("mta-sts.sts.signed.test"));
  });

  it("a self-signed certificate: required (encrypt), verify refused", async () => {
    const r = await check("self.signed.test", self.port);
    const h = r.hosts[0]!;
    assert.equal(h.starttls, true);
    assert.equal(h.verifies, false);
    assert.equal(h.modes.verify.code, "TLS_VERIFY_FAILED");
    assert.deepEqual(h.modes.required, { ok: true, level: "encrypt" });
    assert.equal(r.strictest, "required");
  });

  it("STARTTLS stripped by a proxy: opportunistic, and no mail was sent", async () => {
    const before = proxy.sessions;
    const r = await check("strip.signed.test", proxy.port);
    const h = r.hosts[0]!;
    assert.equal(h.starttls, false);
    assert.deepEqual(h.versions, { "TLSv1.2": false, "TLSv1.3": false });
    assert.equal(h.modes.required.code, "TLS_NOT_OFFERED");
    assert.equal(r.strictest, "opportunistic");
    assert.equal(r.pins, undefined);
    assert.ok(proxy.sessions > before);
    assert.equal(proxy.sawMailFrom, false);
    assert.equal(proxy.sawData, false);
    for (let s = before + 1; s <= proxy.sessions; s++) assert.deepEqual(proxy.commands(s), ["EHLO", "QUIT"]);
  });

  it("the text form names the strictest mode; a usage error exits 2", async () => {
    let out = "";
    const code = await runCheckCli(
      ["good.signed.test", "--dns", unbound.address, "--port", String(good.port), "--ca-file", f.ca.certFile],
      { out: (s) => (out += s), err: () => undefined },
    );
    assert.equal(code, 0);
    assert.match(out, /strictest mode that would succeed today: dane/);
    assert.match(out, /mx-good\.signed\.test/);
    const bad = await sealpost(["check", "not a domain"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a domain name/);
    const port = await sealpost(["check", "a.example", "--port", "0"]);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /--port must be/);
  });
});

describe("the relay's admin POST /check (the operator's way to ask)", () => {
  const TOKEN = "check-admin-token";
  let trap: Server; // a port the request tries to point the check at: nothing may connect to it
  let trapPort: number;
  let trapped = 0;

  before(async () => {
    trapPort = await freePort();
    trap = createServer((s) => {
      trapped++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(trapPort, "127.0.0.1", r));
    await f.configure(
      {
        admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
        dns: { servers: [unbound.address] },
        mtaSts: { caFile: "ca.crt", httpsPort: sts.port },
        policies: [
          {
            name: "mail/partner",
            domains: ["good.signed.test", "plain.test"],
            outbound: { tls: { mode: "opportunistic", caFile: "ca.crt" } },
          },
          { name: "mail/wild", domains: ["*.signed.test"], outbound: { tls: { mode: "opportunistic" } } },
        ],
      },
      { files: { "secrets/admin/token": `${TOKEN}\n`, "ca.crt": await readFile(f.ca.certFile) } },
    );
    await f.start({ mxPort: good.port });
  });

  after(() => new Promise<void>((r) => trap.close(() => r())));

  const post = (body: unknown, o: { token?: string | undefined; query?: string } = {}) =>
    fetch(`http://127.0.0.1:${f.ports.admin}/check${o.query ?? ""}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...("token" in o
          ? o.token
            ? { authorization: `Bearer ${o.token}` }
            : {}
          : { authorization: `Bearer ${TOKEN}` }),
      },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  it("checks a policy's own domain as the relay's delivery would (dns.servers, the policy's CA, MX port)", async () => {
    const res = await post({ policy: "mail/partner", domain: "good.signed.test" });
    assert.equal(res.status, 200);
    const r = CheckReport.parse(await res.json());
    assert.equal(r.strictest, "dane");
    assert.equal(r.hosts[0]!.port, good.port);
    assert.equal(r.hosts[0]!.verifies, true); // the policy's caFile
  });

  it("refuses without the token, or with a wrong one, before reading the request", async () => {
    assert.equal(
      (await post({ policy: "mail/partner", domain: "plain.test" }, { token: undefined })).status,
      401,
    );
    assert.equal(
      (await post({ policy: "mail/partner", domain: "plain.test" }, { token: "guess" })).status,
      401,
    );
  });

  it("refuses a domain that is not the named policy's own (another's, a wildcard's subdomain, any name)", async () => {
    for (const body of [
      { policy: "mail/partner", domain: "sts.signed.test" },
      { policy: "mail/wild", domain: "good.signed.test" },
      { policy: "mail/wild", domain: "verify.signed.test" },
      { policy: "mail/nope", domain: "plain.test" },
      { policy: "mail/partner", domain: "example.com" },
    ]) {
      const res = await post(body);
      assert.equal(res.status, 403, JSON.stringify(body));
    }
  });

  it("cannot be pointed at an arbitrary host:port, and is rate-limited", async () => {
    for (const body of [
      { policy: "mail/partner", domain: "plain.test", host: "127.0.0.1", port: trapPort },
      { policy: "mail/partner", domain: "plain.test", mx: `127.0.0.1:${trapPort}` },
      { policy: "mail/partner", domain: `127.0.0.1:${trapPort}` },
      "not json",
    ]) {
      const res = await post(body);
      assert.ok(res.status === 400 || res.status === 403, `${JSON.stringify(body)}: ${res.status}`);
    }
    // a query string is no way in either: the check goes to the MX at the relay's MX port
    const res = await post(
      { policy: "mail/partner", domain: "plain.test" },
      { query: `?host=127.0.0.1&port=${trapPort}` },
    );
    assert.equal(res.status, 200);
    const r = CheckReport.parse(await res.json());
    assert.deepEqual(
      r.hosts.map((h) => `${h.address}:${h.port}`),
      [`127.0.0.1:${good.port}`],
    );
    assert.equal(trapped, 0);
    // asked again at once: too soon
    const again = await post({ policy: "mail/partner", domain: "plain.test" });
    assert.equal(again.status, 429);
    assert.ok(again.headers.get("retry-after"));
    assert.equal(
      (
        await fetch(`http://127.0.0.1:${f.ports.admin}/check`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        })
      ).status,
      405,
    );
  });
});
