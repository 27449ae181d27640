// Our own domains (issue 20 item 4): the relay serves its MTA-STS policy over HTTPS for
// mta-sts.own.test (curl and the relay's own MTA-STS client fetch and accept it), and receives
// TLS-RPT reports partners send about us, by mail (swaks, gzip and JSON attachments) and by HTTPS
// POST, into /metrics and /status. From the attacker's side: a gzip bomb, a 100 MB body, malformed
// JSON, a report about someone else's domain, a flood of reporters, and the report address used to
// relay elsewhere or to reach the internal server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { mtaStsPolicyId, mtaStsPolicyText } from "../../relay/contract/own-domains.js";
import { DestinationFilter } from "../../relay/net/address-class.js";
import { MtaSts } from "../../relay/outbound/mta-sts.js";
import type { TlsRptReport } from "../../relay/tlsrpt-report.js";
import { makeLeaf } from "../support/certs.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

const run = promisify(execFile);
const POLICY = { mode: "enforce" as const, mx: ["relay.test"], maxAgeSeconds: 604800 };

function report(
  o: { org?: string; id?: string; domain?: string; ok?: number; failed?: number } = {},
): TlsRptReport {
  return {
    "organization-name": o.org ?? "Example Reporter",
    "date-range": { "start-datetime": "2026-12-03T00:00:00Z", "end-datetime": "2026-12-03T23:59:59Z" },
    "contact-info": "tlsrpt@reporter.test",
    "report-id": o.id ?? `r-${Math.random().toString(36).slice(2)}`,
    policies: [
      {
        policy: { "policy-type": "sts", "policy-domain": o.domain ?? "own.test", "mx-host": ["relay.test"] },
        summary: {
          "total-successful-session-count": o.ok ?? 10,
          "total-failure-session-count": o.failed ?? 2,
        },
        "failure-details":
          o.failed === 0
            ? []
            : [{ "result-type": "certificate-expired", "failed-session-count": o.failed ?? 2 }],
      },
    ],
  };
}

describe("own domains: MTA-STS published, TLS-RPT received", () => {
  let f: RelayFixture;
  let sink: Sink;
  let stsPort: number;
  const metrics = async (): Promise<string> =>
    (await fetch(`http://127.0.0.1:${f.ports.admin}/metrics`)).text();
  // the full /status (the operator reads it with the admin token): the relay's own answer
  const status = () => f.relay!.status();
  const post = (
    body: Buffer | (() => Iterable<Buffer>),
    o: { type?: string; host?: string; length?: boolean } = {},
  ) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: stsPort,
          servername: "mta-sts.own.test",
          method: "POST",
          path: "/tlsrpt",
          rejectUnauthorized: false, // the POST's figures are under test here, not the certificate
          headers: {
            host: o.host ?? "mta-sts.own.test",
            "content-type": o.type ?? "application/tlsrpt+gzip",
            ...(Buffer.isBuffer(body) && o.length !== false ? { "content-length": body.length } : {}),
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      if (Buffer.isBuffer(body)) req.end(body);
      else
        void (async () => {
          try {
            for (const c of body()) if (!req.write(c)) await new Promise((r) => req.once("drain", r));
            req.end();
          } catch {
            // the server closed the connection after its 413
          }
        })();
    });
  /** GET the policy from source address `from`: the status code. */
  const getPolicy = (from: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: stsPort,
          localAddress: from,
          servername: "mta-sts.own.test",
          path: "/.well-known/mta-sts.txt",
          rejectUnauthorized: false,
          agent: false,
          headers: { host: "mta-sts.own.test" },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end();
    });
  /** A TCP connection to the endpoint from `from` that sends nothing. */
  const openRaw = (from: string) =>
    new Promise<{ closed: boolean }>((resolve, reject) => {
      const c = { closed: false };
      const sock = connect({ host: "127.0.0.1", port: stsPort, localAddress: from }, () => resolve(c));
      sock.on("error", () => undefined);
      sock.on("close", () => {
        c.closed = true;
      });
      sock.once("error", reject);
    });
  /** A report POST that sends all but the last byte of `length` and waits: its status when answered. */
  const stalledUpload = (from: string, length: number) => {
    let abort = (): void => undefined;
    const status = new Promise<number>((resolve) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: stsPort,
          localAddress: from,
          servername: "mta-sts.own.test",
          method: "POST",
          path: "/tlsrpt",
          rejectUnauthorized: false,
          agent: false,
          headers: {
            host: "mta-sts.own.test",
            "content-type": "application/tlsrpt+gzip",
            "content-length": length,
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", () => resolve(0));
      req.write(Buffer.alloc(length - 1, 0x20));
      abort = () => req.destroy();
    });
    return { status, abort: () => abort() };
  };
  const mailReport = async (data: Buffer, type: string, to = "tlsrpt@own.test") => {
    const file = join(f.work, `r-${Math.random().toString(36).slice(2)}`);
    await writeFile(file, data);
    return swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "noreply@reporter.test",
      to,
      subject: "Report Domain: own.test",
      extraArgs: ["--attach-type", type, "--attach", `@${file}`],
    });
  };

  before(async () => {
    f = await relayFixture("own-domains");
    sink = await startSink();
    stsPort = await freePort();
    const sts = await makeLeaf(f.ca, { cn: "mta-sts.own.test", dnsNames: ["mta-sts.own.test"] });
    await f.configure(
      {
        inbound: {
          require: "none",
          relayFrom: ["127.0.0.2"], // the tests' client (127.0.0.1) may not relay
          localDomains: ["own.test"],
          internalNextHop: { host: "127.0.0.1", port: sink.port },
        },
        ownDomains: {
          mtaSts: {
            port: stsPort,
            host: "127.0.0.1",
            certFile: "tls/mta-sts.crt",
            keyFile: "tls/mta-sts.key",
            ...POLICY,
            domains: ["own.test"],
          },
          tlsRpt: { addresses: ["tlsrpt@own.test"], https: true },
        },
      },
      {
        files: {
          "tls/mta-sts.crt": await readFile(sts.certFile),
          "tls/mta-sts.key": await readFile(sts.keyFile),
        },
      },
    );
    await f.start();
  });
  after(() => f.stop(() => sink.close()));

  it("serves the policy over HTTPS to curl with the CA, and the relay's MTA-STS client accepts it", async () => {
    const url = `https://mta-sts.own.test:${stsPort}/.well-known/mta-sts.txt`;
    const { stdout } = await run("curl", [
      "-sS", "--fail", "--cacert", f.ca.certFile, "--resolve", `mta-sts.own.test:${stsPort}:127.0.0.1`, url,
    ]); // prettier-ignore
    assert.equal(stdout, mtaStsPolicyText(POLICY));
    const id = mtaStsPolicyId(stdout);
    assert.match(id, /^[a-f0-9]{32}$/);
    // another Host: nothing
    const other = await run("curl", [
      "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", f.ca.certFile,
      "--resolve", `mta-sts.other.test:${stsPort}:127.0.0.1`, "-H", "Host: mta-sts.other.test",
      `https://mta-sts.own.test:${stsPort}/.well-known/mta-sts.txt`, "--connect-to", `mta-sts.own.test:${stsPort}:127.0.0.1:${stsPort}`,
    ]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" })); // prettier-ignore
    assert.equal(other.stdout, "404");

    const ca = await readFile(f.ca.certFile);
    const client = new MtaSts({
      dns: () => ({
        resolveMx: () => Promise.resolve([]),
        resolve4: (n) => Promise.resolve(n === "mta-sts.own.test" ? ["127.0.0.1"] : []),
        resolve6: () => Promise.resolve([]),
        resolveTxt: (n) => Promise.resolve(n === "_mta-sts.own.test" ? [[`v=STSv1; id=${id}`]] : []),
      }),
      cacheDir: () => join(f.work, "sts-cache"),
      ca: () => ca, // the test CA in place of the system roots, as config mtaSts.caFile does
      httpsPort: () => stsPort,
      destinations: () => new DestinationFilter(["127.0.0.0/8"]),
    });
    const found = await client.lookup("own.test");
    assert.equal(found.failure, undefined, JSON.stringify(found.failure));
    assert.equal(found.source, "fetched");
    assert.equal(found.id, id);
    assert.deepEqual(found.policy, { version: "STSv1", mode: "enforce", mx: ["relay.test"], maxAge: 604800 });
  });

  it("a report mailed with swaks (gzip, then JSON) is counted in /metrics and /status, never delivered", async () => {
    const gz = await mailReport(
      gzipSync(JSON.stringify(report({ org: "Mail Reporter", ok: 7, failed: 3 }))),
      "application/tlsrpt+gzip",
    );
    assert.equal(gz.code, 0, gz.transcript);
    assert.match(gz.queued?.lines.join(" ") ?? "", /TLS-RPT report received/);
    const json = await mailReport(
      Buffer.from(JSON.stringify(report({ org: "Mail Reporter", ok: 5, failed: 0 }))),
      "application/tlsrpt+json",
    );
    assert.equal(json.code, 0, json.transcript);
    const m = await metrics();
    assert.match(
      m,
      /sealpost_tlsrpt_received_sessions_total\{reporter="mail-reporter",policy_domain="own.test",result="success"\} 12/,
    );
    assert.match(
      m,
      /sealpost_tlsrpt_received_sessions_total\{reporter="mail-reporter",policy_domain="own.test",result="certificate-expired"\} 3/,
    );
    const s = status();
    assert.ok((s.tlsRptReceived?.domains["own.test"]?.reports ?? 0) >= 2);
    assert.equal(sink.messages.length, 0, "a report is never delivered to the internal server");
    assert.equal(f.relay!.status().queue.depth, 0, "nor queued");
  });

  it("a report POSTed over HTTPS (gzip and JSON) is counted; a resent one is not counted twice", async () => {
    const r = report({ org: "Https Reporter", id: "https-1", ok: 4, failed: 1 });
    assert.equal(await post(gzipSync(JSON.stringify(r))), 200);
    assert.equal(await post(gzipSync(JSON.stringify(r))), 200, "a duplicate is accepted");
    assert.equal(
      await post(Buffer.from(JSON.stringify(report({ org: "Https Reporter", ok: 1, failed: 0 }))), {
        type: "application/tlsrpt+json",
      }),
      200,
    );
    const m = await metrics();
    assert.match(
      m,
      /sealpost_tlsrpt_received_sessions_total\{reporter="https-reporter",policy_domain="own.test",result="success"\} 5/,
    );
    assert.match(m, /sealpost_tlsrpt_received_reports_total\{via="https",result="duplicate"\} 1/);
  });

  it("attacks on the POST endpoint: a gzip bomb, a 100 MB body, malformed JSON, someone else's domain, a wrong Host", async () => {
    // 64 MiB of zeros, about 64 KB compressed: stops at the decompressed cap (16 MiB)
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 1024 * 1024);
    assert.equal(await post(bomb), 413);
    // 100 MB declared: refused before it is read
    const big = Buffer.alloc(100 * 1024 * 1024, 0x20);
    assert.equal(await post(big), 413);
    // 100 MB streamed without Content-Length: cut at the cap
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const streamed = await post(function* () {
      for (let i = 0; i < 100; i++) yield chunk;
    }).catch(() => 413); // the server may reset the connection once it answered
    assert.equal(streamed, 413);
    assert.equal(await post(Buffer.from("{not json"), { type: "application/tlsrpt+json" }), 400);
    assert.equal(
      await post(Buffer.from(JSON.stringify({ policies: [] })), { type: "application/tlsrpt+json" }),
      400,
    );
    assert.equal(await post(gzipSync(JSON.stringify(report({ domain: "victim.test" })))), 422);
    assert.equal(await post(gzipSync(JSON.stringify(report())), { host: "mta-sts.victim.test" }), 404);
    assert.equal(await post(Buffer.from("x"), { type: "text/plain" }), 415);
    const s = status();
    assert.ok((s.tlsRptReceived?.refused["too-large"] ?? 0) >= 3, JSON.stringify(s.tlsRptReceived));
    assert.ok((s.tlsRptReceived?.refused["not-ours"] ?? 0) >= 1);
    assert.equal(s.tlsRptReceived?.domains["victim.test"], undefined);
    assert.doesNotMatch(await metrics(), /victim\.test/);
  });

  it("attacks by mail: a gzip bomb, a large message, malformed JSON, someone else's domain, no report part", async () => {
    const bomb = await mailReport(gzipSync(Buffer.alloc(64 * 1024 * 1024)), "application/tlsrpt+gzip");
    assert.equal(bomb.failure?.code, 552, bomb.transcript);
    const large = await mailReport(Buffer.alloc(8 * 1024 * 1024, 0x41), "application/tlsrpt+json");
    assert.equal(large.failure?.code, 552);
    const bad = await mailReport(Buffer.from("{not json"), "application/tlsrpt+json");
    assert.equal(bad.failure?.code, 550);
    assert.match(bad.failure?.lines.join(" ") ?? "", /5\.6\.0/);
    const foreign = await mailReport(
      gzipSync(JSON.stringify(report({ domain: "victim.test" }))),
      "application/tlsrpt+gzip",
    );
    assert.equal(foreign.failure?.code, 550);
    assert.match(foreign.failure?.lines.join(" ") ?? "", /5\.7\.1/);
    const plain = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      to: "tlsrpt@own.test",
      body: "hello",
    });
    assert.equal(plain.failure?.code, 550);
    assert.equal(sink.messages.length, 0);
  });

  it("attack (review, session 6): a JSON bomb under every byte limit, by HTTPS and by mail, is refused; the relay lives on", async () => {
    // 16 MB of brackets, 15 KB gzipped: JSON.parse made 760 MiB of it and the process died of it
    const bomb = gzipSync("[".repeat(8e6) + "]".repeat(8e6));
    assert.equal(await post(bomb), 413);
    const mailed = await mailReport(bomb, "application/tlsrpt+gzip");
    assert.equal(mailed.failure?.code, 552, mailed.transcript);
    // still here: the policy is served and a real report counted
    assert.equal(await post(gzipSync(JSON.stringify(report()))), 200);
    assert.equal(await getPolicy("127.0.0.1"), 200);
  });

  it("attack (review, session 6): one client's idle connections and stalled uploads do not take the endpoint from others", async () => {
    // 300 connections from one address that never start TLS: at most 8 are kept, and those end with
    // the handshake's time limit; another client is served meanwhile
    const idle = await Promise.all(Array.from({ length: 300 }, () => openRaw("127.0.0.3")));
    await waitFor("all but 8 closed at once", () =>
      idle.filter((c) => c.closed).length >= 292 ? true : undefined,
    );
    assert.equal(await getPolicy("127.0.0.1"), 200);
    await waitFor(
      "the 8 closed by the handshake's limit",
      () => (idle.every((c) => c.closed) ? true : undefined),
      30_000,
    );
    // five uploads of a whole report each, stalled one byte before their end, from five addresses:
    // the bodies read at once are bounded (4 reports' worth), the fifth is told to come back later
    const max = 1024 * 1024;
    const uploads = ["127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"].map((ip) =>
      stalledUpload(ip, max),
    );
    const first = await Promise.race(uploads.map((u) => u.status));
    assert.equal(first, 503);
    assert.equal(await getPolicy("127.0.0.1"), 200, "the policy is still served");
    for (const u of uploads) u.abort();
    // one client holds one report's worth at a time: its second stalled upload is told to come back
    // later, and another client's report is taken meanwhile
    const mine = [stalledUpload("127.0.0.9", max), stalledUpload("127.0.0.9", max)];
    assert.equal(await Promise.race(mine.map((u) => u.status)), 503);
    assert.equal(await post(gzipSync(JSON.stringify(report()))), 200);
    for (const u of mine) u.abort();
  });

  it("the report address cannot relay: other recipients are refused or must go in another transaction", async () => {
    const s = await rawSession(f.ports.smtp);
    assert.match(await s.cmd("EHLO attacker.test"), /^250/);
    assert.match(await s.cmd("MAIL FROM:<a@attacker.test>"), /^250/);
    assert.match(await s.cmd("RCPT TO:<tlsrpt@own.test>"), /^250/);
    assert.match(await s.cmd("RCPT TO:<victim@elsewhere.test>"), /^550 5\.7\.1/);
    assert.match(await s.cmd("RCPT TO:<postmaster@own.test>"), /^452 4\.5\.3/);
    assert.match(await s.cmd("DATA"), /^354/);
    const msg = [
      "From: a@attacker.test",
      "To: victim@elsewhere.test",
      "Subject: spam",
      "",
      "buy now",
      ".",
      "",
    ].join("\r\n");
    assert.match(await s.data(msg), /^550 5\.6\.0/);
    s.close();
    assert.equal(sink.messages.length, 0);
    assert.equal(f.relay!.status().queue.depth, 0);
  });

  it("a flood of reporters keeps the reporter labels bounded (other)", async () => {
    for (let i = 0; i < 60; i++)
      assert.equal(
        await post(gzipSync(JSON.stringify(report({ org: `Flood ${i}`, ok: 1, failed: 0 })))),
        200,
      );
    const m = await metrics();
    const reporters = new Set(
      [...m.matchAll(/sealpost_tlsrpt_received_sessions_total\{reporter="([^"]+)"/g)].map((x) => x[1]),
    );
    assert.ok(reporters.size <= 33, `${reporters.size} reporter labels`);
    assert.ok(reporters.has("other"));
  });

  it("the received figures survive a restart, and a report resent after it is not counted twice", async () => {
    const before = status().tlsRptReceived;
    assert.ok(before?.domains["own.test"]?.reports, JSON.stringify(before));
    await f.relay!.stop();
    await f.start();
    assert.deepEqual(status().tlsRptReceived, before, "the pod's figures, as before the restart");
    // https-1 was counted before the restart: the same report again is a duplicate
    const r = report({ org: "Https Reporter", id: "https-1", ok: 4, failed: 1 });
    assert.equal(await post(gzipSync(JSON.stringify(r))), 200);
    assert.match(
      await metrics(),
      /sealpost_tlsrpt_received_reports_total\{via="https",result="duplicate"\} 1/,
    );
    assert.deepEqual(status().tlsRptReceived, before);
  });
});
