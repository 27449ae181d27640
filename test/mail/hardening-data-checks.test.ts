// Attacks on the inbound DATA checks in one pass (issue 18, relay/inbound/data-checks.ts: the
// handover headers, bare CR/LF and header line length, the hop count), from a raw client on the
// wire. Each attack's bytes are written in pieces cut at every offset of the part that matters, one
// write per event-loop turn, so the relay reads them in separate chunks as often as the loopback
// allows (the unit tests, test/unit/relay-data-checks.test.ts, cut them exactly). After each group
// the relay still takes and delivers a normal message, and nothing refused was queued or delivered.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { readSpool } from "../../relay/queue/spool.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { hostileConnect, type HostileClient } from "../support/hostile-client.js";
import { FALSE_ENDS, SMUGGLED } from "../support/smuggling.js";
import { waitFor } from "../support/process.js";
import { startRelay, testConfig, testPorts, writeConfigDir, type TestPorts } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const HOP_LIMIT = 3;
let work: string;
let sink: Sink;
let ports: TestPorts;
let relay: Relay;
const open: HostileClient[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), "hardening-data-"));
  const ca = await makeCa(join(work, "ca"));
  const leaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  sink = await startSink();
  ports = await testPorts();
  const cfg = testConfig(ports, join(work, "queue"), {
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sink.port },
      hopLimit: HOP_LIMIT,
      maxMessageSize: 1024 * 1024,
    },
  });
  await writeConfigDir(join(work, "config"), {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(leaf.certFile),
    "tls/tls.key": await readFile(leaf.keyFile),
  });
  ({ relay } = await startRelay(join(work, "config")));
});

afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

after(async () => {
  await relay?.stop();
  await sink?.close();
  await rm(work, { recursive: true, force: true });
});

async function connect(): Promise<HostileClient> {
  const c = await hostileConnect(ports.smtp);
  open.push(c);
  return c;
}

async function queued(): Promise<string[]> {
  return (await readSpool(join(work, "queue"))).map((m) => m.env.id);
}

/** Bytes of message bodies the spool holds while receiving them (must be back to 0 when idle). */
function buffered(): number {
  const n = (relay as unknown as { spool: { bufferedBytes: unknown } }).spool.bufferedBytes;
  assert.equal(typeof n, "number", "the spool says how many body bytes it holds");
  return n as number;
}

/** EHLO, MAIL, RCPT, DATA (354) on a fresh connection. */
async function inData(): Promise<HostileClient> {
  const c = await connect();
  assert.match(await c.cmd("EHLO hostile.test"), /^250/);
  assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250/);
  assert.match(await c.cmd("RCPT TO:<rcpt@local.test>"), /^250/);
  assert.match(await c.cmd("DATA"), /^354/);
  return c;
}

/** Writes `text` in pieces cut at `cuts`, one write per turn of the event loop. */
async function writeCut(c: HostileClient, text: string, cuts: number[]): Promise<void> {
  let at = 0;
  for (const n of [...cuts, text.length]) {
    if (n <= at) continue;
    c.write(text.slice(at, n));
    at = n;
    await new Promise((r) => setImmediate(r));
  }
}

/** The cuts around `part` of `text`: each offset from one before it to one past it. */
function cutsAround(text: string, part: string): number[] {
  const i = text.indexOf(part);
  assert.ok(i >= 0, part);
  return Array.from({ length: part.length + 2 }, (_, k) => i - 1 + k).filter((n) => n > 0 && n < text.length);
}

/** `text` sent as a message cut at `at`; its reply. */
async function send(text: string, at: number[]): Promise<{ reply: string; c: HostileClient }> {
  const c = await inData();
  await writeCut(c, text, at);
  const [reply] = await c.replies(1);
  return { reply: reply!, c };
}

/** The relay takes and delivers a normal message, and has nothing else queued nor buffered. */
async function serves(): Promise<void> {
  const tag = `ok-${Math.random().toString(36).slice(2)}`;
  const { reply, c } = await send(`Subject: ${tag}\r\n\r\nfine\r\n.\r\n`, []);
  assert.match(reply, /^250 2\.0\.0 Ok: queued as/);
  c.close();
  await waitFor("the control message delivered", () =>
    sink.messages.some((m) => m.data.includes(tag)) ? true : undefined,
  );
  await waitFor("the queue empty", async () => ((await queued()).length ? undefined : true));
  await waitFor("no body bytes held", () => (buffered() === 0 ? true : undefined));
}

describe("SMTP smuggling, the bare line break cut at every offset", () => {
  for (const [name, seq] of FALSE_ENDS) {
    it(`${name} then commands: 550 5.5.2 at every cut, nothing queued or delivered`, async () => {
      const before = sink.messages.length;
      const text = `Subject: smuggle\r\n\r\nhello${seq}${SMUGGLED}.\r\n`;
      for (const at of cutsAround(text, `o${seq}M`)) {
        const { reply, c } = await send(text, [at]);
        assert.match(reply, /^550 5\.5\.2 Bare <(LF|CR)>/, `cut at ${at}`);
        assert.equal(await c.cmd("NOOP"), "250 OK");
        c.close();
      }
      await serves();
      assert.ok(!sink.messages.slice(before).some((m) => m.to.includes("victim@local.test")));
      assert.ok(!sink.messages.slice(before).some((m) => m.data.includes("evil")));
    });
  }
});

describe("the hop count across chunks", () => {
  it(`${HOP_LIMIT} Received: headers, the last one cut at every offset: 554 5.4.6, nothing queued`, async () => {
    const text = `Received: a\r\nreceived: b\r\nRECEIVED: c\r\nSubject: loop\r\n\r\nbody\r\n.\r\n`;
    for (const at of cutsAround(text, "RECEIVED:")) {
      const { reply, c } = await send(text, [at]);
      assert.match(reply, /^554 5\.4\.6 Too many hops/, `cut at ${at}`);
      c.close();
    }
    await serves();
  });

  it("Received: lines after the header section, its end cut at every offset, are no hops", async () => {
    const before = sink.messages.length;
    const text = `Received: a\r\nSubject: body-hops\r\n\r\nReceived: x\r\nReceived: y\r\nReceived: z\r\n.\r\n`;
    const cuts = cutsAround(text, "\r\n\r\nR");
    for (const at of cuts) {
      const { reply, c } = await send(text, [at]);
      assert.match(reply, /^250 2\.0\.0 Ok: queued as/, `cut at ${at}`);
      c.close();
    }
    await waitFor("every body-hops message delivered", () =>
      sink.messages.slice(before).filter((m) => m.data.includes("Subject: body-hops")).length === cuts.length
        ? true
        : undefined,
    );
    await serves();
  });
});

describe("the handover header from a client that is no fleet peer", () => {
  it("cut at every offset of its name: 550 5.7.1, nothing queued or delivered", async () => {
    const before = sink.messages.length;
    const text = `Subject: spoof\r\nX-Sealpost-Handover: v=1; id=x; t=2020-01-01T00:00:00.000Z; f=signable; mac=AAAA\r\n\r\nspoofed\r\n.\r\n`;
    for (const at of cutsAround(text, "X-Sealpost-Handover:")) {
      const { reply, c } = await send(text, [at]);
      assert.match(reply, /^550 5\.7\.1 /, `cut at ${at}`);
      c.close();
    }
    // and one byte per write
    const { reply, c } = await send(
      text,
      Array.from({ length: text.length }, (_, i) => i),
    );
    assert.match(reply, /^550 5\.7\.1 /);
    c.close();
    await serves();
    assert.ok(!sink.messages.slice(before).some((m) => m.data.includes("spoofed")));
  });
});

describe("the handover header past the first 256 KiB of the header section", () => {
  it("from a client that is no fleet peer: 550 5.7.1, never delivered carrying it", async () => {
    const before = sink.messages.length;
    const pad = `X-Pad: ${"p".repeat(90)}\r\n`.repeat(Math.ceil((330 * 1024) / 99));
    const text = `${pad}X-Sealpost-Handover: v=1; id=x; t=2020-01-01T00:00:00.000Z; mac=AAAA\r\nSubject: deep\r\n\r\ndeep spoof\r\n.\r\n`;
    const { reply, c } = await send(text, [text.indexOf("X-Sealpost-Handover") + 10]);
    assert.match(reply, /^550 5\.7\.1 /);
    c.close();
    await serves();
    assert.ok(!sink.messages.slice(before).some((m) => m.data.includes("X-Sealpost-Handover")));
  });
});

describe("header lines and 8-bit bytes", () => {
  it("a 999-octet header line cut around its end: 552 5.6.0; 998 octets pass", async () => {
    const long = `Subject: ${"h".repeat(999 - "Subject: ".length)}`;
    const text = `${long}\r\n\r\nbody\r\n.\r\n`;
    for (const at of cutsAround(text, "h\r\n\r\n")) {
      const { reply, c } = await send(text, [at]);
      assert.match(reply, /^552 5\.6\.0 Header line longer than 998 octets/, `cut at ${at}`);
      c.close();
    }
    const { reply, c } = await send(`${long.slice(1)}\r\n\r\nbody\r\n.\r\n`, [500]);
    assert.match(reply, /^250 /);
    c.close();
    await serves();
  });

  it("8-bit and NUL bytes in a body sent one byte per write arrive unchanged", async () => {
    const tag = `bytes-${Math.random().toString(36).slice(2)}`;
    const body = "caf\xe9 \x00 \xff\xfe \x80\r\n..dot\r\n";
    const text = `Subject: ${tag}\r\n\r\n${body}.\r\n`;
    const c = await inData();
    for (let i = 0; i < text.length; i++) {
      c.write(Buffer.from(text[i]!, "latin1"));
      await new Promise((r) => setImmediate(r));
    }
    assert.match((await c.replies(1))[0]!, /^250 /);
    c.close();
    const m = await waitFor("the 8-bit message", () => sink.messages.find((x) => x.data.includes(tag)));
    const data = m.data.toString("latin1");
    assert.ok(
      data.endsWith(`\r\n\r\ncaf\xe9 \x00 \xff\xfe \x80\r\n.dot\r\n`),
      JSON.stringify(data.slice(-40)),
    );
    await serves();
  });
});

describe("a client gone in the middle of DATA", () => {
  for (const [where, text] of [
    ["in its header section (held by the handover scan)", "Subject: gone\r\nX-Long: " + "x".repeat(300)],
    ["after a bare CR at a chunk's end", "Subject: gone\r\n\r\nbody\r"],
    ["in its body", "Subject: gone\r\n\r\n" + "b".repeat(20_000)],
    ["after <CR><LF>. of the terminator", "Subject: gone\r\n\r\nbody\r\n."],
  ] as const) {
    it(`${where}: nothing queued, no body bytes held, the relay serves others`, async () => {
      const before = sink.messages.length;
      const c = await inData();
      await writeCut(c, text, [Math.floor(text.length / 2)]);
      c.close();
      await waitFor("no body bytes held", () => (buffered() === 0 ? true : undefined));
      assert.deepEqual(await queued(), []);
      await serves();
      assert.ok(!sink.messages.slice(before).some((m) => m.data.includes("Subject: gone")));
    });
  }
});

describe("a fault inside the relay while it takes a message", () => {
  it("answers 451 4.3.0 and keeps serving: an error thrown by the queue never takes the process down", async () => {
    const spool = (relay as unknown as { spool: { enqueue: (...a: unknown[]) => Promise<unknown> } }).spool;
    const enqueue = spool.enqueue;
    spool.enqueue = () => Promise.reject(new Error("injected: the queue threw"));
    try {
      const c = await inData();
      c.write("Subject: fault\r\n\r\nbody\r\n.\r\n");
      const [reply] = await c.replies(1);
      assert.match(reply!, /^451 4\.3\.0 /);
    } finally {
      spool.enqueue = enqueue;
    }
    assert.deepEqual(await queued(), []);
    await serves();
  });
});
