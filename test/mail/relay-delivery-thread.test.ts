// Deliveries on their own thread (relay/delivery-thread.ts, issue 18). What the move must not cost:
// a delivery thread that ends in the middle of an attempt loses nothing (the attempt's recipients
// are deferred, the thread restarted, the message delivered on the retry), the delivery log still
// has its lines from the relay's logger, and a reload reaches the thread before the next attempt
// (a policy changed to mode required is enforced at once, never sent in clear under the old one).
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { Worker } from "node:worker_threads";
import type { Relay } from "../../relay/relay.js";
import { waitFor } from "../support/process.js";
import {
  loopbackInbound,
  rawSession,
  relayFixture,
  type LogCapture,
  type RelayFixture,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

let f: RelayFixture;
let relay: Relay;
let logs: LogCapture;
let local: Sink;
let gated: Sink;
let clear: Sink;
let openGate: () => void = () => undefined;

/** The relay's delivery thread, as the relay holds it. */
interface ThreadView {
  worker: Worker | undefined;
  pending: Map<number, unknown>;
}
const thread = (): ThreadView => (relay as unknown as { delivery: ThreadView }).delivery;

const policies = (clearMode: "opportunistic" | "required") => [
  {
    name: "t/gated",
    domains: ["gated.test"],
    outbound: { tls: { mode: "opportunistic" as const }, nextHop: { host: "127.0.0.1", port: gated.port } },
  },
  {
    name: "t/clear",
    domains: ["clear.test"],
    outbound: { tls: { mode: clearMode }, nextHop: { host: "127.0.0.1", port: clear.port } },
  },
];

before(async () => {
  f = await relayFixture("relay-delivery-thread");
  local = await startSink();
  gated = await startSink({ dataGate: new Promise<void>((r) => (openGate = r)) });
  clear = await startSink(); // offers no STARTTLS
  await f.configure({ ...loopbackInbound(local.port), policies: policies("opportunistic") });
  ({ relay, logs } = await f.start());
});

after(async () => {
  openGate();
  await f?.stop(async () => Promise.all([local?.close(), gated?.close(), clear?.close()]));
});

async function send(to: string, tag: string): Promise<void> {
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO client.test");
  assert.match(await s.cmd("MAIL FROM:<app@local.test>"), /^250 /);
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250 /);
  await s.cmd("DATA");
  assert.match(await s.data(`Subject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nbody`), /^250 /);
  s.close();
}

const arrived = (sink: Sink, tag: string) =>
  sink.messages.some((m) => m.data.toString("latin1").includes(`X-Test-Id: ${tag}`));

it("deliveries run on a thread of their own", () => {
  assert.ok(thread().worker, "the relay started a delivery thread");
});

it("a delivery thread that ends mid-attempt loses nothing: deferred, restarted, delivered", async () => {
  await send("someone@gated.test", "cut");
  // the attempt is in the thread, the partner holding its DATA
  await waitFor(
    "the attempt in flight",
    () => (thread().pending.size === 1 && gated.sessions.open > 0) || undefined,
    10_000,
  );
  const before = thread().worker!;
  await before.terminate();
  await waitFor(
    "the thread restarted",
    () => (thread().worker && thread().worker !== before) || undefined,
    10_000,
  );
  const deferred = logs.find(
    (l) => l.event === "recipient" && l.to === "someone@gated.test" && l.status === "deferred",
  );
  assert.ok(deferred, "the cut attempt's recipient was logged deferred");
  assert.equal(deferred.code, "CONNECTION_LOST");
  assert.equal(deferred.dsn, "4.4.2");
  assert.ok(
    logs.find((l) => l.event === "delivery-thread" && l.msg === "delivery thread ended; restarting it"),
    "the relay said its delivery thread ended",
  );
  openGate();
  await waitFor("delivered on the retry", () => arrived(gated, "cut") || undefined, 15_000);
  await waitFor(
    "the delivered line",
    () =>
      logs.find((l) => l.event === "recipient" && l.to === "someone@gated.test" && l.status === "sent") ??
      undefined,
    5_000,
  );
});

it("a reload reaches the thread before the next attempt: required is enforced at once", async () => {
  await send("a@clear.test", "before");
  await waitFor("sent in clear while opportunistic", () => arrived(clear, "before") || undefined, 10_000);
  await f.configure({ ...loopbackInbound(local.port), policies: policies("required") });
  await relay.checkConfig();
  await send("b@clear.test", "after");
  await waitFor(
    "deferred TLS_NOT_OFFERED",
    () =>
      logs.find((l) => l.event === "delivery" && l.code === "TLS_NOT_OFFERED" && l.policy === "t/clear") ??
      undefined,
    10_000,
  );
  assert.ok(!arrived(clear, "after"), "nothing was sent in clear under the new policy");
});
