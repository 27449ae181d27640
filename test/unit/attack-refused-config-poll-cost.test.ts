// Attack (operations review): a refused config costs its whole load again every second. When the
// operator writes a config this relay refuses (a newer operator's key before the relay's image is
// upgraded, a broken certificate in the generation), the watcher (relay/config/watch.ts, every
// second, on every pod) found the directory unlike the last good config and called loadConfig
// again: read, gunzip, JSON.parse and the zod schema over every policy, then saw the same
// fingerprint and did nothing. At 10,000 policies that is a few hundred milliseconds of the event
// loop every second, shared with every SMTP session and delivery, for as long as the refused config
// stays mounted. What it must do: a poll that finds what was refused still there does not parse
// it again; a new config (or a read that had failed) is still read.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import type * as fsp from "node:fs/promises";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { loadConfig, refusalStands } from "../../relay/config/load.js";
import { watchConfig } from "../../relay/config/watch.js";
import { minimalRelayConfig } from "../support/minimal-relay-config.js";

const sh = promisify(execFile);
const require = createRequire(import.meta.url);
const cjsFsp = require("node:fs/promises") as typeof fsp;
const POLICIES = 2000;
let base: string;
let cert: Buffer;
let key: Buffer;

function config(extra: Record<string, unknown> = {}): string {
  const policies = [];
  for (let i = 0; i < POLICIES; i++)
    policies.push({
      name: `tenant/p${i}`,
      domains: [`p${i}.tenant.example`],
      outbound: { tls: { mode: "verify" as const, minVersion: "TLSv1.2" as const } },
    });
  return JSON.stringify({ ...minimalRelayConfig({ policies }), ...extra });
}
/** A config written for a newer relay: an unknown key refuses it (load.ts: never dropped). */
const NEWER = (): string => config({ futureSetting: true });

/** Writes a kubelet generation `name` under `dir` with `text` as config.json and swaps `..data` to it. */
async function generation(dir: string, name: string, text: string): Promise<void> {
  const gen = join(dir, name);
  await mkdir(join(gen, "tls"), { recursive: true });
  await writeFile(join(gen, "tls", "tls.crt"), cert);
  await writeFile(join(gen, "tls", "tls.key"), key);
  await writeFile(join(gen, "config.json"), text);
  await symlink(name, join(dir, "..data_tmp"));
  await rename(join(dir, "..data_tmp"), join(dir, "..data"));
}

/** Counts, while `fn` runs, the bytes read through fs/promises and the large texts JSON.parse was given. */
async function counting(fn: () => Promise<void>): Promise<{ bytes: number; parses: number }> {
  const original = cjsFsp.readFile;
  const parse = JSON.parse;
  const seen = { bytes: 0, parses: 0 };
  cjsFsp.readFile = (async (...args: Parameters<typeof original>) => {
    const b = await original(...args);
    seen.bytes += typeof b === "string" ? Buffer.byteLength(b) : b.length;
    return b;
  }) as typeof original;
  syncBuiltinESMExports();
  JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
    if (typeof text === "string" && text.length > 10_000) seen.parses++;
    return parse(text, reviver) as unknown;
  }) as typeof JSON.parse;
  try {
    await fn();
  } finally {
    cjsFsp.readFile = original;
    syncBuiltinESMExports();
    JSON.parse = parse;
  }
  return seen;
}

/** A watcher of `dir` (whose config loads) that records what it applies and refuses; polls are the test's. */
async function watching(dir: string) {
  const first = await loadConfig(dir);
  assert.ok(first.result.ok);
  const invalid: string[] = [];
  const applied: string[] = [];
  const w = watchConfig({
    dir,
    current: first.result.value,
    intervalMs: 1e9,
    onChange: (c) => void applied.push(c.fingerprint),
    onInvalid: (err) => void invalid.push(err.message),
  });
  return { w, invalid, applied };
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), "attack-refused-poll-"));
  await sh("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", join(base, "tls.key"), "-out", join(base, "tls.crt"),
    "-subj", "/CN=relay.example.com", "-days", "2",
  ]); // prettier-ignore
  cert = await readFile(join(base, "tls.crt"));
  key = await readFile(join(base, "tls.key"));
});

after(() => rm(base, { recursive: true, force: true }));

describe("attack: a refused config is loaded again at every poll", () => {
  it("kubelet's layout: polls of the refused generation read nothing; the next good one applies", async () => {
    const dir = join(base, "swapped");
    await mkdir(dir);
    await generation(dir, "..2026_01_01_00_00_00.000000001", config());
    const { w, invalid, applied } = await watching(dir);
    try {
      await generation(dir, "..2026_01_01_00_00_00.000000002", NEWER());
      await w.check();
      assert.equal(invalid.length, 1, "the refusal is reported");
      assert.match(invalid[0]!, /futureSetting.*newer relay/);
      const polls = await counting(async () => {
        for (let i = 0; i < 3; i++) await w.check();
      });
      assert.deepEqual(polls, { bytes: 0, parses: 0 }, "three polls of the refused generation");
      // kubelet writes a new generation for another file: the same config bytes are refused as before
      await generation(dir, "..2026_01_01_00_00_00.000000003", NEWER());
      const again = await counting(() => w.check());
      assert.equal(again.parses, 0, "the same refused bytes in a new generation are not parsed again");
      assert.equal(invalid.length, 1, "and not reported again");
      // the operator writes a config this relay takes: applied at the next poll
      await generation(
        dir,
        "..2026_01_01_00_00_00.000000004",
        config({ defaultOutboundPolicy: "tenant/p1" }),
      );
      await w.check();
      assert.equal(applied.length, 1, "the next good config applies");
      assert.deepEqual(invalid.length, 1);
    } finally {
      w.close();
    }
  });

  it("a plain directory: the same refused bytes are read, not parsed; an edit is loaded", async () => {
    const dir = join(base, "plain");
    await mkdir(join(dir, "tls"), { recursive: true });
    await writeFile(join(dir, "tls", "tls.crt"), cert);
    await writeFile(join(dir, "tls", "tls.key"), key);
    await writeFile(join(dir, "config.json"), config());
    const { w, invalid, applied } = await watching(dir);
    try {
      await writeFile(join(dir, "config.json"), NEWER());
      await w.check();
      assert.equal(invalid.length, 1);
      const polls = await counting(async () => {
        for (let i = 0; i < 3; i++) await w.check();
      });
      assert.equal(polls.parses, 0, "three polls of the refused config.json parse nothing");
      await writeFile(join(dir, "config.json"), config({ defaultOutboundPolicy: "tenant/p1" }));
      await w.check();
      assert.equal(applied.length, 1, "an edit to a good config applies");
    } finally {
      w.close();
    }
  });

  it("a refusal by a failed read is not remembered: the next poll reads again", async () => {
    const dir = join(base, "unreadable");
    await mkdir(dir);
    // a referenced path that is a directory: EISDIR, a read error, not a missing file
    await generation(dir, "..2026_01_01_00_00_00.000000001", config());
    await rm(join(dir, "..2026_01_01_00_00_00.000000001", "tls", "tls.key"));
    await mkdir(join(dir, "..2026_01_01_00_00_00.000000001", "tls", "tls.key"));
    const outcome = await loadConfig(dir);
    assert.equal(outcome.result.ok, false);
    assert.equal(outcome.refusal, undefined, "nothing for the watcher to skip on");
    await writeFile(join(base, "plain", "config.json"), NEWER());
    const byBytes = await loadConfig(join(base, "plain"));
    assert.ok(byBytes.refusal?.storedHash, "a refusal by the stored bytes names them");
    assert.equal(await refusalStands(join(base, "plain"), byBytes.refusal), true);
    await writeFile(join(base, "plain", "config.json"), NEWER() + " ");
    assert.equal(await refusalStands(join(base, "plain"), byBytes.refusal), false, "other bytes: read again");
  });
});
