// Attack (review of the mandatory suite list, round 7), from the partner's side of the wire:
// mandatory TLS offers only AEAD suites with forward secrecy (relay/outbound/cipher-suites.ts), so a
// partner MX that speaks only TLS 1.2 AES128-SHA is deferred under verify
// (test/mail/relay-mandatory-ciphers.test.ts). The pre-flight check (`sealpost check`) shook hands with
// Node's default list and judged no suite: it reported that very partner as "verify would succeed
// today", and an administrator switching the policy on its word would have every message deferred.
// It now judges mandatory modes by the suite too (relay/check/run.ts sessionOf).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCheck } from "../../relay/check/run.js";
import type { SecureDns } from "../../relay/outbound/dnssec.js";
import type { Dns } from "../../relay/outbound/mx.js";
import { makeCa, makeLeaf, type Ca } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";

let work: string;
let ca: Ca;
let partner: PostfixPeer;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "check-ciphers-"));
  ca = await makeCa(join(work, "ca"), "Partner CA");
  const mx = await makeLeaf(ca, { cn: "mx.weak.test", dnsNames: ["mx.weak.test"], name: "mx", rsa: true });
  // the same partner as relay-mandatory-ciphers.test.ts: TLS 1.2 with AES128-SHA only
  partner = await startPostfix({
    domains: ["weak.test"],
    tls: "require",
    cert: mx,
    hostname: "mx.weak.test",
    tlsProtocols: "<=TLSv1.2",
    config: {
      tls_high_cipherlist: "AES128-SHA",
      smtpd_tls_ciphers: "high",
      smtpd_tls_mandatory_ciphers: "high",
    },
  });
});

after(async () => {
  await partner?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("attack: sealpost check judges with the suites delivery offers", () => {
  it("a partner speaking only AES128-SHA is not reported as meeting a mandatory mode", async () => {
    // weak.test: MX mx.weak.test -> 127.0.0.1, unsigned zone, no MTA-STS
    const dns = {
      resolveMx: () => Promise.resolve([{ exchange: "mx.weak.test", priority: 10 }]),
      resolve4: (n: string) =>
        n.replace(/\.$/, "") === "mx.weak.test"
          ? Promise.resolve(["127.0.0.1"])
          : Promise.reject(new Error("none")),
      resolve6: () => Promise.reject(Object.assign(new Error("no AAAA"), { code: "ENODATA" })),
    } as unknown as Dns;
    const secureDns: SecureDns = {
      query: (name, type) =>
        Promise.resolve({
          rcode: "NOERROR",
          secure: false,
          finalName: name,
          answers:
            type === "MX" ? [{ type: "MX", name, data: { exchange: "mx.weak.test", preference: 10 } }] : [],
        } as never),
    };
    const r = await runCheck("weak.test", {
      dns,
      secureDns,
      sts: () => Promise.resolve({ source: "none" }),
      port: partner.port,
      probe: { ehloName: "relay.test", timeoutMs: 20_000, ca: await readFile(ca.certFile) },
    });
    const h = r.hosts[0]!;
    const mandatory = ["required", "verify", "dane", "mta-sts", "pinned"];
    const passing = Object.entries(h.modes)
      .filter(([m, v]) => mandatory.includes(m) && (v as { ok?: boolean }).ok === true)
      .map(([m]) => m);
    assert.ok(
      !mandatory.includes(r.strictest ?? ""),
      `check says "${r.strictest}" would succeed (session ${JSON.stringify(h.tls)}; ` +
        `modes passing: ${passing.join(", ")}; pins offered: ${JSON.stringify(r.pins ?? [])}), ` +
        `but delivery under any mandatory mode offers no suite this partner speaks and defers`,
    );
    assert.equal(r.pins, undefined, "pins offered for a partner a pinned policy cannot reach");
  });
});
