// Issue 18: a transaction waits for its place among the bodies being taken at its first RCPT TO,
// not after its dot (relay/inbound/body-admission.ts), over real SMTP. And from the attacker's
// side: a client that takes a place and never sends its DATA, or sits inside DATA sending nothing,
// delays the others by a bounded time and never stops them; nothing is lost or refused meanwhile.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RawSession, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

/** The window of the relay under test: one transaction declaring SIZE=WINDOW fills it. */
const WINDOW = 100_000;
/** Long enough never to decide a test that waits on something else. */
const NEVER_MS = 60_000;

let f: RelayFixture;
let sink: Sink;

before(async () => {
  sink = await startSink();
  f = await relayFixture("relay-body-admission");
  await f.configure({
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sink.port },
    },
  });
});

after(async () => {
  await f?.stop(() => sink?.close());
});

/** A session up to its first RCPT TO's command; `rcpt` is that command's reply, maybe still to come. */
async function transaction(size: number, subject: string): Promise<{ c: RawSession; rcpt: Promise<string> }> {
  const c = await rawSession(f.ports.smtp);
  await c.cmd("EHLO app.internal");
  assert.match(await c.cmd(`MAIL FROM:<app@client.test> SIZE=${size}`), /^250 /);
  return { c, rcpt: c.cmd(`RCPT TO:<${subject}@local.test>`) };
}

/** Whether `p` settles within `ms` (a check that something has NOT happened yet: never a timing goal). */
async function answeredWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
}

const delivered = (subject: string) =>
  waitFor(`${subject} delivered`, () =>
    sink.messages.some((m) => m.data.toString("latin1").includes(`Subject: ${subject}`)) ? true : undefined,
  );

async function restart(o: { maxWaitMs?: number; lapseMs?: number }): Promise<void> {
  if (f.relay) await f.relay.stop();
  await f.start({ bodyAdmission: { window: WINDOW, maxWaitMs: NEVER_MS, lapseMs: NEVER_MS, ...o } });
}

describe("body admission over SMTP", () => {
  it("a second transaction waits at RCPT TO while the first's body is taken, and goes on after", async () => {
    await restart({});
    const a = await transaction(WINDOW, "first");
    assert.match(await a.rcpt, /^250 /);
    assert.match(await a.c.cmd("DATA"), /^354 /);
    a.c.send("Subject: first\r\n\r\nhalf of the body\r\n"); // no dot yet: its place is held

    const b = await transaction(1000, "second");
    assert.equal(await answeredWithin(b.rcpt, 300), false, "the second waits before its DATA, not after");
    assert.match(await a.c.data("the rest"), /^250 /);
    assert.match(await b.rcpt, /^250 /, "the first's 250 gave its place to the second");
    assert.match(await b.c.cmd("DATA"), /^354 /);
    assert.match(await b.c.data("Subject: second\r\n\r\nbody"), /^250 /);
    await delivered("first");
    await delivered("second");
    a.c.close();
    b.c.close();
  });

  it("attack: a place taken and never used (no DATA) is given back after the lapse", async () => {
    await restart({ lapseMs: 200 });
    const squatter = await transaction(WINDOW, "squat");
    assert.match(await squatter.rcpt, /^250 /);
    // it sends nothing more; the honest client is admitted once the lapse took the place back
    const honest = await transaction(1000, "after-squat");
    assert.match(await honest.rcpt, /^250 /);
    assert.match(await honest.c.cmd("DATA"), /^354 /);
    assert.match(await honest.c.data("Subject: after-squat\r\n\r\nbody"), /^250 /);
    await delivered("after-squat");
    // the squatter may still send its message: it is taken, outside the window
    assert.match(await squatter.c.cmd("DATA"), /^354 /);
    assert.match(await squatter.c.data("Subject: squat\r\n\r\nlate but fine"), /^250 /);
    await delivered("squat");
    squatter.c.close();
    honest.c.close();
  });

  it("attack: a client sitting inside DATA holds the others at most the wait's bound", async () => {
    await restart({ maxWaitMs: 300 });
    const staller = await transaction(WINDOW, "stall");
    assert.match(await staller.rcpt, /^250 /);
    assert.match(await staller.c.cmd("DATA"), /^354 /);
    staller.c.send("Subject: stall\r\n\r\na few bytes, then nothing"); // and never the dot

    const honest = await transaction(1000, "after-stall");
    assert.match(await honest.rcpt, /^250 /, "admitted past the bound, the staller still in DATA");
    assert.match(await honest.c.cmd("DATA"), /^354 /);
    assert.match(await honest.c.data("Subject: after-stall\r\n\r\nbody"), /^250 /);
    await delivered("after-stall");
    const overdue = f.logs!.lines.find((l) => l.event === "admission-overdue");
    assert.ok(overdue, "the overdue admission is logged for the administrator");
    const metrics = await (await fetch(`http://127.0.0.1:${f.ports.admin}/metrics`)).text();
    assert.match(metrics, /sealpost_relay_inbound_admission_wait_seconds_count\{outcome="overdue"\} [1-9]/);
    staller.c.close();
    honest.c.close();
  });

  it("a client that leaves while it waits takes nothing with it; the next one is admitted", async () => {
    await restart({});
    const a = await transaction(WINDOW, "holder");
    assert.match(await a.rcpt, /^250 /);
    const leaver = await transaction(WINDOW, "leaver");
    leaver.rcpt.catch(() => undefined);
    assert.equal(await answeredWithin(leaver.rcpt, 100), false);
    leaver.c.close();
    const b = await transaction(1000, "next");
    assert.equal(await answeredWithin(b.rcpt, 100), false, "still behind the holder");
    assert.match(await a.c.cmd("RSET"), /^250 /);
    assert.match(await a.c.cmd("MAIL FROM:<app@client.test>"), /^250 /); // a new transaction: the old place ends
    assert.match(await b.rcpt, /^250 /, "the leaver's place was not kept for it");
    assert.match(await b.c.cmd("DATA"), /^354 /);
    assert.match(await b.c.data("Subject: next\r\n\r\nbody"), /^250 /);
    await delivered("next");
    a.c.close();
    b.c.close();
  });
});
