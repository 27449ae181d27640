// Regression (review of the suite list's use in check, round 7), from the partner's side of the wire:
// `sealpost check` judged a mandatory mode by the suite its probe negotiated while the probe offered
// Node's broad list, not what mandatory delivery offers. A server that picks by its own order picks
// from what it was offered: a good partner (TLS 1.2, its own order, RSA-key-transport AES256-GCM
// first and ECDHE-RSA-AES256-GCM second) that delivery under verify reaches was reported as failing
// every mandatory mode. The probe now offers the mandatory list first (relay/check/run.ts). The case
// first shows, with delivery's own plan (planTransport) through nodemailer, what delivery gets.
// The opportunistic verdict, in turn, is judged on what opportunistic delivery's broad offer gets (a
// partner choosing a 1024-bit DHE suite from it is refused: no mode "may" for it). (Shadow mode cannot make a second handshake: a session made under an opportunistic policy's broad
// offer on a suite off the list counts as would-fail there, on the safe side; tls-audit.ts.)
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { TLSSocket } from "node:tls";
import { runCheck } from "../../relay/check/run.js";
import type { SecureDns } from "../../relay/outbound/dnssec.js";
import type { Dns } from "../../relay/outbound/mx.js";
import { planTransport } from "../../relay/outbound/transport-options.js";
import { makeCa, makeLeaf, type Ca } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";

let work: string;
let ca: Ca;
let pref: PostfixPeer;
/** TLS 1.2, its own order: DHE-RSA-AES256-SHA256 (CBC) with a 1024-bit group first, ECDHE-RSA-AES256-GCM second. */
let opp: PostfixPeer;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "check-offer-"));
  ca = await makeCa(join(work, "ca"), "Partner CA");
  const mx1 = await makeLeaf(ca, { cn: "mx.pref.test", dnsNames: ["mx.pref.test"], name: "mx1", rsa: true });
  // a TLS 1.2 partner with its own order (tls_preempt_cipherlist): AES256-GCM (RSA key transport)
  // first, ECDHE-RSA-AES256-GCM second. Delivery offers only the second and gets it.
  pref = await startPostfix({
    domains: ["pref.test"],
    tls: "require",
    cert: mx1,
    hostname: "mx.pref.test",
    tlsProtocols: "<=TLSv1.2",
    config: {
      tls_preempt_cipherlist: "yes",
      tls_high_cipherlist: "AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
      smtpd_tls_ciphers: "high",
      smtpd_tls_mandatory_ciphers: "high",
    },
  });
  const mx2 = await makeLeaf(ca, { cn: "mx.opp.test", dnsNames: ["mx.opp.test"], name: "mx2", rsa: true });
  const dh = join(work, "dh1024.pem");
  await promisify(execFile)("openssl", ["dhparam", "-out", dh, "1024"]);
  opp = await startPostfix({
    domains: ["opp.test"],
    tls: "offer",
    cert: mx2,
    hostname: "mx.opp.test",
    tlsProtocols: "<=TLSv1.2",
    config: {
      tls_preempt_cipherlist: "yes",
      tls_high_cipherlist: "DHE-RSA-AES256-SHA256:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0",
      smtpd_tls_ciphers: "high",
      smtpd_tls_mandatory_ciphers: "high",
      smtpd_tls_dh1024_param_file: dh,
    },
  });
});

after(async () => {
  await opp?.stop();
  await pref?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Delivery's own connection under `level` (planTransport through nodemailer): the suite, or the error. */
async function deliveryHandshake(
  name: string,
  port: number,
  level: "verify" | "may" = "verify",
): Promise<{ suite?: string; error?: string }> {
  const plan = planTransport(
    {
      ok: true,
      level,
      names: level === "verify" ? [name] : [],
      tlsa: [],
      pins: [],
      auth: false,
      stsEnforced: false,
      relaxed: false,
      why: "test",
    },
    "TLSv1.2",
    { name, address: "127.0.0.1", port },
    { ca: await readFile(ca.certFile) },
    "relay.test",
  );
  assert.ok(plan.ok);
  const conn = new SMTPConnection(plan.value.options);
  return new Promise((resolve) => {
    conn.once("error", (e: Error) => resolve({ error: e.message }));
    conn.connect(() => {
      const s = (conn as unknown as { _socket: TLSSocket })._socket;
      const suite = conn.secure ? s.getCipher().name : "clear";
      conn.quit();
      resolve({ suite });
    });
  });
}

function deps(domain: string, mx: string, port: number) {
  const dns = {
    resolveMx: () => Promise.resolve([{ exchange: mx, priority: 10 }]),
    resolve4: (n: string) =>
      n.replace(/\.$/, "") === mx ? Promise.resolve(["127.0.0.1"]) : Promise.reject(new Error("none")),
    resolve6: () => Promise.reject(Object.assign(new Error("no AAAA"), { code: "ENODATA" })),
  } as unknown as Dns;
  const secureDns: SecureDns = {
    query: (name, type) =>
      Promise.resolve({
        rcode: "NOERROR",
        secure: false,
        finalName: name,
        answers: type === "MX" ? [{ type: "MX", name, data: { exchange: mx, preference: 10 } }] : [],
      } as never),
  };
  return async () =>
    runCheck(domain, {
      dns,
      secureDns,
      sts: () => Promise.resolve({ source: "none" }),
      port,
      probe: { ehloName: "relay.test", timeoutMs: 20_000, ca: await readFile(ca.certFile) },
    });
}

describe("sealpost check judges a suite delivery's offer would not have produced", () => {
  it("a partner delivery reaches under verify is reported as meeting verify", async () => {
    const d = await deliveryHandshake("mx.pref.test", pref.port);
    assert.equal(d.suite, "ECDHE-RSA-AES256-GCM-SHA384", `delivery under verify: ${JSON.stringify(d)}`);
    const r = await deps("pref.test", "mx.pref.test", pref.port)();
    const h = r.hosts[0]!;
    assert.equal(
      (h.modes as Record<string, { ok?: boolean }>).verify?.ok,
      true,
      `check says verify fails (${JSON.stringify((h.modes as Record<string, unknown>).verify)}; session ` +
        `${JSON.stringify(h.tls)}), while delivery under verify got ${d.suite}`,
    );
  });

  // the review of the probe order, round 7: the opportunistic verdict was judged on the mandatory
  // offer's session, one opportunistic delivery (Node's broad list) never gets
  it("a partner opportunistic delivery cannot reach is not reported as meeting opportunistic", async () => {
    const v = await deliveryHandshake("mx.opp.test", opp.port);
    assert.equal(v.suite, "ECDHE-RSA-AES256-GCM-SHA384", `delivery under verify: ${JSON.stringify(v)}`);
    const m = await deliveryHandshake("mx.opp.test", opp.port, "may");
    assert.ok(m.error, `delivery under may fails (the 1024-bit group): ${JSON.stringify(m)}`);
    const h = (await deps("opp.test", "mx.opp.test", opp.port)()).hosts[0]!;
    const modes = h.modes as Record<string, { ok?: boolean; code?: string }>;
    assert.equal(modes.opportunistic?.ok, false, JSON.stringify(modes.opportunistic));
    assert.equal(modes.opportunistic?.code, "TLS_HANDSHAKE_FAILED");
    assert.equal(modes.verify?.ok, true, JSON.stringify(modes.verify));
  });
});
