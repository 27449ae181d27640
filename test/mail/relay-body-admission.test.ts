// Issue 18: a transaction waits for its place among the bodies being taken at its first RCPT TO,
// not after its dot (relay/inbound/body-admission.ts), over real SMTP. And from the attacker's
// side: a client that takes a place and never sends its DATA, or sits inside DATA sending nothing,
// delays the others by a bounded time and never stops them; nothing is lost or refused meanwhile.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "../support/process.js";
import {
  loopbackInbound,
  rawSession,
  relayFixture,
  type RawSession,
  type RelayFixture,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

/** The window of the relay under test; a place counts a declared SIZE= up to a quarter of it. */
const WINDOW = 100_000;
const PLACE = WINDOW / 4;
/** Long enough never to decide a test that waits on something else. */
const NEVER_MS = 60_000;

let f: RelayFixture;
let sink: Sink;

const configure = (stopped: boolean) => f.configure(loopbackInbound(sink.port, { stopped }));

before(async () => {
  sink = await startSink();
  f = await relayFixture("relay-body-admission");
  await configure(false);
});

after(async () => {
  await f?.stop(() => sink?.close());
});

/** A session up to its first RCPT TO's command; `rcpt` is that command's reply, maybe still to come. */
async function transaction(
  size: number,
  subject: string,
  localAddress?: string,
): Promise<{ c: RawSession; rcpt: Promise<string> }> {
  const c = await rawSession(f.ports.smtp, localAddress ? { localAddress } : {});
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

const metric = async (name: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${f.ports.admin}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
};

/** `n` transactions that fill the window, each in its DATA with part of its body sent (no dot). */
async function holders(n: number, tag: string, localAddress?: string): Promise<RawSession[]> {
  const out: RawSession[] = [];
  for (let i = 0; i < n; i++) {
    const t = await transaction(PLACE, `${tag}-${i}`, localAddress);
    assert.match(await t.rcpt, /^250 /);
    assert.match(await t.c.cmd("DATA"), /^354 /);
    t.c.send(`Subject: ${tag}-${i}\r\n\r\npart of the body\r\n`);
    out.push(t.c);
  }
  return out;
}

describe("body admission over SMTP", () => {
  it("a transaction waits at RCPT TO while the bodies ahead are taken, and goes on after", async () => {
    await restart({});
    const ahead = await holders(4, "ahead");
    const b = await transaction(1000, "waiter");
    assert.equal(await answeredWithin(b.rcpt, 300), false, "it waits before its DATA, not after");
    assert.equal(await metric("sealpost_relay_inbound_admission_waiting"), 1);
    assert.match(await ahead[0]!.data("the rest"), /^250 /);
    assert.match(await b.rcpt, /^250 /, "the first 250 gave its place to the waiter");
    assert.match(await b.c.cmd("DATA"), /^354 /);
    assert.match(await b.c.data("Subject: waiter\r\n\r\nbody"), /^250 /);
    for (const c of ahead.slice(1)) assert.match(await c.data("the rest"), /^250 /);
    await delivered("waiter");
    for (let i = 0; i < 4; i++) await delivered(`ahead-${i}`);
    for (const c of [...ahead, b.c]) c.close();
    await waitFor("places given back", async () =>
      (await metric("sealpost_relay_inbound_admission_bytes")) === 0 ? true : undefined,
    );
  });

  it("attack: places taken and never used (no DATA) are given back after the lapse", async () => {
    await restart({ lapseMs: 200 });
    const squatters: RawSession[] = [];
    for (let i = 0; i < 4; i++) {
      const t = await transaction(WINDOW, `squat-${i}`); // declares the whole window: counted a quarter
      assert.match(await t.rcpt, /^250 /);
      squatters.push(t.c);
    }
    const honest = await transaction(1000, "after-squat");
    assert.match(await honest.rcpt, /^250 /);
    assert.match(await honest.c.cmd("DATA"), /^354 /);
    assert.match(await honest.c.data("Subject: after-squat\r\n\r\nbody"), /^250 /);
    await delivered("after-squat");
    // a squatter may still send its message: it is taken, its place long gone
    assert.match(await squatters[0]!.cmd("DATA"), /^354 /);
    assert.match(await squatters[0]!.data("Subject: squat-0\r\n\r\nlate but fine"), /^250 /);
    await delivered("squat-0");
    for (const c of [...squatters, honest.c]) c.close();
  });

  it("attack: clients sitting inside DATA give their places back after the lapse, not the wait's bound", async () => {
    await restart({ lapseMs: 200 });
    const stallers = await holders(4, "stall"); // never the dot
    const honest = await transaction(1000, "after-stall");
    assert.match(await honest.rcpt, /^250 /, "admitted while the stallers still sit in DATA");
    assert.match(await honest.c.cmd("DATA"), /^354 /);
    assert.match(await honest.c.data("Subject: after-stall\r\n\r\nbody"), /^250 /);
    await delivered("after-stall");
    assert.equal(
      f.logs!.lines.find((l) => l.event === "admission-overdue"),
      undefined,
      "nobody waited to the bound",
    );
    for (const c of [...stallers, honest.c]) c.close();
  });

  it("the wait's bound: with the places still counted, a waiter is admitted anyway, logged", async () => {
    await restart({ maxWaitMs: 300 });
    const ahead = await holders(4, "slow");
    const honest = await transaction(1000, "overdue");
    assert.match(await honest.rcpt, /^250 /);
    assert.match(await honest.c.cmd("DATA"), /^354 /);
    assert.match(await honest.c.data("Subject: overdue\r\n\r\nbody"), /^250 /);
    await delivered("overdue");
    assert.ok(f.logs!.lines.find((l) => l.event === "admission-overdue"));
    const text = await (await fetch(`http://127.0.0.1:${f.ports.admin}/metrics`)).text();
    assert.match(text, /sealpost_relay_inbound_admission_wait_seconds_count\{outcome="overdue"\} [1-9]/);
    for (const c of [...ahead, honest.c]) c.close();
  });

  it("attack: a client that leaves while it waits is out of the line at once", async () => {
    await restart({});
    const ahead = await holders(4, "hold");
    const leavers = await Promise.all([1, 2, 3].map((i) => transaction(1000, `leaver-${i}`)));
    for (const l of leavers) l.rcpt.catch(() => undefined);
    await waitFor("three waiting", async () =>
      (await metric("sealpost_relay_inbound_admission_waiting")) === 3 ? true : undefined,
    );
    for (const l of leavers) l.c.close();
    await waitFor("nobody waiting", async () =>
      (await metric("sealpost_relay_inbound_admission_waiting")) === 0 ? true : undefined,
    );
    const b = await transaction(1000, "next");
    assert.equal(await answeredWithin(b.rcpt, 100), false, "still behind the holders");
    assert.match(await ahead[0]!.data("the rest"), /^250 /);
    assert.match(await b.rcpt, /^250 /);
    assert.match(await b.c.cmd("DATA"), /^354 /);
    assert.match(await b.c.data("Subject: next\r\n\r\nbody"), /^250 /);
    await delivered("next");
    for (const c of [...ahead, b.c]) c.close();
  });

  it("attack: a second transaction pipelined behind a dot waits for its place like any other", async () => {
    await restart({});
    const ahead = await holders(3, "pipe-ahead");
    const a = await transaction(PLACE, "pipe-1");
    assert.match(await a.rcpt, /^250 /); // the window is full: four places
    // one write: the first message whole, then a second transaction up to part of its body
    a.c.send(
      "DATA\r\nSubject: pipe-1\r\n\r\nbody\r\n.\r\n" +
        `MAIL FROM:<app@client.test> SIZE=${PLACE}\r\nRCPT TO:<pipe-2@local.test>\r\nDATA\r\n` +
        "Subject: pipe-2\r\n\r\npart of the body\r\n",
    );
    for (const expect of [/^354 /, /^250 /, /^250 /, /^250 /, /^354 /])
      assert.match(await a.c.reply(), expect);
    const b = await transaction(1000, "behind-pipe");
    assert.equal(
      await answeredWithin(b.rcpt, 300),
      false,
      "the pipelined transaction holds the place its RCPT TO took: the window is full",
    );
    assert.match(await a.c.data("the rest"), /^250 /);
    assert.match(await b.rcpt, /^250 /);
    for (const c of [...ahead, a.c, b.c]) c.close();
  });

  it("attack: one address's many connections cannot keep a place from another client", async () => {
    await restart({});
    const evil = "127.0.0.2"; // not in relayFrom: it may still send to the local domain
    const ahead = await holders(4, "evil-hold", evil);
    const queued = await Promise.all([1, 2, 3].map((i) => transaction(PLACE, `evil-wait-${i}`, evil)));
    for (const q of queued) q.rcpt.catch(() => undefined); // closed while still waiting, at the end
    await waitFor("three waiting", async () =>
      (await metric("sealpost_relay_inbound_admission_waiting")) === 3 ? true : undefined,
    );
    const honest = await transaction(1000, "honest");
    assert.equal(await answeredWithin(honest.rcpt, 100), false, "the window is full");
    assert.match(await ahead[0]!.data("the rest"), /^250 /); // one place frees
    assert.match(await honest.rcpt, /^250 /, "it goes to the client holding none, not to the address's next");
    assert.equal(await metric("sealpost_relay_inbound_admission_waiting"), 3, "the address's own still wait");
    assert.match(await honest.c.cmd("DATA"), /^354 /);
    assert.match(await honest.c.data("Subject: honest\r\n\r\nbody"), /^250 /);
    await delivered("honest");
    for (const c of [...ahead, ...queued.map((q) => q.c), honest.c]) c.close();
  });

  it("a relay whose inbound stops answers its waiters 421 at once, not at the wait's bound", async () => {
    await restart({});
    const ahead = await holders(4, "before-stop");
    const b = await transaction(1000, "stopped");
    assert.equal(await answeredWithin(b.rcpt, 100), false);
    const late = await rawSession(f.ports.smtp); // MAIL FROM before the stop, RCPT TO after it
    await late.cmd("EHLO app.internal");
    assert.match(await late.cmd("MAIL FROM:<app@client.test>"), /^250 /);
    const before = f.relay!.status().configHash;
    await configure(true);
    await f.relay!.checkConfig();
    await waitFor("stopped config loaded", () =>
      f.relay!.status().configHash !== before ? true : undefined,
    );
    assert.match(await b.rcpt, /^421 4\.3\.2 /);
    assert.match(await late.cmd("RCPT TO:<late@local.test>"), /^421 4\.3\.2 /, "told now, not after a wait");
    assert.equal(
      f.logs!.lines.find((l) => l.event === "admission-overdue"),
      undefined,
      "a stop is no overdue admission",
    );
    for (const c of [...ahead, b.c, late]) c.close();
    await configure(false);
  });
});
