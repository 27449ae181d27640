// Issue 22 finding 2, the pure parts and the fetch deadline: next hops capped and deduplicated,
// attempts bounded by a slot count, and an outbound fetch cut by its overall deadline however
// slowly its server drips the answer (an idle timeout alone never fires on a drip).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { isSession, limitHops, Slots } from "../../relay/outbound/attempt-limits.js";
import { MtaSts } from "../../relay/outbound/mta-sts.js";
import { Wkd, wkdLocation } from "../../relay/outbound/wkd.js";
import type { Dns } from "../../relay/outbound/mx.js";
import { postReport } from "../../relay/outbound/tlsrpt.js";
import { makeCa, makeLeaf } from "../support/certs.js";

const hop = (address: string, port = 25) => ({ name: `mx-${address}`, address, port });

/** A resolver where every name is 127.0.0.1 (IPv4 only) and TXT answers `txt`. */
const loopbackDns = (txt: string[][]): Dns => ({
  resolveTxt: () => Promise.resolve(txt),
  resolve4: () => Promise.resolve(["127.0.0.1"]),
  resolve6: () => Promise.resolve([]),
  resolveMx: () => Promise.resolve([]),
});

describe("issue 22 finding 2: attempt limits", () => {
  it("limitHops: each address:port once, at most the limit, in order", () => {
    const hops = [
      "10.0.0.1",
      "10.0.0.1",
      "10.0.0.2",
      "10.0.0.3",
      "10.0.0.2",
      "10.0.0.4",
      "10.0.0.5",
      "10.0.0.6",
    ];
    assert.deepEqual(
      limitHops(
        hops.map((a) => hop(a)),
        5,
      ).map((h) => h.address),
      ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"],
    );
    assert.equal(limitHops([hop("10.0.0.1", 25), hop("10.0.0.1", 587)], 5).length, 2);
  });

  it("isSession: an unreachable hop is not a session, any answer is", () => {
    assert.equal(isSession({ code: "CONNECT_FAILED" }), false);
    for (const code of ["CONNECT_REJECTED", "TLS_NOT_OFFERED", "TLS_VERIFY_FAILED", "AUTH_FAILED"] as const)
      assert.equal(isSession({ code }), true, code);
  });

  it("Slots: never more holders than the count", async () => {
    const slots = new Slots(() => 2);
    let open = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        slots.run(async () => {
          max = Math.max(max, ++open);
          await new Promise((r) => setImmediate(r));
          open--;
        }),
      ),
    );
    assert.equal(max, 2);
  });

  it(
    "a TLS-RPT POST to a server that drips its answer is cut by the overall deadline",
    { timeout: 20_000 },
    async () => {
      const drips: NodeJS.Timeout[] = [];
      const srv = createServer((req, res: ServerResponse) => {
        req.resume();
        res.writeHead(200, { "content-type": "text/plain" });
        drips.push(setInterval(() => res.write("."), 100));
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      try {
        const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/report`;
        await assert.rejects(postReport(url, Buffer.from("x"), undefined, 30_000, 500), /timeout/);
      } finally {
        for (const d of drips) clearInterval(d);
        srv.closeAllConnections();
        srv.close();
      }
    },
  );

  it(
    "an MTA-STS policy fetch from a server that drips its answer is cut by the overall deadline",
    { timeout: 30_000 },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "sts-drip-"));
      const drips: NodeJS.Timeout[] = [];
      try {
        const ca = await makeCa(join(dir, "ca"));
        const leaf = await makeLeaf(ca, { cn: "mta-sts.drip.test", dnsNames: ["mta-sts.drip.test"] });
        const srv = createHttpsServer(
          { cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) },
          (_req, res) => {
            res.writeHead(200, { "content-type": "text/plain" });
            res.write("version: STSv1\r\n");
            drips.push(setInterval(() => res.write(" "), 100));
          },
        );
        await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
        const dns = loopbackDns([["v=STSv1; id=1;"]]);
        const caPem = await readFile(ca.certFile);
        const sts = new MtaSts({
          dns: () => dns,
          cacheDir: () => dir,
          ca: () => caPem,
          httpsPort: () => (srv.address() as AddressInfo).port,
          fetchDeadlineMs: () => 500,
        });
        const r = await sts.lookup("drip.test");
        assert.equal(r.failure?.type, "sts-policy-fetch-error", JSON.stringify(r));
        srv.closeAllConnections();
        srv.close();
      } finally {
        for (const d of drips) clearInterval(d);
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
  it(
    "a WKD lookup whose server answers each request with a redirect just before the deadline is cut by one deadline for all (attack review, session 6)",
    { timeout: 30_000 },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "wkd-slow-"));
      try {
        const ca = await makeCa(join(dir, "ca"));
        const leaf = await makeLeaf(ca, { cn: "openpgpkey.slow.test", dnsNames: ["openpgpkey.slow.test"] });
        const loc = wkdLocation("someone@slow.test")!;
        let n = 0;
        let port = 0;
        const timers: NodeJS.Timeout[] = [];
        const srv = createHttpsServer(
          { cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) },
          (_req, res) => {
            // each answer comes after most of the deadline, and sends the client on again
            timers.push(
              setTimeout(() => {
                res.writeHead(302, {
                  location: `https://${loc.advanced.host}:${port}${loc.advanced.path}&n=${n++}`,
                });
                res.end();
              }, 350),
            );
          },
        );
        await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
        port = (srv.address() as AddressInfo).port;
        const dns = loopbackDns([]);
        const caPem = await readFile(ca.certFile);
        const wkd = new Wkd({
          dns: () => dns,
          cacheDir: () => dir,
          ca: () => caPem,
          httpsPort: () => port,
          fetchDeadlineMs: () => 500,
        });
        const r = await wkd.lookup("someone@slow.test");
        for (const t of timers) clearTimeout(t);
        assert.equal(r.kind, "failed");
        // the deadline ended it, not the redirect limit after four requests of 350 ms each
        assert.match(r.kind === "failed" ? r.reason : "", /timeout/);
        assert.ok(n <= 2, `${n} requests answered`);
        srv.closeAllConnections();
        srv.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
