// What makes a credential unusable when the relay loads its config (relay/config/load.ts): a client
// certificate and key that do not parse or do not belong together, checked without OpenSSL's TLS
// security level (an RSA-1024 key that only signs S/MIME stays usable; attack review of session 6's
// first version, which refused it).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { clientCertificateProblem, MAX_PASSWORD_BYTES, passwordProblem } from "../../relay/config/load.js";

const sh = promisify(execFile);
let dir: string;
const pem: Record<string, Buffer> = {};

async function selfSigned(name: string, newkey: string): Promise<void> {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  await sh("openssl", [
    "req", "-x509", "-newkey", newkey, "-nodes", "-keyout", key, "-out", crt, "-subj", `/CN=${name}`,
    "-days", "2", "-addext", "extendedKeyUsage=emailProtection",
  ]); // prettier-ignore
  pem[`${name}.crt`] = await readFile(crt);
  pem[`${name}.key`] = await readFile(key);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "relay-credential-material-"));
  await selfSigned("weak", "rsa:1024");
  await selfSigned("other", "rsa:2048");
});
after(() => rm(dir, { recursive: true, force: true }));

describe("client certificate credentials at load", () => {
  it("a certificate with its own key is usable, an RSA-1024 one included", () => {
    assert.equal(clientCertificateProblem(pem["weak.crt"], pem["weak.key"]), undefined);
    assert.equal(clientCertificateProblem(pem["other.crt"], pem["other.key"]), undefined);
  });

  it("a key that is not the certificate's, or either not PEM, is unusable, with why", () => {
    assert.equal(
      clientCertificateProblem(pem["weak.crt"], pem["other.key"]),
      "the key is not the certificate's",
    );
    assert.match(clientCertificateProblem(Buffer.from("not a certificate"), pem["weak.key"]) ?? "", /./);
    assert.match(clientCertificateProblem(pem["weak.crt"], Buffer.from("not a key")) ?? "", /./);
    assert.match(clientCertificateProblem(undefined, undefined) ?? "", /./);
  });
});

// attack review, session 9: a password credential whose author could not read its Secret sent a key
// to a server of theirs; a key or token is never one line of at most MAX_PASSWORD_BYTES
describe("a password file that is not a password", () => {
  it("empty, more than one line (any PEM or armored key) or over the size: unusable", () => {
    assert.match(passwordProblem(" ") ?? "", /empty or white space only/);
    for (const p of [
      "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----",
      "line1\rline2",
      "x".repeat(MAX_PASSWORD_BYTES + 1),
      "é".repeat(MAX_PASSWORD_BYTES / 2 + 1),
    ])
      assert.match(passwordProblem(p) ?? "", /more than one line or over 512 bytes: a key or a token/);
    assert.equal(passwordProblem("correct horse battery staple"), undefined);
    assert.equal(passwordProblem("x".repeat(MAX_PASSWORD_BYTES)), undefined);
  });
});
