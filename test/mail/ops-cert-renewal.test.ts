// Certificate renewal the way kubelet delivers it (the Secret's new tls.crt/tls.key appear through
// an atomic `..data` symlink swap) while a client keeps sending: no session fails, and new TLS
// sessions present the new certificate (fingerprint256 of the peer certificate).
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { after, before, describe, it } from "node:test";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf, type Leaf } from "../support/certs.js";
import { waitFor } from "../support/process.js";
import {
  rawSession,
  startRelay,
  testConfig,
  testPorts,
  writeConfigDir,
  type TestPorts,
} from "../support/relay.js";

let work: string;
let ports: TestPorts;
let relay: Relay;
let configDir: string;
let cert1: Leaf;
let cert2: Leaf;

async function fingerprintOf(file: string): Promise<string> {
  return new X509Certificate(await readFile(file)).fingerprint256;
}

async function write(cert: Leaf, generation: number): Promise<void> {
  const cfg = testConfig(ports, join(work, "queue"), { generation });
  await writeConfigDir(configDir, {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(cert.certFile),
    "tls/tls.key": await readFile(cert.keyFile),
  });
}

/** The fingerprint the implicit-TLS listener presents to a new session. */
function served(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: "127.0.0.1",
      port: ports.smtps,
      rejectUnauthorized: false,
      servername: "relay.test",
    });
    s.once("secureConnect", () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once("error", reject);
  });
}

/** One whole SMTP transaction over STARTTLS; returns the fingerprint seen and the final reply. */
async function transaction(i: number): Promise<string> {
  const s = await rawSession(ports.smtp);
  try {
    await s.cmd("EHLO sender.test");
    assert.match(await s.starttls(), /^220 /);
    await s.cmd("EHLO sender.test");
    assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250 /);
    assert.match(await s.cmd(`RCPT TO:<bob${i}@local.test>`), /^250 /);
    assert.match(await s.cmd("DATA"), /^354 /);
    return await s.data(`Subject: ${i}\r\n\r\nmessage ${i}`);
  } finally {
    s.close();
  }
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "ops-cert-"));
  configDir = join(work, "config");
  const ca = await makeCa(join(work, "ca"));
  cert1 = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"], name: "old" });
  cert2 = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"], name: "new" });
  ports = await testPorts();
  await write(cert1, 1);
  ({ relay } = await startRelay(configDir));
});

after(async () => {
  await relay?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("server certificate renewal under load", () => {
  it("kubelet-style swap while a client keeps sending: no session fails, new sessions get the new certificate", async () => {
    const [oldFp, newFp] = [await fingerprintOf(cert1.certFile), await fingerprintOf(cert2.certFile)];
    assert.notEqual(oldFp, newFp);
    assert.equal(await served(), oldFp);
    let stop = false;
    let sent = 0;
    const failures: string[] = [];
    const sender = (async () => {
      while (!stop) {
        const i = sent++;
        try {
          const reply = await transaction(i);
          if (!/^250 /.test(reply)) failures.push(`${i}: ${reply}`);
        } catch (e) {
          failures.push(`${i}: ${(e as Error).message}`);
        }
      }
    })();
    await waitFor("a few sessions before the swap", () => (sent >= 3 ? true : undefined));
    const before = sent;
    await write(cert2, 2);
    await relay.checkConfig();
    await waitFor("new certificate served", async () => ((await served()) === newFp ? true : undefined));
    await waitFor("a few sessions after the swap", () => (sent >= before + 6 ? true : undefined));
    stop = true;
    await sender;
    assert.deepEqual(failures, []);
    assert.equal(await served(), newFp, "every new session now gets the new certificate");
  });
});
