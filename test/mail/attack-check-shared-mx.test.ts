// Attack review (pre-flight check, admin POST /check): the relay limits checks per domain (once per
// DOMAIN_INTERVAL_MS) and to one at a time, but not per MX host. A tenant who may only create
// MailDomainPolicy objects lists many partner domains hosted at one provider (a hosted-mail MX serves
// thousands of domains) and asks a check of each: every check probed the same MX address afresh, at
// least two SMTP sessions of EHLO, STARTTLS, handshake and QUIT without mail, back to back at the
// relay's full check rate. The provider sees the relay's address open session after session and send
// nothing (what connection-rate limits and reputation systems penalise), and every tenant's mail from
// that address pays for it. A probe's facts do not depend on the domain checked (the relay's EHLO,
// the MX name as SNI, the trust anchors): within the interval the probe of an MX address is reused.
// Counted: the SMTP sessions the shared MX saw.
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { CheckReport } from "../../relay/contract/check.js";
import { startDnsServer, type DnsServer } from "../support/dns-server.js";
import { freePort } from "../support/ports.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";

const TOKEN = "shared-mx-admin-token";
const DOMAINS = Array.from({ length: 8 }, (_, i) => `customer${i}.hosted.test`);

let f: RelayFixture;
let dns: DnsServer;
let mx: Server;
let mxPort: number;
const sockets: Socket[] = [];
let sessions = 0;

/** A hosted-mail MX without STARTTLS: greeting, EHLO, QUIT; counts its sessions. */
async function startSharedMx(port: number): Promise<Server> {
  const s = createServer((sock) => {
    sessions++;
    sockets.push(sock);
    sock.on("error", () => undefined);
    sock.write("220 mx.provider.test ESMTP\r\n");
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i).trim().toUpperCase();
        buf = buf.slice(i + 1);
        if (line.startsWith("EHLO")) sock.write("250-mx.provider.test\r\n250 8BITMIME\r\n");
        else if (line === "QUIT") sock.end("221 bye\r\n");
        else sock.write("502 no\r\n");
      }
    });
  });
  await new Promise<void>((r) => s.listen(port, "127.0.0.1", r));
  return s;
}

before(async () => {
  f = await relayFixture("attack-check-shared-mx");
  mxPort = await freePort();
  mx = await startSharedMx(mxPort);
  dns = await startDnsServer({
    "mx.provider.test": { A: ["127.0.0.1"] },
    ...Object.fromEntries(
      DOMAINS.map((d) => [d, { MX: [{ preference: 10, exchange: "mx.provider.test" }] }]),
    ),
  });
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      dns: { servers: [dns.address] },
      policies: [{ name: "tenant/partners", domains: DOMAINS, outbound: { tls: { mode: "opportunistic" } } }],
    },
    { files: { "secrets/admin/token": `${TOKEN}\n` } },
  );
  await f.start({ mxPort });
});

after(async () => {
  for (const s of sockets) s.destroy();
  await f?.stop(() => Promise.all([new Promise((r) => mx.close(r)), dns?.stop()]));
});

describe("attack: checks of many domains sharing one MX", () => {
  it("probe the shared MX address once per interval, not once per domain", async () => {
    for (const domain of DOMAINS) {
      const res = await fetch(`http://127.0.0.1:${f.ports.admin}/check`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ policy: "tenant/partners", domain }),
      });
      assert.equal(res.status, 200, domain);
      const r = CheckReport.parse(await res.json());
      // each domain's report still has the MX's facts
      assert.deepEqual(
        r.hosts.map((h) => [h.name, h.address, h.error ?? "", h.starttls]),
        [["mx.provider.test", "127.0.0.1", "", false]],
        domain,
      );
      assert.equal(r.strictest, "opportunistic", domain);
    }
    // one check's sessions (TLS 1.3, then TLS 1.2 with the broad list); before, the same again for
    // every domain
    assert.ok(
      sessions <= 2,
      `${DOMAINS.length} checks opened ${sessions} SMTP sessions to the one shared MX address`,
    );
  });
});
