// Issue 15.5: an outsider could crash-loop the relay out of memory. Messages of the maximum size
// (50 MiB) to a local domain were each read whole into memory for every delivery attempt: 16 workers
// x 50 MiB exceed the pod's 512 MiB limit, and after a restart every recovered message was due at
// once, so the pod died again at every start. Here: two dozen maximum-size messages come in over SMTP
// while the internal next hop is down (one worker, so the writer side stays small), the relay is
// killed (-9), the next hop comes back, and the relay restarts with 16 workers inside a memory cgroup
// limited to 512 MiB (the pod's limit; where cgroups v1 are not writable, the peak RSS alone is
// checked): it must deliver every message whole, stay alive, and its peak RSS (VmHWM) stay below the
// limit. The test measures memory, not time.
import assert from "node:assert/strict";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { startDiscardSink, type DiscardSink } from "../support/discard-sink.js";
import { freePort } from "../support/ports.js";
import { startProcess, type Managed } from "../support/process.js";
import { relayFixture, startRelayProcess, type RelayFixture } from "../support/relay.js";

const MIB = 2 ** 20;
const LIMIT = 512 * MIB; // the pod's memory limit (operator/render/statefulset.ts)
const MESSAGES = 24;
const root = new URL("../..", import.meta.url).pathname;

let f: RelayFixture;
let sink: DiscardSink | undefined;
let relay: Managed | undefined;
let sinkPort = 0;
let cgroup: string | undefined;

/** A message of `size` bytes (header included), generated as it is sent. */
function bigMessage(size: number, tag: string): Readable {
  const head = Buffer.from(`From: <x@outside.test>\r\nSubject: big ${tag}\r\nX-Test-Id: ${tag}\r\n\r\n`);
  const line = Buffer.from(
    "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstuv\r\n",
  );
  const chunk = Buffer.concat(Array.from({ length: Math.floor(MIB / line.length) }, () => line));
  let left = size - head.length;
  return Readable.from(
    (function* () {
      yield head;
      while (left > 0) {
        const c = chunk.subarray(0, Math.min(left, chunk.length));
        left -= c.length;
        yield c;
      }
    })(),
  );
}

async function submit(port: number, tag: string, size: number): Promise<void> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port, ignoreTLS: true, name: "outside.test" });
  await new Promise<void>((res, rej) => {
    conn.once("error", rej);
    conn.connect(() => res());
  });
  try {
    const info = await new Promise<SMTPConnection.SentMessageInfo>((res, rej) =>
      conn.send({ from: "x@outside.test", to: ["user@local.test"] }, bigMessage(size, tag), (e, i) =>
        e ? rej(e) : res(i),
      ),
    );
    assert.match(info.response, /^250 /);
  } finally {
    conn.quit();
  }
}

async function configure(workers: number): Promise<void> {
  await f.configure({
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sinkPort },
    },
    queue: { dir: join(f.work, "queue"), retry: { initial: 0.2, max: 1 }, workers },
  });
}

/** A memory cgroup (v1) limited to LIMIT, without swap; undefined where that is not possible. */
async function memoryCgroup(): Promise<string | undefined> {
  const dir = `/sys/fs/cgroup/memory/sealpost-relay-memory-${process.pid}`;
  try {
    await mkdir(dir);
    await writeFile(join(dir, "memory.limit_in_bytes"), String(LIMIT));
    await writeFile(join(dir, "memory.memsw.limit_in_bytes"), String(LIMIT)).catch(() => undefined);
    return dir;
  } catch {
    await rmdir(dir).catch(() => undefined);
    return undefined;
  }
}

async function oomKills(dir: string): Promise<number> {
  const m = /^oom_kill (\d+)$/m.exec(await readFile(join(dir, "memory.oom_control"), "utf8").catch(() => ""));
  return m ? Number(m[1]) : 0;
}

async function vmHwm(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(m, "VmHWM in /proc/<pid>/status");
  return Number(m[1]) * 1024;
}

before(async () => {
  f = await relayFixture("relay-memory");
  sinkPort = await freePort(); // the next hop's port: nothing listens there until the restart
});

after(async () => {
  await relay?.stop();
  await sink?.close();
  if (cgroup) await rmdir(cgroup).catch(() => undefined);
  await f?.stop();
});

describe("issue 15.5: maximum-size messages under the pod's memory limit", () => {
  it(
    `${MESSAGES} x 50 MiB recovered at once after a crash: delivered whole, relay alive, peak RSS < 512 MiB`,
    { timeout: 900_000 },
    async () => {
      const size = 50 * MIB - 4096; // the relay adds its Received header; the limit is 50 MiB
      await configure(1);
      relay = await startRelayProcess(f.configDir, f.ports.admin, join(f.work, "relay-1.log"));
      for (let i = 0; i < MESSAGES; i += 4)
        await Promise.all(
          [0, 1, 2, 3].filter((k) => i + k < MESSAGES).map((k) => submit(f.ports.smtp, `big-${i + k}`, size)),
        );
      await relay.kill(); // kill -9: every message is recovered at the next start
      relay = undefined;

      sink = await startDiscardSink({ port: sinkPort });
      await configure(16);
      cgroup = await memoryCgroup();
      // the relay joins the cgroup before it starts (sh writes its own pid, then execs node)
      const node = [
        process.execPath,
        "--import",
        "tsx",
        join(root, "relay/main.ts"),
        "--config",
        f.configDir,
      ];
      const cmd = cgroup ? `echo $$ > ${cgroup}/cgroup.procs && exec "$@"` : `exec "$@"`;
      relay = startProcess("relay", "sh", ["-c", cmd, "sh", ...node], join(f.work, "relay-2.log"), {
        cwd: root,
        env: { ...process.env, SEALPOST_GRACE_SECONDS: "2" },
      });
      const pid = relay.child.pid!;
      // polled here, not through waitFor: the relay's death fails the test at once
      let peak = 0;
      const deadline = Date.now() + 600_000;
      while (sink.sizes.length < MESSAGES) {
        if (relay.child.exitCode !== null || relay.child.signalCode !== null)
          assert.fail(
            `the relay died (${relay.child.signalCode ?? relay.child.exitCode}` +
              `${cgroup ? `, cgroup OOM kills: ${await oomKills(cgroup)}` : ""}) after ${sink.sizes.length} deliveries`,
          );
        assert.ok(Date.now() < deadline, `only ${sink.sizes.length} of ${MESSAGES} delivered`);
        peak = Math.max(peak, await vmHwm(pid));
        await new Promise((r) => setTimeout(r, 200));
      }
      peak = Math.max(peak, await vmHwm(pid));
      console.log(
        `relay peak RSS (VmHWM) delivering ${MESSAGES} x 50 MiB with 16 workers: ${(peak / MIB).toFixed(0)} MiB${cgroup ? " (in a 512 MiB cgroup)" : ""}`,
      );
      assert.equal(relay.child.exitCode, null, "the relay is still running");
      if (cgroup) assert.equal(await oomKills(cgroup), 0, "no OOM kill in the cgroup");
      assert.equal(sink.sizes.length, MESSAGES);
      for (const s of sink.sizes) assert.ok(s > size, `a message of ${s} bytes arrived whole`);
      assert.ok(peak < LIMIT, `peak RSS ${(peak / MIB).toFixed(0)} MiB, the pod's limit is 512 MiB`);
    },
  );
});
