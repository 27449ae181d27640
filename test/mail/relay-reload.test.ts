// Live reconfiguration and lifecycle: a domain's mode changes from opportunistic to required while
// an inbound session stays open (no restart; the watcher notices the kubelet-style swap); SIGTERM-
// style graceful stop lets an open session finish; a restart resumes the queue. The config as the
// operator ships it (issue 18: compact JSON gzipped into one ConfigMap key, mounted as
// config.json.gz) reloads the same way; a corrupt config.json.gz, one that inflates past the relay's
// limit, and a generation holding both config.json and config.json.gz are refused: the last good
// config stays, /status says why and the reload metric counts the failure.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { CONFIG_VERSION, type RelayConfigInput } from "../../relay/contract/config.js";
import {
  CONFIG_GZ_FILE,
  configJsonText,
  encodeConfig,
  MAX_CONFIG_JSON_BYTES,
} from "../../relay/contract/config-encoding.js";
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
import { startSink, type Sink } from "../support/sink.js";

type Mode = NonNullable<RelayConfigInput["defaultOutbound"]>["tls"]["mode"];
let work: string;
let leaf: Leaf;
let sink: Sink; // no STARTTLS
let ports: TestPorts;

function config(queueDir: string, mode: Mode, generation: number): RelayConfigInput {
  return testConfig(ports, queueDir, {
    generation,
    policies: [
      {
        name: "t/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode }, nextHop: { host: "127.0.0.1", port: sink.port } },
      },
    ],
  });
}

/** One kubelet-style generation of `files` and the server certificate. */
async function writeGeneration(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  await writeConfigDir(dir, {
    ...files,
    "tls/tls.crt": await readFile(leaf.certFile),
    "tls/tls.key": await readFile(leaf.keyFile),
  });
}

async function writeConfig(dir: string, queueDir: string, mode: Mode, generation: number): Promise<void> {
  await writeGeneration(dir, { "config.json": JSON.stringify(config(queueDir, mode, generation)) });
}

/** The operator's form: config.json.gz. */
async function writeGz(dir: string, queueDir: string, mode: Mode, generation: number): Promise<void> {
  await writeGeneration(dir, {
    [CONFIG_GZ_FILE]: encodeConfig(configJsonText(config(queueDir, mode, generation))),
  });
}

/** `c` with a field a newer operator might write under the policy's outbound TLS. */
function newerField(c: RelayConfigInput): unknown {
  const p = c.policies![0]!;
  return {
    ...c,
    policies: [
      { ...p, outbound: { ...p.outbound, tls: { ...p.outbound.tls, certificateTransparency: "require" } } },
    ],
  };
}

/** One message to b@partner.test over the open session `s`; its queue id. */
async function sendTagged(s: Awaited<ReturnType<typeof rawSession>>, tag: string): Promise<string> {
  assert.match(await s.cmd("MAIL FROM:<a@local.test>"), /^250 /);
  assert.match(await s.cmd("RCPT TO:<b@partner.test>"), /^250 /);
  assert.match(await s.cmd("DATA"), /^354 /);
  const r = await s.data(`Subject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nbody`);
  assert.match(r, /^250 2\.0\.0 Ok: queued as /);
  return r.split(" ").pop()!;
}

async function failedReloads(relay: Relay): Promise<number> {
  const m = await relay.metrics.reloads.get();
  return m.values.find((v) => v.labels.result === "failed")?.value ?? 0;
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
      const send = (tag: string) => sendTagged(s, tag);
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
    // the transaction is over: the stopping relay may tell the session 421 and close it before the
    // QUIT arrives (that reply can come in the same read as the 250, the client keeps it for QUIT)
    assert.match(await s.cmd("QUIT"), /^(221|421) /);
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

  it("config.json.gz: a reload keeps the open session; corrupt, oversized or ambiguous configs are refused", async () => {
    ports = await testPorts();
    const dir = join(work, "c3");
    const q = join(work, "q3");
    await writeGz(dir, q, "opportunistic", 1);
    const { relay, logs } = await startRelay(dir);
    try {
      // the hash the relay reports is the JSON's (what the operator annotates), not the gzip's
      const first = configJsonText(config(q, "opportunistic", 1));
      assert.equal(relay.status().configHash, createHash("sha256").update(first).digest("hex"));
      const s = await rawSession(ports.smtp);
      await s.cmd("EHLO client.test");
      const send = (tag: string) => sendTagged(s, tag);
      const deferral = (id: string) =>
        waitFor("deferral", () =>
          logs.find((x) => x.event === "delivery" && x.queueId === id && x.result === "deferred"),
        );
      await send("gz-before");
      assert.equal((await waitFor("delivered in clear", has("gz-before"), 15_000)).secure, false);

      await writeGz(dir, q, "required", 2); // through the ..data swap of config.json.gz
      await waitFor("reload", () => (relay.status().generation === 2 ? true : undefined), 15_000);
      assert.equal((await deferral(await send("gz-after"))).code, "TLS_NOT_OFFERED"); // same session
      const good = relay.status().configHash;

      const bad: [string, Record<string, string | Buffer>, RegExp][] = [
        [
          "corrupt gzip",
          { [CONFIG_GZ_FILE]: Buffer.from("not a gzip stream") },
          /CONFIG_INVALID: config\.json\.gz/,
        ],
        [
          "inflates past the limit",
          { [CONFIG_GZ_FILE]: gzipSync(Buffer.alloc(MAX_CONFIG_JSON_BYTES + 1, 0x20)) },
          /inflates to more than/,
        ],
        // a newer operator's config (issue: version skew in a rolling upgrade): a policy field this
        // relay has no code for, on a policy that otherwise reads weaker; and a newer contract
        [
          "a field this relay does not know",
          { [CONFIG_GZ_FILE]: encodeConfig(JSON.stringify(newerField(config(q, "opportunistic", 3)))) },
          /policies\.0\.outbound\.tls: Unrecognized key: "certificateTransparency" \(written for a newer relay/,
        ],
        [
          "a newer contract version",
          {
            [CONFIG_GZ_FILE]: encodeConfig(
              JSON.stringify({ ...config(q, "opportunistic", 3), version: CONFIG_VERSION + 1 }),
            ),
          },
          /version: written for a newer relay \(this one reads versions 1 to /,
        ],
        [
          "both config.json and config.json.gz",
          {
            [CONFIG_GZ_FILE]: encodeConfig(configJsonText(config(q, "opportunistic", 3))),
            "config.json": configJsonText(config(q, "opportunistic", 3)),
          },
          /both config\.json\.gz and config\.json/,
        ],
      ];
      for (const [what, files, reason] of bad) {
        const failures = await failedReloads(relay);
        await writeGeneration(dir, files);
        await waitFor(`${what}: reported`, async () =>
          (await failedReloads(relay)) > failures ? true : undefined,
        );
        const st = relay.status();
        assert.match(st.lastReloadError ?? "", reason, what);
        assert.equal(st.generation, 2, what);
        assert.equal(st.configHash, good, what);
      }
      // the session still runs under the last good config: deferred, never in clear
      await deferral(await send("gz-still"));
      assert.equal(has("gz-still")(), undefined, "never delivered in clear");

      // a good generation again, from an older operator (version 1): loaded, the error cleared
      await writeGeneration(dir, {
        [CONFIG_GZ_FILE]: encodeConfig(JSON.stringify({ ...config(q, "required", 4), version: 1 })),
      });
      await waitFor("reload 4", () => (relay.status().generation === 4 ? true : undefined), 15_000);
      assert.equal(relay.status().lastReloadError, undefined);
      assert.match(await s.cmd("QUIT"), /^221 /);
      s.close();
    } finally {
      await relay.stop();
    }
  });
});
