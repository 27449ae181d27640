// The secure fallback route's decision (relay/outbound/fallback.ts) and the fallback session's TLS
// requirement (tls-policy.ts fallbackTls): which failures trigger it (only the TLS requirement's,
// on every hop tried), what a REQUIRETLS message gets, and that no fallback is ever below TLS unless
// the policy says so, nor below an authenticated peer for a route; and which bytes each fallback
// sends (fallback-delivery.ts): smime signs its encryption again, route keeps the signed bytes.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TlsFallback, type OutboundTls } from "../../relay/contract/config.js";
import { FAILURE_CODES } from "../../relay/contract/failure.js";
import {
  decideFallback,
  fallbackRoute,
  TLS_REQUIREMENT_FAILURES,
  type AttemptOutcome,
} from "../../relay/outbound/fallback.js";
import { withFallback, type FallbackResult } from "../../relay/outbound/fallback-delivery.js";
import type { Batch } from "../../relay/outbound/message-transforms.js";
import type { Route } from "../../relay/outbound/route.js";
import { loadCertificates, type RecipientCertificate } from "../../relay/outbound/smime.js";
import { bufferBody, type MessageBody } from "../../relay/queue/message-body.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { fallbackTls, resolveTlsPolicy } from "../../relay/outbound/tls-policy.js";

const smime = TlsFallback.parse({ action: "smime", smime: { certificateFiles: ["secrets/c/certs.pem"] } });
const smimeClear = TlsFallback.parse({
  action: "smime",
  session: "opportunistic",
  smime: { certificateFiles: ["secrets/c/certs.pem"] },
});
const route = TlsFallback.parse({
  action: "route",
  nextHop: { host: "portal.example" },
  tls: { mode: "verify", caFile: "configmaps/portal-ca/ca.crt" },
}) as Extract<TlsFallback, { action: "route" }>;

const deferred = (code: string, hopCodes?: string[], address = "bob@partner.example"): AttemptOutcome => ({
  address,
  outcome: "deferred",
  code,
  ...(hopCodes ? { hopCodes } : {}),
});

describe("fallback.ts: when a fallback applies", () => {
  it("every hop failed the TLS requirement: the policy's fallback, for those recipients", () => {
    for (const code of TLS_REQUIREMENT_FAILURES) {
      const d = decideFallback(smime, [deferred(code, ["TLS_VERIFY_FAILED", code])], false);
      assert.deepEqual(d, {
        apply: true,
        action: "smime",
        trigger: code,
        recipients: ["bob@partner.example"],
      });
    }
    const d = decideFallback(route, [deferred("TLS_NOT_OFFERED", ["TLS_NOT_OFFERED"])], false);
    assert.equal(d.apply && d.action, "route");
  });

  it("never on a partner's reply, a connection failure or timeout, DNS, or the attempt's deadline", () => {
    const others = FAILURE_CODES.filter((c) => !TLS_REQUIREMENT_FAILURES.has(c));
    for (const code of [...others, "REJECTED", "TEMPORARY_REJECT"])
      assert.deepEqual(decideFallback(smime, [deferred(code, [code])], false), { apply: false }, code);
    // one hop stripped, the other timed out: that one may do TLS next time, the mail waits
    assert.deepEqual(
      decideFallback(route, [deferred("TLS_NOT_OFFERED", ["CONNECT_FAILED", "TLS_NOT_OFFERED"])], false),
      { apply: false },
    );
    // the last hop failed its TLS but the deadline passed before the others
    assert.deepEqual(decideFallback(route, [deferred("ATTEMPT_TIMEOUT", ["TLS_NOT_OFFERED"])], false), {
      apply: false,
    });
    // no hop tried at all (route-level failure without hops)
    assert.deepEqual(decideFallback(route, [deferred("TLS_NOT_OFFERED")], false), { apply: false });
    // bounced or delivered recipients are never re-sent
    assert.deepEqual(
      decideFallback(
        route,
        [{ ...deferred("TLS_NOT_OFFERED", ["TLS_NOT_OFFERED"]), outcome: "failed" }],
        false,
      ),
      { apply: false },
    );
  });

  it("defer (or no fallback) is today's behaviour; a REQUIRETLS message never takes the smime fallback", () => {
    const unmet = [deferred("TLS_NOT_OFFERED", ["TLS_NOT_OFFERED"])];
    assert.deepEqual(decideFallback(undefined, unmet, false), { apply: false });
    assert.deepEqual(decideFallback({ action: "defer" }, unmet, false), { apply: false });
    assert.deepEqual(decideFallback(smime, unmet, true), { apply: false });
    assert.equal(decideFallback(route, unmet, true).apply, true); // the alternate hop is verified
  });
});

describe("the fallback session's TLS requirement (tls-policy.ts)", () => {
  const primary: OutboundTls = { mode: "verify", minVersion: "TLSv1.3", caFile: "x" };
  const base: Route = {
    policy: "mail/partner",
    domain: "partner.example",
    outbound: {
      tls: primary,
      authCredential: "login",
      nextHop: { host: "mx.partner.example", port: 25 },
      tlsFallback: smime,
    },
    nextHop: { host: "mx.partner.example", port: 25 },
  };

  it("smime: TLS (encrypt) by default, opportunistic only when the policy says so; the policy's minVersion", () => {
    assert.deepEqual(fallbackTls(smime, primary), { mode: "required", minVersion: "TLSv1.3" });
    assert.deepEqual(fallbackTls(smimeClear, primary), { mode: "opportunistic", minVersion: "TLSv1.3" });
    const r = fallbackRoute(base, smime)!;
    const level = resolveTlsPolicy({ mode: r.outbound.tls.mode, domain: r.domain, policyOwned: true });
    assert.equal(level.ok && level.level, "encrypt");
    // no AUTH (the password never goes to the peer that failed), no further fallback, same hops
    assert.equal(r.outbound.authCredential, undefined);
    assert.equal(r.outbound.tlsFallback, undefined);
    assert.deepEqual(r.nextHop, base.nextHop);
  });

  it("route: the alternate hop under its own requirement, which must authenticate the peer", () => {
    const r = fallbackRoute(base, route)!;
    assert.deepEqual(r.nextHop, { host: "portal.example", port: 25 });
    assert.equal(r.alternate, true); // not the domain's server: no TLS-RPT for its sessions
    assert.equal(fallbackRoute(base, smime)!.alternate, undefined);
    assert.deepEqual(r.outbound.tls, {
      mode: "verify",
      minVersion: "TLSv1.2",
      caFile: "configmaps/portal-ca/ca.crt",
    });
    assert.equal(r.outbound.authCredential, undefined);
    // a hand-written config that slips a weaker mode in is no fallback (the mail is deferred)
    for (const mode of ["required", "opportunistic", "none", "dane", "mta-sts"])
      assert.equal(fallbackTls({ ...route, tls: { ...route.tls, mode } } as never, primary), undefined, mode);
    assert.equal(
      fallbackTls({ ...route, tls: { mode: "pinned", minVersion: "TLSv1.2" } }, primary),
      undefined,
    );
  });

  it("the config schema refuses a route without a next hop or with a mode that does not authenticate", () => {
    assert.equal(TlsFallback.safeParse({ action: "route", tls: { mode: "verify" } }).success, false);
    assert.equal(
      TlsFallback.safeParse({ action: "route", nextHop: { host: "p" }, tls: { mode: "required" } }).success,
      false,
    );
    assert.equal(
      TlsFallback.safeParse({ action: "route", nextHop: { host: "p" }, tls: { mode: "pinned" } }).success,
      false,
    );
    assert.equal(TlsFallback.safeParse({ action: "smime" }).success, false);
  });
});

describe("fallback-delivery.ts: the bytes a fallback sends", () => {
  let dir: string;
  let certs: RecipientCertificate[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "relay-fallback-unit-"));
    const ca = await makeCa(join(dir, "ca"));
    const bob = await makeLeaf(ca, { cn: "Bob", emails: ["bob@partner.example"], rsa: true });
    certs = loadCertificates([await readFile(bob.certFile)]).certs;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const unsigned = "From: a@our.example\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
  const signedBytes = `DKIM-Signature: over-the-clear-body\r\n${unsigned}`;
  const first = [
    { ...deferred("TLS_VERIFY_FAILED", ["TLS_VERIFY_FAILED"]), message: "bad cert", status: "4.7.5" },
  ];

  async function send(tlsFallback: TlsFallback): Promise<{ wire: string[]; signedOver: string[] }> {
    const r: Route = {
      policy: "p",
      domain: "partner.example",
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.2" }, tlsFallback },
    };
    const wire: string[] = [];
    const signedOver: string[] = [];
    // the DKIM step: signs what it is given (here: marks it), as deliver.ts's does
    const dkim = async (b: Batch<FallbackResult>) => {
      const text = (await b.message.load()).toString("latin1");
      signedOver.push(text);
      return {
        batches: [{ ...b, message: bufferBody(Buffer.from(`DKIM-Signature: resigned\r\n${text}`)) }],
        results: [],
      };
    };
    await withFallback(
      {
        queueId: "Q",
        from: "alice@local.test",
        recipients: ["bob@partner.example"],
        message: bufferBody(Buffer.from(signedBytes)),
        route: r,
      },
      first,
      decideFallback(tlsFallback, first, false),
      {
        transmit: async (q: { recipients: string[]; message: MessageBody }) => {
          wire.push((await q.message.load()).toString("latin1"));
          return q.recipients.map((address) => ({
            address,
            outcome: "delivered" as const,
            code: "DELIVERED",
            message: "250",
            status: "2.0.0",
          }));
        },
        smime: () => Promise.resolve({ certs }),
        now: () => new Date(),
        resign: { unsigned: bufferBody(Buffer.from(unsigned)), dkim },
      },
    );
    return { wire, signedOver };
  }

  it("attacker: smime encrypts the message as it was before DKIM and signs the encryption again", async () => {
    const { wire, signedOver } = await send(smime);
    assert.equal(wire.length, 1);
    // one signature, made over the encrypted entity that is sent; the stale one is gone
    assert.equal(wire[0]!.match(/^DKIM-Signature:/gm)?.length, 1);
    assert.match(wire[0]!, /^DKIM-Signature: resigned\r\n/);
    assert.doesNotMatch(wire[0]!, /over-the-clear-body|hello/);
    assert.equal(signedOver.length, 1);
    assert.match(signedOver[0]!, /^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    assert.equal(`DKIM-Signature: resigned\r\n${signedOver[0]!}`, wire[0]);
  });

  it("attack (session 15): the smime fallback gives a Bcc recipient its own message", async () => {
    const carol = await makeLeaf(await makeCa(join(dir, "ca2")), {
      cn: "Carol",
      emails: ["carol@partner.example"],
      rsa: true,
    });
    const both = [...certs, ...loadCertificates([await readFile(carol.certFile)]).certs];
    const sent: string[][] = [];
    const message =
      "From: a@our.example\r\nTo: bob@partner.example\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
    const r: Route = {
      policy: "p",
      domain: "partner.example",
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.2" }, tlsFallback: smime },
    };
    const failed = ["bob@partner.example", "carol@partner.example"].map((address) => ({
      ...first[0]!,
      address,
    }));
    const results = await withFallback(
      {
        queueId: "Q",
        from: "alice@local.test",
        recipients: ["bob@partner.example", "carol@partner.example"],
        message: bufferBody(Buffer.from(message)),
        route: r,
      },
      failed,
      decideFallback(smime, failed, false),
      {
        transmit: (q: { recipients: string[] }) => {
          sent.push(q.recipients);
          return Promise.resolve(
            q.recipients.map((address) => ({
              address,
              outcome: "delivered" as const,
              code: "DELIVERED",
              message: "250",
              status: "2.0.0",
            })),
          );
        },
        smime: () => Promise.resolve({ certs: both }),
        now: () => new Date(),
      },
    );
    assert.deepEqual(sent, [["bob@partner.example"], ["carol@partner.example"]], "one message named both");
    assert.deepEqual(
      results.map((x) => x.outcome),
      ["delivered", "delivered"],
    );
  });

  it("route (no re-encryption) sends the bytes as they were signed, not signed again", async () => {
    const { wire, signedOver } = await send(route);
    assert.deepEqual(wire, [signedBytes]);
    assert.deepEqual(signedOver, []);
  });
});
