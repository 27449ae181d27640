// Fuzzing (GitHub issue 8, item 2) against an in-process relay on loopback: fast-check sequences of
// SMTP commands, line-ending variants, long lines and random bytes, cut into random packets, then
// the relay must still answer NOOP on a control session; no uncaught exception or unhandled
// rejection; no per-session state left behind; heap growth bounded. And the config loader: random
// and mutated config.json always gives a validated config or a clear error (never a throw), and
// a running relay applies a config wholly or not at all.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { getHeapStatistics } from "node:v8";
import fc from "fast-check";
import { loadConfig } from "../../relay/config/load.js";
import { RelayConfig } from "../../relay/contract/config.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf, type Leaf } from "../support/certs.js";
import { hostileConnect, type HostileClient } from "../support/hostile-client.js";
import { waitFor } from "../support/process.js";
import {
  plainToken,
  startRelay,
  testConfig,
  testPorts,
  writeConfigDir,
  type TestPorts,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let work: string;
let leaf: Leaf;
let sink: Sink;
let ports: TestPorts;
let relay: Relay;
let control: HostileClient;
const faults: unknown[] = [];
const onFault = (e: unknown): void => void faults.push(e);

function baseConfig(generation = 1): Record<string, unknown> {
  return testConfig(ports, join(work, "queue"), {
    generation,
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sink.port },
      maxMessageSize: 20_000,
      maxRecipients: 5,
      limits: { maxConnectionsPerIp: 50, idleTimeoutSeconds: 30 },
    },
    credentials: {
      alice: { type: "password", usage: "inbound", username: "alice", passwordFile: "secrets/alice/pw" },
    },
  });
}

async function files(config: string | Buffer): Promise<Record<string, string | Buffer>> {
  return {
    "config.json": config,
    "tls/tls.crt": await readFile(leaf.certFile),
    "tls/tls.key": await readFile(leaf.keyFile),
    "secrets/alice/pw": "alice-pw",
  };
}

before(async () => {
  process.on("uncaughtException", onFault);
  process.on("unhandledRejection", onFault);
  work = await mkdtemp(join(tmpdir(), "fuzz-smtp-"));
  const ca = await makeCa(join(work, "ca"));
  leaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  sink = await startSink();
  ports = await testPorts();
  await writeConfigDir(join(work, "config"), await files(JSON.stringify(baseConfig())));
  ({ relay } = await startRelay(join(work, "config")));
  control = await hostileConnect(ports.smtp);
});

after(async () => {
  control?.close();
  await relay?.stop();
  await sink?.close();
  process.off("uncaughtException", onFault);
  process.off("unhandledRejection", onFault);
  await rm(work, { recursive: true, force: true });
});

const COMMANDS = [
  "EHLO fuzz.test",
  "HELO fuzz.test",
  "MAIL FROM:<a@sender.test>",
  "MAIL FROM:<a@sender.test> SIZE=100 BODY=8BITMIME",
  "MAIL FROM:<> SMTPUTF8",
  "MAIL FROM:<a@sender.test> SIZE=999999999999999999999",
  "RCPT TO:<r@local.test>",
  "RCPT TO:<r@elsewhere.test>",
  "RCPT TO:<r@local.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r@local.test",
  "DATA",
  "BDAT 10 LAST",
  "RSET",
  "NOOP",
  "VRFY root",
  "EXPN staff",
  "HELP",
  "STARTTLS",
  "AUTH PLAIN",
  `AUTH PLAIN ${plainToken("alice", "wrong")}`,
  "AUTH LOGIN",
  "AUTH CRAM-MD5",
  "XCLIENT ADDR=1.2.3.4",
  "GET / HTTP/1.1",
  ".",
  "..",
  "",
  "*",
];

const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...COMMANDS).map((c) => Buffer.from(c + "\r\n")) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("\r\n", "\n", "\r", "\r\n.\r\n", "\n.\n", "\r.\r", "\n.\r\n")
      .map((s) => Buffer.from(s)),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 60 }).map((s) => Buffer.from(s, "utf8")) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 500, max: 14_000 }).map((n) => Buffer.from("X".repeat(n) + "\r\n")),
  },
);

async function runCase(parts: Buffer[], cuts: number[]): Promise<void> {
  const c = await hostileConnect(ports.smtp, { timeoutMs: 1500 });
  try {
    const all = Buffer.concat([...parts, Buffer.from("\r\n.\r\nQUIT\r\n")]);
    const points = [...new Set(cuts.map((p) => p % (all.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    for (const p of [...points, all.length]) {
      if (p > prev) c.write(all.subarray(prev, p));
      prev = p;
    }
    // the session usually ends with our QUIT; some states (inside AUTH, TLS handshake) don't: bounded
    await c.waitClosed().catch(() => undefined);
  } finally {
    c.close();
  }
}

describe("SMTP fuzzing against a running relay", () => {
  it("200 random sessions: no crash, no unhandled rejection, NOOP still answered, no state left", async () => {
    const heap0 = getHeapStatistics().used_heap_size;
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { minLength: 1, maxLength: 25 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (parts, cuts) => {
          cases++;
          await runCase(parts, cuts);
          assert.equal(await control.cmd("NOOP"), "250 OK");
          assert.deepEqual(faults, []);
        },
      ),
      { numRuns: 200, endOnFailure: true },
    );
    assert.equal(cases, 200);
    // every session's bookkeeping is released (sessions, connection slots, session timers)
    const inbound = (relay as unknown as { listeners: Record<string, unknown> }).listeners;
    await waitFor("per-session state released", () => {
      const sessions = (inbound.sessions as Map<string, unknown>).size;
      const timers = (inbound.sessionTimers as Map<string, unknown>).size;
      const slots = (inbound.limiter as { total: number }).total;
      // only the control session is left
      return sessions <= 1 && timers === 1 && slots === 1 ? true : undefined;
    });
    (globalThis as { gc?: () => void }).gc?.();
    const grown = getHeapStatistics().used_heap_size - heap0;
    // generous: catches a per-session leak of buffers, not allocator noise
    assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${grown} bytes over 200 sessions`);
    assert.deepEqual(faults, []);
  });
});

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Sets `value` at a random path of `obj` (a structural mutation), or deletes it. */
function mutate(obj: Json, path: number[], value: Json | undefined): Json {
  if (!path.length || obj === null || typeof obj !== "object") return value === undefined ? null : value;
  const keys = Array.isArray(obj) ? obj.map((_, i) => String(i)) : Object.keys(obj);
  if (!keys.length) return obj;
  const k = keys[path[0]! % keys.length]!;
  const copy: Json = Array.isArray(obj) ? [...obj] : { ...obj };
  const child = (copy as Record<string, Json>)[k]!;
  if (path.length === 1 && value === undefined) {
    if (Array.isArray(copy)) copy.splice(Number(k), 1);
    else delete (copy as Record<string, Json>)[k];
    return copy;
  }
  (copy as Record<string, Json>)[k] =
    path.length === 1 ? (value as Json) : mutate(child, path.slice(1), value);
  return copy;
}

const configBytes = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        fc.option(fc.jsonValue(), { nil: undefined }),
      )
      .map(([path, v]) => JSON.stringify(mutate(baseConfig() as Json, path, v as Json | undefined))),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
);

describe("config loader fuzzing", () => {
  it("200 random/mutated config.json: a validated config or a clear error, never a throw", async () => {
    const dir = join(work, "fuzz-config");
    let valid = 0;
    let invalid = 0;
    await fc.assert(
      fc.asyncProperty(configBytes, async (bytes) => {
        await writeConfigDir(dir, await files(bytes));
        const { result } = await loadConfig(dir); // a throw fails the property
        if (result.ok) {
          valid++;
          assert.ok(RelayConfig.safeParse(result.value.config).success);
        } else {
          invalid++;
          assert.match(result.code, /^CONFIG_(UNREADABLE|INVALID|FILES_MISSING)$/);
          assert.ok(result.message.length > 0);
        }
      }),
      { numRuns: 200 },
    );
    assert.ok(valid > 0 && invalid > 0, `valid ${valid}, invalid ${invalid}`);
  });

  it("a running relay applies a mutated config wholly or not at all (30 reloads)", async () => {
    let generation = 1;
    let applied = 0;
    await fc.assert(
      fc.asyncProperty(configBytes, async (bytes) => {
        const before = relay.status();
        // keep listeners/admin/queue stable: a mutated port would only ask for a restart
        await writeConfigDir(join(work, "config"), await files(bytes));
        await relay.checkConfig();
        const { result } = await loadConfig(join(work, "config"));
        const now = relay.status();
        if (result.ok) {
          applied++;
          assert.equal(now.configHash, result.value.hash);
          assert.equal(relay.loaded.config.generation, result.value.config.generation);
        } else {
          assert.equal(now.configHash, before.configHash, "an invalid config changed nothing");
          assert.equal(now.generation, before.generation);
        }
        assert.equal(await control.cmd("NOOP"), "250 OK");
        // back to a known good config for the next case
        await writeConfigDir(join(work, "config"), await files(JSON.stringify(baseConfig(++generation))));
        await relay.checkConfig();
        assert.equal(relay.loaded.config.generation, generation);
      }),
      { numRuns: 30 },
    );
    assert.ok(applied >= 0);
    assert.deepEqual(faults, []);
  });
});
