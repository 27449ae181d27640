// Attack / bad luck: a file in env/ that parses as JSON but is not an envelope of its name (`{}`,
// `[]`, `null`, recipients that are no list, no attempt count, or a copy of another message's
// envelope under a second name: bit rot that keeps the JSON valid, a hand edit, a restore gone
// wrong). The promise (docs/architecture.md, "The queue on disk"; spool.ts readEnvelopes: "a corrupt
// one is kept for a human to look at"): recovery keeps such a file aside and delivers the rest.
// Before the fix only a file JSON.parse refused was kept aside: `null` made the relay's start
// reject (the recovered envelopes are sorted by receivedAt), `{}` threw in the scheduler's pump
// (an uncaught exception: in the pod, a crash at every start, no mail delivered at all), and the copy
// was queued as a second entry for the other message's id, left behind when that one was delivered.
// The relay runs as its own process, as in the pod: an uncaught exception ends it.
import assert from "node:assert/strict";
import { copyFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { waitFor, type Managed } from "../support/process.js";
import { writeQueuedBacklog } from "../support/queued-backlog.js";
import { relayFixture, startRelayProcess, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const GOOD = 6;
let f: RelayFixture;
let sink: Sink;
let relay: Managed | undefined;
const message = (n: number): Buffer =>
  Buffer.from(`From: a@local.test\r\nTo: b@partner.test\r\nX-Test-Id: q-${n}\r\n\r\nqueued ${n}\r\n`);

before(async () => {
  f = await relayFixture("attack-bad-envelope");
  sink = await startSink();
});
after(async () => {
  await relay?.stop();
  await f.stop(() => sink.close());
});

it("an env/ file that is not an envelope of its name is kept aside; the rest is delivered", async () => {
  const queue = join(f.work, "queue");
  await f.configure({
    policies: [
      {
        name: "t/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: sink.port } },
      },
    ],
  });
  // half in the journal, half in env/ + msg/
  await writeQueuedBacklog(queue, GOOD, Date.now() - 60_000, message);
  const envDir = join(queue, "env");
  const [goodFile] = (await readdir(envDir)).filter((n) => n.endsWith(".json"));
  const bad: Record<string, string> = {
    "BADOBJECT.json": "{}",
    "BADLIST.json": "[]",
    "BADNULL.json": "null",
    "BADRCPTS.json": JSON.stringify({
      v: 1,
      id: "BADRCPTS",
      from: "a@local.test",
      recipients: "b@partner.test",
      receivedAt: 1,
      attempts: 0,
      nextAttemptAt: 0,
      size: 1,
    }),
    "BADCOUNT.json": JSON.stringify({
      v: 1,
      id: "BADCOUNT",
      recipients: [{ address: "b@partner.test", state: "pending" }],
    }),
  };
  for (const [name, text] of Object.entries(bad)) await writeFile(join(envDir, name), text);
  // another message's envelope under a second name: it claims an id that is not its own
  await copyFile(join(envDir, goodFile!), join(envDir, "BADCOPY.json"));

  const logFile = join(f.work, "relay.log");
  relay = await startRelayProcess(f.configDir, f.ports.admin, logFile);
  const running = relay;
  const alive = (): void => {
    if (running.child.exitCode !== null) throw new Error("the relay exited");
  };
  await waitFor("every good message delivered", () => {
    alive();
    return sink.messages.length >= GOOD ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 500)); // a second delivery of one of them would show by now
  alive();
  const ids = sink.messages.map((m) => /X-Test-Id: (\S+)/.exec(m.data.toString("latin1"))?.[1]).sort();
  assert.deepEqual(ids, Array.from({ length: GOOD }, (_, n) => `q-${n}`).sort(), "each good one once");
  const logs = (await running.log())
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const keptAside = logs
    .filter((l) => l.msg === "unreadable envelope kept aside")
    .map((l) => String(l.err).split(":")[0]);
  assert.deepEqual(keptAside.sort(), [...Object.keys(bad), "BADCOPY.json"].sort());
  // kept for a human: the files stay
  for (const name of [...Object.keys(bad), "BADCOPY.json"])
    assert.ok((await readdir(envDir)).includes(name), `${name} kept`);
});
