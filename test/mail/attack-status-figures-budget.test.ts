// Attack (session 18, after the observability review's finding on partner certificate issuers): the
// relay's /status (with the admin token: what the operator's probe asks) lists per-policy figures:
// the partner certificates it saw (up to 50 hosts a policy, each issuer up to 512 characters), the
// shadow-mode audit and the transport report. A policy author whose policies send to many hosts of
// its own (its MX names are its own to choose, includeSubdomains gives it as many as it likes) grows
// that answer by about 30 KB per policy: a few hundred such policies take it past the 4 MiB the
// operator's probe reads (operator/controllers/relay-probe.ts), the pod reads as not answering, and
// the operator no longer knows which configuration the relay enforces, for every tenant's policies.
// The figures /status carries are now within a byte budget; the policies with the most bytes of them
// are the ones left out (so it is the inflated policies that lose theirs), and the answer says how
// many were.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { httpStatusProbe } from "../../operator/controllers/relay-probe.js";
import type { PodObject } from "../../operator/objects.js";
import type { PartnerCertificate } from "../../relay/contract/status.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "admin-token-0123456789abcdef";
const TENANT_POLICIES = 300;
const HOSTS = 50;

let f: RelayFixture;
let sink: Sink;

before(async () => {
  f = await relayFixture("attack-status-figures");
  sink = await startSink();
  const policy = (name: string, domain: string) => ({
    name,
    domains: [domain],
    outbound: { tls: { mode: "opportunistic" as const }, nextHop: { host: "127.0.0.1", port: sink.port } },
  });
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      inbound: { require: "none", relayFrom: ["127.0.0.1"], localDomains: ["local.test"] },
      policies: [
        policy("corp/partner", "partner.test"),
        ...Array.from({ length: TENANT_POLICIES }, (_, i) => policy(`tenant/p${i}`, `p${i}.tenant.test`)),
      ],
    },
    { files: { "secrets/admin/token": `${TOKEN}\n` } },
  );
  // what the relay's partner certificate watch had seen before it restarted (kept on the queue volume)
  const now = new Date().toISOString();
  const cert = (host: string, i: number): PartnerCertificate => ({
    host,
    notAfter: "2027-01-01T00:00:00.000Z",
    issuer: `CN=Tenant CA ${i},${"OU=unit,".repeat(60)}O=tenant`,
    spki: Buffer.alloc(32, i % 256).toString("base64"),
    firstSeen: now,
    lastSeen: now,
  });
  const book: Record<string, Record<string, PartnerCertificate>> = {
    "corp/partner": { "mx.partner.test": { ...cert("mx.partner.test", 0), issuer: "CN=Partner CA" } },
  };
  for (let p = 0; p < TENANT_POLICIES; p++) {
    const hosts: Record<string, PartnerCertificate> = {};
    for (let h = 0; h < HOSTS; h++) hosts[`mx${h}.p${p}.tenant.test`] = cert(`mx${h}.p${p}.tenant.test`, h);
    book[`tenant/p${p}`] = hosts;
  }
  const queueDir = join(f.work, "queue");
  await mkdir(queueDir, { recursive: true });
  await writeFile(join(queueDir, "partner-certificates.json"), JSON.stringify(book));
  await f.start();
});

after(async () => {
  await f?.stop(() => sink?.close());
});

describe("attack: a tenant's figures grow /status past what the operator reads", () => {
  it("the operator's probe still reads the pod's config hash, and the other policies' figures", async () => {
    const pod = { status: { podIP: "127.0.0.1" } } as unknown as PodObject;
    const report = await httpStatusProbe(pod, f.ports.admin, TOKEN);
    assert.ok(report, "the operator's probe read no answer from the pod (over 4 MiB)");
    assert.match(report.configHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      report.partnerCertificates?.["corp/partner"]?.map((c) => c.host),
      ["mx.partner.test"],
      "the policy with the fewest bytes of figures keeps them",
    );
  });

  it("the answer says how many policies' figures were left out", async () => {
    const res = await fetch(`http://127.0.0.1:${f.ports.admin}/status`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = (await res.json()) as {
      figuresOmitted?: number;
      partnerCertificates?: Record<string, unknown>;
    };
    const listed = Object.keys(body.partnerCertificates ?? {}).length;
    assert.ok((body.figuresOmitted ?? 0) > 0, "no policy's figures were left out");
    assert.equal(listed + (body.figuresOmitted ?? 0), TENANT_POLICIES + 1);
  });
});
