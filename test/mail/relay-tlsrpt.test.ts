// TLS-RPT (RFC 8460) end to end: a day of traffic (delivered over verified TLS, deferred for a
// missing STARTTLS and for a certificate name mismatch) is counted per policy domain in the queue
// dir; the day's report validates against RFC 8460 section 4.4's schema (written out below, checked
// by a small JSON Schema subset checker), and goes to the _smtp._tls rua mailto: through the
// relay's own queue as multipart/report; report-type="tlsrpt" with a gzip that decompresses to
// the same JSON.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { createServer } from "node:https";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import {
  buildReport,
  dayOf,
  gzipReport,
  parseTlsRptTxt,
  postReport,
  resultTypeOf,
  TlsRptStore,
  type TlsRptEvent,
} from "../../relay/outbound/tlsrpt.js";
import { certificateProblemOf } from "../../relay/outbound/certificate-problem.js";
import { makeLeaf } from "../support/certs.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { waitFor } from "../support/process.js";
import { freePort } from "../support/ports.js";
import { relayFixture, TEST_INTERNAL_CIDRS, type LogCapture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

// RFC 8460 section 4.4 (report fields) as a JSON Schema: required members and their types.
const RFC8460_SCHEMA: Schema = {
  type: "object",
  required: ["organization-name", "date-range", "contact-info", "report-id", "policies"],
  properties: {
    "organization-name": { type: "string" },
    "date-range": {
      type: "object",
      required: ["start-datetime", "end-datetime"],
      properties: {
        "start-datetime": { type: "string", format: "date-time" },
        "end-datetime": { type: "string", format: "date-time" },
      },
    },
    "contact-info": { type: "string" },
    "report-id": { type: "string" },
    policies: {
      type: "array",
      items: {
        type: "object",
        required: ["policy", "summary"],
        properties: {
          policy: {
            type: "object",
            required: ["policy-type", "policy-domain"],
            properties: {
              "policy-type": { type: "string", enum: ["tlsa", "sts", "no-policy-found"] },
              "policy-string": { type: "array", items: { type: "string" } },
              "policy-domain": { type: "string" },
              "mx-host": { type: "array", items: { type: "string" } },
            },
          },
          summary: {
            type: "object",
            required: ["total-successful-session-count", "total-failure-session-count"],
            properties: {
              "total-successful-session-count": { type: "integer", minimum: 0 },
              "total-failure-session-count": { type: "integer", minimum: 0 },
            },
          },
          "failure-details": {
            type: "array",
            items: {
              type: "object",
              required: ["result-type", "failed-session-count"],
              properties: {
                "result-type": {
                  type: "string",
                  enum: [
                    "starttls-not-supported",
                    "certificate-host-mismatch",
                    "certificate-expired",
                    "certificate-not-trusted",
                    "validation-failure",
                    "tlsa-invalid",
                    "dnssec-invalid",
                    "dane-required",
                    "sts-policy-fetch-error",
                    "sts-policy-invalid",
                    "sts-webpki-invalid",
                  ],
                },
                "sending-mta-ip": { type: "string" },
                "receiving-mx-hostname": { type: "string" },
                "receiving-mx-helo": { type: "string" },
                "receiving-ip": { type: "string" },
                "failed-session-count": { type: "integer", minimum: 0 },
                "additional-information": { type: "string" },
                "failure-reason-code": { type: "string" },
              },
            },
          },
        },
      },
    },
  },
};

interface Schema {
  type: "object" | "array" | "string" | "integer";
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: string[];
  minimum?: number;
  format?: "date-time";
}

/** The JSON Schema subset above; returns the violations (empty: valid). */
function validate(v: unknown, s: Schema, path = "$"): string[] {
  const errs: string[] = [];
  const ok =
    s.type === "object"
      ? typeof v === "object" && v !== null && !Array.isArray(v)
      : s.type === "array"
        ? Array.isArray(v)
        : s.type === "integer"
          ? Number.isInteger(v)
          : typeof v === "string";
  if (!ok) return [`${path}: not ${s.type}`];
  if (s.enum && !s.enum.includes(v as string)) errs.push(`${path}: ${String(v)} not in enum`);
  if (s.minimum !== undefined && (v as number) < s.minimum) errs.push(`${path}: below ${s.minimum}`);
  if (
    s.format === "date-time" &&
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v as string)
  )
    errs.push(`${path}: not an RFC 3339 date-time`);
  if (s.type === "object") {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) errs.push(`${path}: missing ${r}`);
    for (const [k, sub] of Object.entries(s.properties ?? {}))
      if (k in o) errs.push(...validate(o[k], sub, `${path}.${k}`));
  }
  if (s.type === "array" && s.items)
    (v as unknown[]).forEach((x, i) => errs.push(...validate(x, s.items!, `${path}[${i}]`)));
  return errs;
}

let f: RelayFixture;
let relay: Relay;
let logs: LogCapture;
let dns: DnsServer;
let tlsSink: Sink; // mx.partner.test (127.0.0.1): STARTTLS, certificate for mx.partner.test
let clearSink: Sink; // mx.clear.test (127.0.0.2): no STARTTLS
let reports: Sink; // the rua mailbox
const RUA = "tlsrpt@reports.test";

function config(broken: "tls" | "none"): Partial<RelayConfigInput> {
  const verify = (names: string[]) => ({ mode: "verify" as const, caFile: "ca.crt", matchNames: names });
  // delivered to the domains' MX hosts: TLS-RPT reports on a domain's own servers, never on a next
  // hop the relay was told to use (relay/outbound/deliver.ts reportsOn)
  const to = (domain: string, tls: PolicyInput["outbound"]["tls"]): PolicyInput => ({
    name: `p/${domain}`,
    domains: [domain],
    outbound: { tls },
  });
  return {
    dns: { servers: [dns.address] },
    delivery: { allowedInternalCidrs: TEST_INTERNAL_CIDRS },
    tlsRpt: { organizationName: "Sealpost Test", contactInfo: "postmaster@relay.test" },
    policies: [
      to("good.test", verify(["mx.partner.test"])),
      // after the failing day: clear delivery (mode none), so no further sessions are counted
      to("nostarttls.test", broken === "tls" ? { mode: "required" } : { mode: "none" }),
      to("mismatch.test", broken === "tls" ? verify(["mx.elsewhere.test"]) : { mode: "none" }),
      {
        name: "p/reports.test",
        domains: ["reports.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: reports.port } },
      },
    ],
  };
}

before(async () => {
  f = await relayFixture("relay-tlsrpt");
  const mx = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  const mxPort = await freePort();
  [tlsSink, clearSink, reports] = await Promise.all([
    startSink({
      host: "127.0.0.1",
      port: mxPort,
      tls: { cert: await readFile(mx.certFile), key: await readFile(mx.keyFile) },
    }),
    startSink({ host: "127.0.0.2", port: mxPort }),
    startSink(),
  ]);
  const zone: Parameters<typeof startDnsServer>[0] = {
    "mx.partner.test": { A: ["127.0.0.1"] },
    "mx.clear.test": { A: ["127.0.0.2"] },
    "good.test": { MX: [{ preference: 10, exchange: "mx.partner.test" }] },
    "mismatch.test": { MX: [{ preference: 10, exchange: "mx.partner.test" }] },
    "nostarttls.test": { MX: [{ preference: 10, exchange: "mx.clear.test" }] },
  };
  for (const d of ["good.test", "nostarttls.test", "mismatch.test"])
    zone[`_smtp._tls.${d}`] = { TXT: [`v=TLSRPTv1; rua=mailto:${RUA}`] };
  dns = await startDnsServer(zone);
  await f.configure(config("tls"), { files: { "ca.crt": await readFile(f.ca.certFile) } });
  ({ relay, logs } = await f.start({ mxPort }));
});

after(async () => {
  await f?.stop(() => Promise.all([tlsSink?.close(), clearSink?.close(), reports?.close(), dns?.stop()]));
});

async function submit(to: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to,
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

const deferred = (id: string, code: string) => () =>
  logs.find((l) => l.event === "delivery" && l.queueId === id && l.code === code);

describe("TLS-RPT (RFC 8460)", () => {
  it("pure parts: rua discovery record, result types", () => {
    assert.deepEqual(parseTlsRptTxt([["v=TLSRPTv1; rua=mailto:a@x.test,https://r.x.test/v1"]]), [
      "mailto:a@x.test",
      "https://r.x.test/v1",
    ]);
    assert.equal(
      parseTlsRptTxt([["v=TLSRPTv1;rua=mailto:a@x.test"], ["v=TLSRPTv1;rua=mailto:b@x.test"]]),
      undefined,
    );
    assert.equal(parseTlsRptTxt([["v=spf1 -all"]]), undefined);
    assert.equal(resultTypeOf("TLS_NOT_OFFERED"), "starttls-not-supported");
    assert.equal(
      resultTypeOf(
        "TLS_VERIFY_FAILED",
        certificateProblemOf("Hostname/IP does not match certificate's altnames"),
      ),
      "certificate-host-mismatch",
    );
    assert.equal(
      resultTypeOf("TLS_VERIFY_FAILED", certificateProblemOf("certificate has expired")),
      "certificate-expired",
    );
    assert.equal(
      resultTypeOf("TLS_VERIFY_FAILED", certificateProblemOf("self-signed certificate")),
      "certificate-not-trusted",
    );
    assert.equal(resultTypeOf("CONNECT_FAILED"), undefined);
  });

  it("https: rua: POST with Content-Type application/tlsrpt+gzip", async () => {
    const leaf = await makeLeaf(f.ca, { cn: "localhost", dnsNames: ["localhost"], name: "rua-web" });
    const got: { type?: string; body: Buffer }[] = [];
    const server = createServer(
      { cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          got.push({ type: req.headers["content-type"], body: Buffer.concat(chunks) });
          res.writeHead(201).end();
        });
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as { port: number }).port;
      const report = buildReport("2026-01-01", "x.test", [], {
        organizationName: "o",
        contactInfo: "c",
        submitter: "relay.test",
      });
      const status = await postReport(
        `https://localhost:${port}/tlsrpt`,
        gzipReport(report),
        await readFile(f.ca.certFile),
      );
      assert.equal(status, 201);
      assert.equal(got[0]!.type, "application/tlsrpt+gzip");
      assert.deepEqual(JSON.parse(gunzipSync(got[0]!.body).toString("utf8")), report);
    } finally {
      server.close();
    }
  });

  it("a day of traffic: counted per domain, reported as valid RFC 8460 JSON, mailed as gzip", async () => {
    const day = dayOf(Date.now());
    await submit("bob@good.test", "rpt-ok-1");
    await submit("carol@good.test", "rpt-ok-2");
    const noTls = await submit("dave@nostarttls.test", "rpt-starttls");
    const wrongName = await submit("erin@mismatch.test", "rpt-mismatch");
    await waitFor("good.test delivered", () =>
      tlsSink.messages.filter((m) => m.data.toString().includes("X-Test-Id: rpt-ok-")).length === 2
        ? true
        : undefined,
    );
    await waitFor("deferred: no STARTTLS", deferred(noTls, "TLS_NOT_OFFERED"), 15_000);
    await waitFor("deferred: name mismatch", deferred(wrongName, "TLS_VERIFY_FAILED"), 15_000);
    // end of the failing day: the deferred messages go out in clear (not counted), so the
    // day's events stop changing
    await f.configure(config("none"), { files: { "ca.crt": await readFile(f.ca.certFile) } });
    await relay.checkConfig();
    await waitFor(
      "the deferred ones delivered",
      () =>
        clearSink.messages.some((m) => m.data.toString().includes("X-Test-Id: rpt-starttls")) &&
        tlsSink.messages.some((m) => m.data.toString().includes("X-Test-Id: rpt-mismatch"))
          ? true
          : undefined,
      20_000,
    );

    // persisted in the queue dir: a second reader (a restarted relay) sees the same day
    const store = new TlsRptStore(join(f.work, "queue"));
    const events: TlsRptEvent[] = await waitFor("events on disk", async () => {
      const e = await store.events(day);
      return e.some((x) => x.domain === "mismatch.test") && e.some((x) => x.domain === "nostarttls.test")
        ? e
        : undefined;
    });
    const meta = {
      organizationName: "Sealpost Test",
      contactInfo: "postmaster@relay.test",
      submitter: "relay.test",
      // the reporting pod: each pod's report of a day has its own report-id
      instance: hostname(),
    };
    const good = buildReport(day, "good.test", events, meta);
    assert.deepEqual(validate(good, RFC8460_SCHEMA), []);
    assert.equal(good.policies[0]!.policy["policy-type"], "no-policy-found");
    assert.equal(good.policies[0]!.summary["total-successful-session-count"], 2);
    assert.equal(good.policies[0]!.summary["total-failure-session-count"], 0);
    const starttls = buildReport(day, "nostarttls.test", events, meta);
    assert.deepEqual(validate(starttls, RFC8460_SCHEMA), []);
    assert.ok(starttls.policies[0]!.summary["total-failure-session-count"] >= 1);
    assert.equal(starttls.policies[0]!["failure-details"]![0]!["result-type"], "starttls-not-supported");
    // the MX hosts here are on loopback: an address inside our networks is not told to the domain
    assert.equal(starttls.policies[0]!["failure-details"]![0]!["receiving-ip"], undefined);
    assert.equal(starttls.policies[0]!["failure-details"]![0]!["receiving-mx-hostname"], "mx.clear.test");
    // issue 20 item 5: the relay's own address on the failed connection (RFC 8460 sending-mta-ip)
    assert.equal(starttls.policies[0]!["failure-details"]![0]!["sending-mta-ip"], "127.0.0.1");
    const mismatch = buildReport(day, "mismatch.test", events, meta);
    assert.deepEqual(validate(mismatch, RFC8460_SCHEMA), []);
    assert.equal(mismatch.policies[0]!["failure-details"]![0]!["result-type"], "certificate-host-mismatch");
    // a handshake refused by the relay's own verification: the address was read at connect time
    assert.equal(mismatch.policies[0]!["failure-details"]![0]!["sending-mta-ip"], "127.0.0.1");
    // the checker itself rejects a broken report
    assert.ok(validate({ ...good, policies: [{ policy: {} }] }, RFC8460_SCHEMA).length >= 3);

    // daily sending (triggered now for today): mailto: through the relay's own queue; what is sent
    // is built from the day's events as stored (they stopped changing above), which go once sent
    const final = await store.events(day);
    const sent = await relay.sendTlsReports(day);
    assert.deepEqual(
      sent.map((s) => [s.domain, s.result]),
      [
        ["good.test", "queued"],
        ["mismatch.test", "queued"],
        ["nostarttls.test", "queued"],
      ],
    );
    assert.deepEqual(await store.events(day), [], "a sent day's events are removed");
    for (const domain of ["good.test", "nostarttls.test", "mismatch.test"]) {
      const expected = buildReport(day, domain, final, meta);
      const m = await waitFor(`report for ${domain}`, () =>
        reports.messages.find((x) => x.data.toString().includes(`TLS-Report-Domain: ${domain}\r\n`)),
      );
      assert.deepEqual(m.to, [RUA]);
      const text = m.data.toString("latin1");
      assert.match(text, /^Content-Type: multipart\/report; report-type="tlsrpt"; boundary="/m);
      assert.match(
        text,
        new RegExp(
          `^Subject: Report Domain: ${domain.replace(".", "\\.")} Submitter: relay\\.test Report-ID: <`,
          "m",
        ),
      );
      assert.match(text, /^TLS-Report-Submitter: relay\.test\r$/m);
      const part =
        /Content-Type: application\/tlsrpt\+gzip\r\n(?:[^\r\n]+\r\n)*\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--/.exec(
          text,
        );
      assert.ok(part, text);
      const json: unknown = JSON.parse(
        gunzipSync(Buffer.from(part[1]!.replace(/\r\n/g, ""), "base64")).toString("utf8"),
      );
      assert.deepEqual(json, expected);
      assert.deepEqual(validate(json, RFC8460_SCHEMA), []);
    }
  });
});
