// kill -9 of the relay (child process) in the middle of a batch of 200 messages while the next hop
// flaps: after a restart, every message that got a 250 is delivered at least once (counted at the
// sink by a unique header). Duplicates are allowed, losses are not.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { makeCa, makeLeaf } from "../support/certs.js";
import { waitFor, type Managed } from "../support/process.js";
import {
  startRelayProcess,
  testConfig,
  testPorts,
  writeConfigDir,
  type TestPorts,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOTAL = 200;
let work: string;
let ports: TestPorts;
let sink: Sink;
let relay: Managed | undefined;
let flap: NodeJS.Timeout | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "relay-crash-"));
  const ca = await makeCa(join(work, "ca"));
  const leaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  sink = await startSink();
  ports = await testPorts();
  const cfg = testConfig(ports, join(work, "queue"), {
    policies: [
      {
        name: "t/sink",
        domains: ["sink.test"],
        outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: sink.port } },
      },
    ],
  });
  await writeConfigDir(join(work, "config"), {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(leaf.certFile),
    "tls/tls.key": await readFile(leaf.keyFile),
  });
});

after(async () => {
  clearInterval(flap);
  await relay?.kill();
  await sink?.close();
  await rm(work, { recursive: true, force: true });
});

async function sendOne(n: number): Promise<boolean> {
  const conn = new SMTPConnection({
    host: "127.0.0.1",
    port: ports.smtp,
    ignoreTLS: true,
    connectionTimeout: 2000,
    greetingTimeout: 2000,
    socketTimeout: 5000,
  });
  conn.on("error", () => undefined);
  try {
    await new Promise<void>((res, rej) => {
      conn.once("error", rej);
      conn.once("end", () => rej(new Error("closed")));
      conn.connect(() => res());
    });
    const body = `Subject: crash ${n}\r\nX-Crash-Id: crash-${n}\r\n\r\n${"payload line\r\n".repeat(20)}`;
    const info = await new Promise<SMTPConnection.SentMessageInfo>((res, rej) => {
      conn.once("end", () => rej(new Error("closed")));
      conn.send({ from: "sender@local.test", to: [`r${n}@sink.test`] }, body, (e, i) =>
        e ? rej(e) : res(i),
      );
    });
    return /^250 2\.0\.0 Ok: queued as /.test(info.response);
  } catch {
    return false;
  } finally {
    conn.close();
  }
}

it(
  "kill -9 during a batch with a flapping next hop loses no accepted message",
  { timeout: 240_000 },
  async () => {
    const configDir = join(work, "config");
    const logFile = join(work, "relay.log");
    relay = await startRelayProcess(configDir, ports.admin, logFile);
    let down = false;
    flap = setInterval(() => sink.setDown((down = !down)), 150);

    const accepted = new Set<number>();
    let next = 0;
    let killed = false;
    const worker = async (): Promise<void> => {
      for (;;) {
        const n = next++;
        if (n >= TOTAL) return;
        for (;;) {
          if (await sendOne(n)) {
            accepted.add(n);
            break;
          }
          await new Promise((r) => setTimeout(r, 100)); // relay down (killed): try this one again
        }
        if (!killed && accepted.size >= TOTAL / 3) {
          killed = true;
          await relay!.kill(); // SIGKILL, mid-batch: sessions in DATA, deliveries in flight
          relay = await startRelayProcess(configDir, ports.admin, logFile);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.equal(killed, true);
    assert.equal(accepted.size, TOTAL);

    clearInterval(flap);
    sink.setDown(false);
    const seen = (): Set<number> => {
      const s = new Set<number>();
      for (const m of sink.messages) {
        const id = /X-Crash-Id: crash-(\d+)/.exec(m.data.toString());
        if (id) s.add(Number(id[1]));
      }
      return s;
    };
    await waitFor(
      "every accepted message at the sink",
      () => ([...accepted].every((n) => seen().has(n)) ? true : undefined),
      120_000,
      250,
    ).catch(async (e: Error) => {
      const missing = [...accepted].filter((n) => !seen().has(n));
      throw new Error(
        `${e.message}; missing ${missing.length}: ${missing.slice(0, 20).join(",")}\n${(await relay!.log()).slice(-3000)}`,
      );
    });
    const log = await relay.log();
    assert.match(log, /"event":"queue-recovered"/, "the restarted relay resumed the queue");
    await waitFor(
      "queue drained",
      async () => {
        const s = (await (await fetch(`http://127.0.0.1:${ports.admin}/status`)).json()) as {
          queue: { depth: number };
        };
        return s.queue.depth === 0 ? true : undefined;
      },
      30_000,
    );
  },
);
