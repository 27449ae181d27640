// Attack (observability review, session 18): the partner certificate watch (relay/partner-
// certificates.ts) keeps, per policy and next-hop host, the issuer of the certificate the host
// presented, as the certificate spells it, and /status (with the admin token: what the operator's
// probe asks) lists them. The default route's hosts are whatever MX hosts the relay delivered to: a
// stranger's own, through the bounces of mail forged as from its domains (one session each). A
// certificate's issuer is the server's choice and long: a leaf signed by a CA whose name is 1,400
// OU attributes is 90 KB, under the 100 KB OpenSSL lets a server present, and its issuer string 90,000
// characters. 50 such hosts (the book's bound per policy) made /status over 4 MiB, where the
// operator's probe (operator/controllers/relay-probe.ts) stops reading an answer ("not a relay's
// /status"): the pod reads as not answering, so the operator no longer knows which configuration it
// enforces, for every tenant's policy on that relay. The operator reads at most 512 characters of
// an issuer (relay/contract/status.ts) and drops a longer one anyway.
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { httpStatusProbe } from "../../operator/controllers/relay-probe.js";
import type { PodObject } from "../../operator/objects.js";
import { startAdmin } from "../../relay/admin.js";
import { AdminSignatures } from "../../relay/contract/admin-auth.js";
import type { RelayStatus } from "../../relay/contract/status.js";
import { DEFAULT_POLICY } from "../../relay/outbound/route.js";
import { PartnerCertificates } from "../../relay/partner-certificates.js";

const TOKEN = "admin-token-0123456789abcdef";
const HASH = "c".repeat(64);

describe("attack: partner certificate issuers grow /status past what the operator reads", () => {
  const book = new PartnerCertificates(undefined, () => new Date("2026-06-01T00:00:00Z"));
  let server: Server;
  let port: number;

  before(async () => {
    // 50 MX hosts of the stranger's domains, each presenting a leaf with a 90,000-character issuer
    for (let i = 0; i < 50; i++)
      book.record(
        DEFAULT_POLICY,
        `mx${i}.attacker.example`,
        {
          spki: Buffer.alloc(32, i).toString("base64"),
          notAfter: "2026-06-10T00:00:00.000Z",
          issuer: `CN=x,${Array.from({ length: 1400 }, () => `OU=${"o".repeat(60)}`).join(",")}`,
        },
        [],
      );
    const status = (): RelayStatus => ({
      relay: "edge",
      generation: 1,
      configHash: HASH,
      loadedAt: "2026-06-01T00:00:00.000Z",
      listeners: {},
      queue: { depth: 0, oldestAgeSeconds: 0 },
      partnerCertificates: book.snapshot(),
    });
    const signatures = new AdminSignatures();
    const started = await startAdmin(
      {
        ready: () => true,
        status,
        registry: new Registry(),
        // as the relay's own check: the bearer token, or a request signed with it (the operator's)
        authorized: (req) =>
          Promise.resolve(
            req.headers.authorization === `Bearer ${TOKEN}` ||
              signatures.verify(
                req.headers.authorization,
                TOKEN,
                req.method ?? "GET",
                req.url ?? "/",
                req.headers.host ?? "",
              ),
          ),
      },
      0,
      "127.0.0.1",
    );
    server = started.server;
    port = started.port;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("the operator's probe still reads the pod's config hash", async () => {
    const pod = { status: { podIP: "127.0.0.1" } } as unknown as PodObject;
    const report = await httpStatusProbe(pod, port, TOKEN);
    assert.ok(report, "the operator's probe read no answer from the pod");
    assert.equal(report.configHash, HASH);
    assert.equal(report.partnerCertificates?.[DEFAULT_POLICY]?.length, 50);
  });

  it("each issuer kept is one the operator reads", () => {
    for (const c of book.snapshot()[DEFAULT_POLICY] ?? [])
      assert.ok((c.issuer ?? "").length <= 512, `an issuer of ${c.issuer?.length} characters is kept`);
  });
});
