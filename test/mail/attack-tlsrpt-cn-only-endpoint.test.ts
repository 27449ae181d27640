// Attack on 8055849 (a server is named by its subjectAltName, never its CN alone): the relay's one
// check of a server's names (relay/outbound/server-names.ts) took over mode verify, the audit,
// `sealpost check` and the MTA-STS and WKD fetches, but the TLS-RPT report's HTTPS POST to a
// domain's rua=https:... (relay/outbound/tlsrpt.ts postReport) still used Node's default
// checkServerIdentity, which falls back to the subject's CN when a certificate has no DNS name. A
// server whose certificate's only name is a CN for the report host (a private or mis-issuing CA's)
// was sent the report: which of the domain's MX hosts failed TLS, how often, from which addresses.
// Promise broken: no outbound HTTPS peer is taken by its CN.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { postReport } from "../../relay/outbound/tlsrpt.js";
import { makeCa, makeLeaf, type Ca } from "../support/certs.js";

let dir: string;
let ca: Ca;
const servers: Server[] = [];

async function serve(o: { cn: string; dnsNames?: string[]; name: string }): Promise<number> {
  const leaf = await makeLeaf(ca, o);
  const server = createServer(
    { cert: await readFile(leaf.certFile), key: await readFile(leaf.keyFile) },
    (req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200).end());
    },
  );
  servers.push(server);
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  return (server.address() as AddressInfo).port;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsrpt-cn-"));
  ca = await makeCa(dir);
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  await rm(dir, { recursive: true, force: true });
});

describe("attack: a TLS-RPT endpoint whose certificate's only name is its CN", () => {
  it("is not sent the report", async () => {
    const port = await serve({ cn: "localhost", name: "cn-only" });
    const caPem = await readFile(ca.certFile);
    await assert.rejects(
      postReport(`https://localhost:${port}/report`, Buffer.from("x"), caPem),
      "the report was posted to a server named only by its CN",
    );
  });

  it("the same name as a subjectAltName is (the control)", async () => {
    const port = await serve({ cn: "localhost", dnsNames: ["localhost"], name: "san" });
    const caPem = await readFile(ca.certFile);
    assert.equal(await postReport(`https://localhost:${port}/report`, Buffer.from("x"), caPem), 200);
  });
});
