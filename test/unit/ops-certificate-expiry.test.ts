// The CertificateExpiring condition from the server certificate Secret's tls.crt (pure functions).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  certificateExpiringCondition,
  certificateNotAfter,
} from "../../operator/status/certificate-expiry.js";
import { dropSecretValues } from "../../operator/state.js";
import { makeCa, makeLeaf } from "../support/certs.js";

let work: string;
let crt: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "ops-cert-"));
  const ca = await makeCa(join(work, "ca"));
  const leaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"], days: 10 });
  crt = (await readFile(leaf.certFile)).toString("base64");
});
after(() => rm(work, { recursive: true, force: true }));

describe("CertificateExpiring", () => {
  it("reads notAfter from a Secret's base64 tls.crt", () => {
    const d = certificateNotAfter(crt);
    assert.ok(d);
    const days = (d.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 9 && days <= 10, String(days));
    assert.equal(certificateNotAfter(undefined), undefined);
    assert.equal(certificateNotAfter(Buffer.from("not a cert").toString("base64")), undefined);
  });

  it("True within the warning window or past notAfter, False before, Unknown when unreadable", () => {
    const notAfter = new Date("2030-01-31T00:00:00Z");
    const at = (iso: string) => certificateExpiringCondition(notAfter, new Date(iso), 3, 14);
    assert.equal(at("2029-12-01T00:00:00Z").status, "False");
    const soon = at("2030-01-21T00:00:00Z");
    assert.deepEqual([soon.status, soon.reason], ["True", "CertificateExpiresSoon"]);
    assert.match(soon.message, /expires in 10 days/);
    const gone = at("2030-02-01T00:00:00Z");
    assert.deepEqual([gone.status, gone.reason], ["True", "CertificateExpired"]);
    assert.equal(certificateExpiringCondition(undefined, new Date(), 3).status, "Unknown");
  });

  it("the operator's Secret cache keeps a TLS Secret's tls.crt and nothing else", () => {
    const s = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "edge-tls" },
      type: "kubernetes.io/tls",
      data: { "tls.crt": crt, "tls.key": "a2V5" },
    };
    dropSecretValues(s);
    assert.equal(s.data["tls.crt"], crt);
    assert.equal(s.data["tls.key"], "");
    const o = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "x" },
      type: "Opaque",
      data: { "tls.crt": crt },
    };
    dropSecretValues(o);
    assert.equal(o.data["tls.crt"], "");
  });
});
