// Key pinning (issue 19 item 3) and the partner certificate watch (item 4) against a real Postfix
// whose certificate changes during the test: two keys pinned (the current and a backup), a rotation
// to the backup key still delivers, a rotation to a third key defers before MAIL FROM (nothing
// reaches that server) and the delivery log names the key seen. From the attacker's side: a server
// with a valid certificate from the partner's own CA for the right name, but another key, gets
// nothing under verify + pins. Pins are computed with the openssl CLI, not with the relay's code.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { makeLeaf, type Leaf } from "../support/certs.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type LogCapture, type RelayFixture, type TestPorts } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

type PolicyInput = NonNullable<RelayConfigInput["policies"]>[number];

const run = promisify(execFile);

/** RFC 7469 pin-sha256 of a certificate file, as the guide tells an administrator to compute it. */
async function pinOf(certFile: string): Promise<string> {
  const { stdout } = await run("sh", [
    "-c",
    `openssl x509 -in "${certFile}" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
  ]);
  return stdout.trim();
}

let f: RelayFixture;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let peer: PostfixPeer;
let key1: Leaf;
let key2: Leaf;
let key3: Leaf;
let soon: Leaf;
let pin1: string;
let pin2: string;
let pin3: string;

const NAMES = ["mx.pinned.test", "mx.verified.test", "mx.watch.test"];

/** The partner's server at the same address gets another certificate (a key rotation). */
async function rotate(cert: Leaf): Promise<void> {
  const port = peer.port;
  await peer.stop();
  peer = await startPostfix({
    domains: ["pinned.test", "verified.test", "control.test", "watch.test"],
    tls: "require",
    cert,
    hostname: "mx.pinned.test",
    listen: { host: "127.0.0.1", port },
  });
}

async function configure(policies: PolicyInput[]): Promise<void> {
  await f.configure({ policies }, { files: { "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile) } });
  await relay?.checkConfig();
}

function policy(domain: string, tls: PolicyInput["outbound"]["tls"]): PolicyInput {
  return {
    name: `partner/${domain}`,
    domains: [domain],
    outbound: { tls, nextHop: { host: "127.0.0.1", port: peer.port } },
  };
}

const pinnedPolicy = () => policy("pinned.test", { mode: "pinned", pins: [pin1, pin2] });
const verifiedPolicy = () =>
  policy("verified.test", {
    mode: "verify",
    caFile: "secrets/partner-ca/ca.crt",
    matchNames: ["mx.pinned.test"],
    pins: [pin1, pin2],
  });

async function submit(rcpt: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: ports.smtp,
    from: "alice@local.test",
    to: rcpt,
    headers: { "X-Test-Id": tag },
    subject: tag,
  });
  assert.equal(r.code, 0, r.transcript);
  return r.queueId!;
}

async function deliveredTo(tag: string) {
  return (await peer.messages()).find((m) => m.headers["x-test-id"]?.[0] === tag);
}

function attempt(queueId: string, pred: (l: Record<string, unknown>) => boolean) {
  return () => logs.find((l) => l.event === "delivery" && l.queueId === queueId && pred(l));
}

before(async () => {
  f = await relayFixture("relay-tls-pins", { caName: "Partner CA" });
  ports = f.ports;
  // three keys for the same names, all from the partner's CA: only the pins tell them apart
  // (one after the other: openssl x509 -CAcreateserial shares the CA's serial file)
  key1 = await makeLeaf(f.ca, { cn: "mx.pinned.test", dnsNames: NAMES, name: "key1" });
  key2 = await makeLeaf(f.ca, { cn: "mx.pinned.test", dnsNames: NAMES, name: "key2" });
  key3 = await makeLeaf(f.ca, { cn: "mx.pinned.test", dnsNames: NAMES, name: "key3" });
  soon = await makeLeaf(f.ca, { cn: "mx.pinned.test", dnsNames: NAMES, name: "soon", days: 1 });
  [pin1, pin2, pin3] = await Promise.all([pinOf(key1.certFile), pinOf(key2.certFile), pinOf(key3.certFile)]);
  peer = await startPostfix({
    domains: ["pinned.test", "verified.test", "control.test", "watch.test"],
    tls: "require",
    cert: key1,
    hostname: "mx.pinned.test",
  });
  await configure([]);
  ({ relay, logs } = await f.start());
});

after(async () => {
  await f?.stop(() => peer?.stop());
});

describe("key pinning against a real Postfix whose key rotates", () => {
  it("mode pinned: the pinned key delivers, the backup pin after a rotation delivers, an unpinned key defers and gets nothing", async () => {
    await configure([pinnedPolicy()]);
    const a = await submit("bob@pinned.test", "pin-key1");
    await waitFor("delivered under key1", () => deliveredTo("pin-key1"), 20_000);
    const la = await waitFor(
      "log",
      attempt(a, (x) => x.result === "delivered"),
    );
    assert.equal(la.level, "fingerprint");
    assert.equal((la.session as { peerSpki?: string }).peerSpki, pin1);

    await rotate(key2);
    const b = await submit("bob@pinned.test", "pin-key2");
    await waitFor("delivered under the backup key", () => deliveredTo("pin-key2"), 20_000);
    const lb = await waitFor(
      "log",
      attempt(b, (x) => x.result === "delivered"),
    );
    assert.equal((lb.session as { peerSpki?: string }).peerSpki, pin2);

    await rotate(key3);
    const c = await submit("bob@pinned.test", "pin-key3");
    const lc = await waitFor(
      "deferral",
      attempt(c, (x) => x.result === "deferred"),
      20_000,
    );
    assert.equal(lc.code, "TLS_PIN_MISMATCH");
    assert.ok(String(lc.reason).includes(pin3), `the log names the key seen: ${String(lc.reason)}`);
    // refused after the handshake, before MAIL FROM: the server never saw the message
    assert.equal(await deliveredTo("pin-key3"), undefined);
    assert.doesNotMatch(peer.log(), /from=<alice@local\.test>/);
    // the certificate watch: this host's key changed and is not pinned
    const seen = relay.status().partnerCertificates?.["partner/pinned.test"]?.[0];
    assert.equal(seen?.spki, pin3);
    assert.equal(seen?.unpinned, true);
    assert.equal(seen?.previousSpki, pin2);
  });

  it("attacker: a server with a valid CA-signed certificate for the name but an unpinned key gets nothing under verify + pins", async () => {
    // peer now presents key3: the partner's CA signed it for mx.pinned.test (a mis-issuance, or a
    // compromised CA); verify alone accepts it, as the control shows
    // the pinned.test policy stays: its deferred message never falls to another route
    await configure([
      pinnedPolicy(),
      policy("control.test", {
        mode: "verify",
        caFile: "secrets/partner-ca/ca.crt",
        matchNames: ["mx.pinned.test"],
      }),
      verifiedPolicy(),
    ]);
    await submit("carol@control.test", "pin-control");
    await waitFor(
      "the control is delivered: the certificate verifies",
      () => deliveredTo("pin-control"),
      20_000,
    );
    const id = await submit("carol@verified.test", "pin-mitm");
    const l = await waitFor(
      "deferral",
      attempt(id, (x) => x.result === "deferred"),
      20_000,
    );
    assert.equal(l.code, "TLS_PIN_MISMATCH");
    assert.equal(l.level, "verify");
    assert.equal(await deliveredTo("pin-mitm"), undefined);
  });

  it("certificate watch: a partner certificate that expires within a day is on /status and in the metric", async () => {
    await rotate(soon);
    await configure([pinnedPolicy(), verifiedPolicy(), policy("watch.test", { mode: "required" })]);
    await submit("dave@watch.test", "watch-soon");
    await waitFor("delivered", () => deliveredTo("watch-soon"), 20_000);
    const certs = await waitFor("watched", () => relay.status().partnerCertificates?.["partner/watch.test"]);
    const c = certs[0]!;
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.spki, await pinOf(soon.certFile));
    assert.match(c.issuer ?? "", /Partner CA/);
    const left = Date.parse(c.notAfter) - Date.now();
    assert.ok(left > 0 && left <= 86_400_000 + 60_000, `notAfter ${c.notAfter}`);
    assert.equal(c.unpinned, undefined);
    const metrics = await relay.metrics.registry.metrics();
    const m =
      /sealpost_relay_partner_certificate_expiry_timestamp_seconds\{policy="partner\/watch\.test",host="127\.0\.0\.1"\} (\d+)/.exec(
        metrics,
      );
    assert.equal(Number(m?.[1]), Math.floor(Date.parse(c.notAfter) / 1000));
  });
});
