// Live reconfiguration and lifecycle: a domain's mode changes from opportunistic to required while
// an inbound session stays open (no restart; the watcher notices the kubelet-style swap); SIGTERM-
// style graceful stop lets an open session finish; a restart resumes the queue.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
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
import { startSink, type Sink } from "../support/sink.js";

type Mode = NonNullable<RelayConfigInput["defaultOutbound"]>["tls"]["mode"];
let work: string;
let leaf: Leaf;
let sink: Sink; // no STARTTLS
let ports: TestPorts;

async function writeConfig(dir: string, queueDir: string, mode: Mode, generation: number): Promise<void> {
  const cfg = testConfig(ports, queueDir, {
    generation,
    policies: [
      {
        name: "t/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode }, nextHop: { host: "127.0.0.1", port: sink.port } },
      },
    ],
  });
  await writeConfigDir(dir, {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(leaf.certFile),
    "tls/tls.key": await readFile(leaf.keyFile),
  });
}

const has = (tag: string) => () => sink.messages.find((m) => m.data.toString().includes(`X-Test-Id: ${tag}`));

before(async () => {
  work = await mkdtemp(join(tmpdir(), "relay-reload-"));
  const ca = await makeCa(join(work, "ca"));
  leaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  sink = await startSink();
});

after(async () => {
  await sink?.close();
  await rm(work, { recursive: true, force: true });
});

describe("relay reload and lifecycle", () => {
  it("opportunistic -> required takes effect without restart, while a session is open", async () => {
    ports = await testPorts();
    const dir = join(work, "c1");
    await writeConfig(dir, join(work, "q1"), "opportunistic", 1);
    const { relay, logs } = await startRelay(dir);
    try {
      const s = await rawSession(ports.smtp);
      await s.cmd("EHLO client.test");
      const send = async (tag: string): Promise<string> => {
        assert.match(await s.cmd("MAIL FROM:<a@local.test>"), /^250 /);
        assert.match(await s.cmd("RCPT TO:<b@partner.test>"), /^250 /);
        assert.match(await s.cmd("DATA"), /^354 /);
        const r = await s.data(`Subject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nbody`);
        assert.match(r, /^250 2\.0\.0 Ok: queued as /);
        return r.split(" ").pop()!;
      };
      await send("before-change");
      const m = await waitFor("delivered in clear under opportunistic", has("before-change"), 15_000);
      assert.equal(m.secure, false);

      await writeConfig(dir, join(work, "q1"), "required", 2); // the watcher picks it up
      await waitFor("reload", () => (relay.status().generation === 2 ? true : undefined), 15_000);

      const id = await send("after-change"); // same session, still open
      const l = await waitFor("deferral", () =>
        logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "deferred"),
      );
      assert.equal(l.code, "TLS_NOT_OFFERED");
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(has("after-change")(), undefined, "never delivered in clear");
      assert.match(await s.cmd("QUIT"), /^221 /);
      s.close();
      assert.ok(logs.find((x) => x.event === "config-reload" && x.result === "ok"));
    } finally {
      await relay.stop();
    }
  });

  it("graceful stop: new connections refused, the open session finishes; a restart resumes the queue", async () => {
    ports = await testPorts();
    const dir = join(work, "c2");
    const q = join(work, "q2");
    await writeConfig(dir, q, "required", 1); // the sink offers no STARTTLS: the message stays queued
    const first = await startRelay(dir, { graceMs: 5000 });
    const s = await rawSession(ports.smtp);
    await s.cmd("EHLO client.test");
    await s.cmd("MAIL FROM:<a@local.test>");
    await s.cmd("RCPT TO:<b@partner.test>");
    const stopping = first.relay.stop();
    await waitFor("listener closed", async () => {
      const refused = await rawSession(ports.smtp).then(
        (x) => (x.close(), false),
        () => true,
      );
      return refused ? true : undefined;
    });
    assert.match(await s.cmd("DATA"), /^354 /);
    assert.match(
      await s.data("Subject: x\r\nX-Test-Id: graceful\r\n\r\nbody"),
      /^250 2\.0\.0 Ok: queued as /,
    );
    await s.cmd("QUIT");
    s.close();
    await stopping;
    assert.equal(has("graceful")(), undefined);

    await writeConfig(dir, q, "opportunistic", 2);
    const second = await startRelay(dir);
    try {
      await waitFor("resumed and delivered", has("graceful"), 15_000);
      assert.ok(second.logs.find((x) => x.event === "queue-recovered"));
    } finally {
      await second.relay.stop();
    }
  });
});
