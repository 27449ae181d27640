// Attack (own-domains review, session 12): received TLS-RPT reports were bounded in memory, not in
// the CPU their decoding costs the relay's one event loop. A valid report at the schema's largest
// (100 policies of 1,000 failure details) is 39 KB gzipped and 9 MB of JSON; one Internet client
// POSTing such reports back to back on its 8 connections held the loop for seconds at a time (the
// kubelet's probes, SMTP, deliveries). The loop's time spent decoding is now counted a minute per
// client and in all (relay/own-domains/decode-budget.ts): past its share (a second) a client is
// answered 503 before anything is decoded, and another client keeps its own. No time is asserted:
// what is counted is which POSTs the relay decoded (its figures) and which it answered busy.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Agent, request } from "node:https";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf } from "../support/certs.js";
import { freePort } from "../support/ports.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let relay: Relay;
let sink: Sink;
let stsPort: number;

before(async () => {
  f = await relayFixture("attack-tlsrpt-cpu");
  sink = await startSink();
  stsPort = await freePort();
  const sts = await makeLeaf(f.ca, { cn: "mta-sts.own.test", dnsNames: ["mta-sts.own.test"] });
  await f.configure(
    {
      inbound: {
        require: "none",
        relayFrom: [],
        localDomains: ["own.test"],
        internalNextHop: { host: "127.0.0.1", port: sink.port },
      },
      ownDomains: {
        mtaSts: {
          port: stsPort,
          host: "127.0.0.1",
          certFile: "tls/mta-sts.crt",
          keyFile: "tls/mta-sts.key",
          mode: "enforce",
          mx: ["relay.test"],
          maxAgeSeconds: 604800,
          domains: ["own.test"],
        },
        // the defaults: 1 MiB a report, 16 MiB decompressed
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
  ({ relay } = await f.start());
});

after(async () => {
  await f?.stop(() => sink.close());
});

/** A valid report about own.test at the schema's largest: about 9 MB of JSON, under 64 KB gzipped. */
function largestReport(id: string): Buffer {
  const detail = {
    "result-type": "starttls-not-supported",
    "receiving-ip": "192.0.2.1",
    "failed-session-count": 1,
  };
  const policy = {
    policy: { "policy-type": "sts", "policy-domain": "own.test" },
    summary: { "total-successful-session-count": 1, "total-failure-session-count": 1000 },
    "failure-details": Array(1000).fill(detail),
  };
  return gzipSync(
    JSON.stringify({
      "organization-name": "attacker",
      "date-range": { "start-datetime": "2026-12-01T00:00:00Z", "end-datetime": "2026-12-02T00:00:00Z" },
      "contact-info": "x",
      "report-id": id,
      policies: Array(100).fill(policy),
    }),
    { level: 9 },
  );
}

function post(body: Buffer, localAddress: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: stsPort,
        localAddress,
        servername: "mta-sts.own.test",
        method: "POST",
        path: "/tlsrpt",
        rejectUnauthorized: false,
        agent,
        headers: {
          host: "mta-sts.own.test",
          "content-type": "application/tlsrpt+gzip",
          "content-length": body.length,
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const reportsCounted = (): number => relay.status().tlsRptReceived?.domains["own.test"]?.reports ?? 0;

describe("attack: TLS-RPT POSTs that cost the relay's event loop far more than the sender", () => {
  it("one client's large reports are decoded up to its share, then answered busy; another keeps its own", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const codes: number[] = [];
    // each costs the loop a few hundred ms: its second a minute is spent within a few of them
    for (let i = 0; i < 30 && !codes.includes(503); i++)
      codes.push(await post(largestReport(`a-${i}`), "127.0.0.1", agent));
    agent.destroy();
    const accepted = codes.indexOf(503);
    assert.ok(accepted !== -1, `the client was never answered busy: ${codes.join(", ")}`);
    assert.ok(
      codes.slice(0, accepted).every((c) => c === 200),
      codes.join(", "),
    );
    // each report counts once per policy it holds (100)
    assert.equal(reportsCounted(), accepted * 100, "a busy report was not decoded or counted");
    const other = new Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal(await post(largestReport("b-0"), "127.0.0.2", other), 200, "another client keeps its share");
    other.destroy();
  });
});
