// Issue 18: a relay restarted onto a large queue accepts new mail before it has read the queue, and
// loses nothing. 2,000 queued messages (half still in the write-ahead journal, half file-resident as
// deferred mail is); the relay's hand-over of the backlog to its scheduler is held back
// (RelayOptions.recoveryGate) until the test has had a new message accepted with 250 on the running
// listener; then every queued message and the new one reach the sink exactly once. No time is asserted.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { waitFor } from "../support/process.js";
import { writeQueuedBacklog } from "../support/queued-backlog.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { parsePodReport, type RelayStatus } from "../../relay/contract/status.js";

const QUEUED = 2000;
const TOKEN = "recovery-admin-token-0123456789";
let f: RelayFixture;
let sink: Sink;

const message = (n: number): Buffer =>
  Buffer.from(`From: a@local.test\r\nTo: b@partner.test\r\nX-Test-Id: q-${n}\r\n\r\nqueued ${n}\r\n`);

before(async () => {
  f = await relayFixture("relay-recovery");
  sink = await startSink();
});
after(async () => {
  await f.stop(() => sink.close());
});

it("a restart onto a large queue accepts new mail before the queue is loaded, and loses nothing", async () => {
  const queue = join(f.work, "queue");
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      policies: [
        {
          name: "t/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: sink.port } },
        },
      ],
    },
    { files: { "secrets/admin/token": `${TOKEN}\n` } },
  );
  await writeQueuedBacklog(queue, QUEUED, Date.now() - 3_600_000, message);

  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { relay, logs } = await f.start({ recoveryGate: gate });
  // the backlog is not in the scheduler yet, and the listener takes new mail
  assert.equal(relay.status().queue.depth, 0);
  // ... but /status says the depth is partial: an operator deleting the MailRelay must not read the
  // empty-looking queue as empty (security review: deletion released while the backlog was on disk)
  const admin = `http://127.0.0.1:${relay.ports().admin}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  // (the public answer, without the token, says it too: the operator may probe without one)
  const during = (await (await fetch(`${admin}/status`)).json()) as RelayStatus;
  assert.equal(during.recovering, true);
  assert.equal(during.queue.depth, 0);
  assert.equal(parsePodReport(during)?.recovering, true);
  // a selection would act only on what is loaded: refused until the backlog is in
  const bulk = await fetch(`${admin}/queue/delete?domain=partner.test`, { method: "POST", headers: auth });
  assert.equal(bulk.status, 503);
  assert.match(((await bulk.json()) as { error: string }).error, /queue still loading, retry/);
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO client.test");
  assert.match(await s.cmd("MAIL FROM:<a@local.test>"), /^250 /);
  assert.match(await s.cmd("RCPT TO:<b@partner.test>"), /^250 /);
  assert.match(await s.cmd("DATA"), /^354 /);
  assert.match(await s.data("X-Test-Id: new\r\n\r\nnew mail"), /^250 2\.0\.0 Ok: queued as /);
  await s.cmd("QUIT");
  s.close();
  assert.equal(
    logs.find((x) => x.event === "queue-recovered"),
    undefined,
    "accepted before the backlog was loaded",
  );

  release();
  await relay.recovered;
  const recovered = logs.find((x) => x.event === "queue-recovered");
  assert.equal(recovered?.messages, QUEUED);
  assert.equal(relay.status().recovering, undefined);
  const seen = new Map<string, number>();
  await waitFor(
    "every queued message and the new one delivered",
    () => {
      seen.clear();
      for (const m of sink.messages) {
        const id = /X-Test-Id: ([\w-]+)/.exec(m.data.toString())?.[1];
        if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      return seen.size === QUEUED + 1 ? true : undefined;
    },
    600_000,
    500,
  );
  assert.ok(seen.has("new"));
  for (let n = 0; n < QUEUED; n++) assert.equal(seen.get(`q-${n}`), 1, `q-${n} delivered once`);
  await waitFor("queue empty", () => (relay.status().queue.depth === 0 ? true : undefined), 60_000);
});
