// Attack (config review, tenant side): a client certificate the relay's load accepts but OpenSSL's
// TLS refuses. relay/config/load.ts clientCertificateProblem deliberately skips OpenSSL's security
// level (an RSA-1024 key that only signs S/MIME stays usable), on the ground that "in TLS, a
// connection finds that out". A tenant who may write a RelayCredential and a kubernetes.io/tls
// Secret names an RSA-1024 certificate with its key as a policy's outbound.tls.clientCertificateRef:
// the operator accepts it (it never reads Secret values), the relay loads it (usable), and the
// policy says Accepted and Enforced. At delivery, createSecureContext throws ("ee key too small")
// out of deliver.ts open(): no hop is tried, no attempt is logged, no failure code is given, and
// the rejection runs up through the scheduler's Promise.all over the message's route groups, so
// finishAttempt never runs for that message (no expiry after queue.maxAge, no DSN for its other
// recipients' failures) and the other groups' slots and memory are released while they still send.
// What it must do: a deferral of that policy's recipients with a code and reason (as for any
// credential the relay cannot use), logged as an attempt.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { clientCertificateProblem } from "../../relay/config/load.js";
import { Deliverer } from "../../relay/outbound/deliver.js";
import { ConnectionPool } from "../../relay/outbound/pool.js";
import { bufferBody } from "../../relay/queue/message-body.js";
import type { AttemptRecord } from "../../relay/outbound/attempt-record.js";
import { startSink, type Sink } from "../support/sink.js";

const sh = promisify(execFile);
let dir: string;
let sink: Sink;
const pem: Record<string, Buffer> = {};

async function selfSigned(name: string, newkey: string): Promise<void> {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  await sh("openssl", [
    "req", "-x509", "-newkey", newkey, "-nodes", "-keyout", key, "-out", crt, "-subj", `/CN=${name}`,
    "-days", "2",
  ]); // prettier-ignore
  pem[`${name}.crt`] = await readFile(crt);
  pem[`${name}.key`] = await readFile(key);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "attack-client-cert-tls-"));
  await selfSigned("weak", "rsa:1024");
  await selfSigned("server", "rsa:2048");
  sink = await startSink({ tls: { cert: pem["server.crt"]!, key: pem["server.key"]! } });
});

after(async () => {
  await sink?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("attack: a client certificate the load accepts and TLS refuses", () => {
  it("the load finds it usable (the policy stays Accepted and Enforced)", () => {
    assert.equal(clientCertificateProblem(pem["weak.crt"], pem["weak.key"]), undefined);
  });

  it("its delivery is a deferral with a code and a logged attempt, never a thrown error", async () => {
    const attempts: AttemptRecord[] = [];
    const d = new Deliverer({
      pool: new ConnectionPool(100, 1),
      dns: () => undefined,
      material: () => ({ clientCert: { cert: pem["weak.crt"]!, key: pem["weak.key"]! } }),
      ehloName: () => "relay.test",
      timeouts: { connectionMs: 5000, greetingMs: 5000, socketMs: 5000 },
      mxPort: sink.port,
      onAttempt: (r) => attempts.push(r),
    });
    const outcome = await d
      .deliver({
        queueId: "Q1",
        from: "alice@local.test",
        recipients: ["bob@partner.test"],
        message: bufferBody(Buffer.from("Subject: x\r\n\r\nbody\r\n")),
        route: {
          policy: "tenant/partner",
          outbound: {
            tls: { mode: "required", minVersion: "TLSv1.2", clientCredential: "partner-client" },
            nextHop: { host: sink.host, port: sink.port },
          },
          domain: "partner.test",
          nextHop: { host: sink.host, port: sink.port },
        },
      })
      .then(
        (results) => ({ results }),
        (e: unknown) => ({ thrown: String(e) }),
      );
    assert.ok(!("thrown" in outcome), `deliver threw: ${"thrown" in outcome ? outcome.thrown : ""}`);
    const r = outcome.results[0];
    assert.equal(r?.outcome, "deferred");
    assert.ok(r?.code, "a failure code");
    assert.equal(attempts.at(-1)?.result, "deferred", "the attempt is logged");
    assert.equal(sink.messages.length, 0);
  });
});
