// Attack (config review, tenant side): policy material as large as Secrets allow, read again every
// second. The operator never reads Secret or ConfigMap values (its caches drop them), so it cannot
// bound what a policy's references weigh: each CA bundle, S/MIME certificate source, OpenPGP keyring
// or signing key, client certificate may be a Secret or ConfigMap of up to 1 MiB, and a tenant who
// may write policies and Secrets names as many as the pod template's item budget lets join (512 KiB
// of items: thousands of sources). The relay reads every referenced file when it loads a config and
// keeps them all in memory; and its watcher (relay/config/watch.ts, every second, on every pod) asks
// unchangedFingerprint, which reads every referenced file again and hashes it on the event loop,
// although kubelet never changes a file inside a generation (it swaps `..data`). A tenant's few
// hundred MiB of material so cost each relay pod that much memory again, and as much reading and
// hashing, every second, while nothing changes: the event loop every tenant's SMTP sessions and
// deliveries share, and a memory limit (512Mi by default) the copies push the pod over (an OOM kill
// on every load: a restart loop).
// What it must do: a poll that finds the same kubelet generation reads no material again.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type * as fsp from "node:fs/promises";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { CONFIG_VERSION } from "../../relay/contract/config.js";
import { loadConfig, unchangedFingerprint } from "../../relay/config/load.js";

const sh = promisify(execFile);
const require = createRequire(import.meta.url);
const cjsFsp = require("node:fs/promises") as typeof fsp;
let dir: string;
const POLICIES = 16;
const MIB = 1024 * 1024;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "attack-material-poll-"));
  const gen = join(dir, "..2026_01_01_00_00_00.000000001");
  await mkdir(join(gen, "tls"), { recursive: true });
  await sh("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", join(gen, "tls", "tls.key"), "-out", join(gen, "tls", "tls.crt"),
    "-subj", "/CN=relay.example.com", "-days", "2",
  ]); // prettier-ignore
  const policies = [];
  for (let i = 0; i < POLICIES; i++) {
    // a tenant's ConfigMap of 1 MiB named as a policy's CA bundle (the operator sees its key only)
    const path = `configmaps/bundle-${i}/ca.crt`;
    await mkdir(join(gen, "configmaps", `bundle-${i}`), { recursive: true });
    await writeFile(join(gen, path), Buffer.alloc(MIB - 1024, "A"));
    policies.push({
      name: `tenant/p${i}`,
      domains: [`p${i}.tenant.example`],
      outbound: { tls: { mode: "verify", minVersion: "TLSv1.2", caFile: path } },
    });
  }
  const config = {
    version: CONFIG_VERSION,
    relay: "mail/edge",
    hostname: "relay.example.com",
    listeners: {},
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    inbound: {},
    queue: { dir: "/nonexistent/queue" },
    policies,
  };
  await writeFile(join(gen, "config.json"), JSON.stringify(config));
  await sh("ln", ["-s", "..2026_01_01_00_00_00.000000001", join(dir, "..data")]);
});

after(() => rm(dir, { recursive: true, force: true }));

describe("attack: every poll reads and hashes all of the tenants' material again", () => {
  it("a poll that finds the same kubelet generation reads no material file", async () => {
    const { result } = await loadConfig(dir);
    assert.ok(result.ok, result.ok ? "" : result.message);
    const held = [...result.value.files.values()].reduce((n, b) => n + b.length, 0);
    assert.ok(held >= POLICIES * (MIB - 1024), `the loaded config holds ${held} bytes of material`);
    // count what the poll reads (load.ts imports readFile from node:fs/promises)
    const original = cjsFsp.readFile;
    let bytes = 0;
    cjsFsp.readFile = (async (...args: Parameters<typeof original>) => {
      const b = await original(...args);
      bytes += typeof b === "string" ? Buffer.byteLength(b) : b.length;
      return b;
    }) as typeof original;
    syncBuiltinESMExports();
    try {
      const fp = await unchangedFingerprint(dir, result.value);
      assert.equal(fp, result.value.fingerprint, "nothing changed");
    } finally {
      cjsFsp.readFile = original;
      syncBuiltinESMExports();
    }
    assert.ok(
      bytes < MIB,
      `one poll (every second, on every pod) read ${bytes} bytes: all ${POLICIES} policies' material again`,
    );
  });
});
