// Protocol abuse against a running relay (GitHub issue 8, item 1), with a raw hostile client:
// SMTP smuggling, pipelining abuse, over-long lines, oversized messages, too many recipients,
// invalid addresses and UTF-8, AUTH brute force, STARTTLS command injection, slow clients and
// connection floods. After every case the relay must still take and deliver a normal message.
// Two relays: A (generous timeouts) for everything but the timeouts, B (sub-second idle limit,
// short session limit) for the slow clients.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { readSpool } from "../../relay/queue/spool.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf, type Leaf } from "../support/certs.js";
import { hostileConnect, type HostileClient } from "../support/hostile-client.js";
import { FALSE_ENDS, SMUGGLED } from "../support/smuggling.js";
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
let portsA: TestPorts;
let portsB: TestPorts;
let relayA: Relay;
let relayB: Relay;
const MAX_SIZE = 4000;
const open: HostileClient[] = [];

async function writeRelay(dir: string, ports: TestPorts, limits: object): Promise<void> {
  const inbound: RelayConfigInput["inbound"] = {
    require: "none",
    relayFrom: ["127.0.0.1"],
    localDomains: ["local.test"],
    internalNextHop: { host: "127.0.0.1", port: sink.port },
    maxMessageSize: MAX_SIZE,
    maxRecipients: 3,
    limits,
  };
  const cfg = testConfig(ports, join(dir, "queue"), {
    inbound,
    credentials: {
      alice: { type: "password", usage: "inbound", username: "alice", passwordFile: "secrets/alice/pw" },
      bob: { type: "password", usage: "inbound", username: "bob", passwordFile: "secrets/bob/pw" },
    },
  });
  await writeConfigDir(join(dir, "config"), {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(leaf.certFile),
    "tls/tls.key": await readFile(leaf.keyFile),
    "secrets/alice/pw": "alice-secret",
    "secrets/bob/pw": "bob-secret",
  });
}

async function connect(port = portsA.smtp, localAddress?: string): Promise<HostileClient> {
  const c = await hostileConnect(port, localAddress ? { localAddress } : {});
  open.push(c);
  return c;
}

/** Ids of the live messages in a relay's spool (journal and files). */
async function queued(relayDir: string): Promise<string[]> {
  return (await readSpool(join(relayDir, "queue"))).map((m) => m.env.id);
}

/** The relay takes and delivers a normal message (the proof that it still serves others). */
async function serves(port = portsA.smtp): Promise<void> {
  const tag = `ok-${Math.random().toString(36).slice(2)}`;
  const c = await connect(port);
  assert.match(await c.cmd("EHLO good.test"), /^250/);
  assert.match(await c.cmd("MAIL FROM:<good@sender.test>"), /^250/);
  assert.match(await c.cmd("RCPT TO:<rcpt@local.test>"), /^250/);
  assert.match(await c.cmd("DATA"), /^354/);
  c.write(`Subject: ${tag}\r\n\r\nfine\r\n.\r\n`);
  const [reply] = await c.replies(1);
  assert.match(reply!, /^250 2\.0\.0 Ok: queued as/);
  await c.cmd("QUIT");
  c.close();
  await waitFor("delivery of the control message", () =>
    sink.messages.some((m) => m.data.includes(tag)) ? true : undefined,
  );
  // and out of the queue (its done record follows the sink's 250): the tests after this one assert
  // that nothing is queued, and must not find this message there
  const id = /queued as (\S+)/.exec(reply!)?.[1];
  const dir = port === portsA.smtp ? "a" : "b";
  await waitFor("the control message out of the queue", async () =>
    (await queued(join(work, dir))).includes(id!) ? undefined : true,
  );
}

/** EHLO, MAIL, RCPT, DATA (354) on a fresh connection. */
async function inData(c: HostileClient, rcpt = "rcpt@local.test"): Promise<void> {
  assert.match(await c.cmd("EHLO hostile.test"), /^250/);
  assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250/);
  assert.match(await c.cmd(`RCPT TO:<${rcpt}>`), /^250/);
  assert.match(await c.cmd("DATA"), /^354/);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "hardening-"));
  const ca = await makeCa(join(work, "ca"));
  leaf = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"] });
  sink = await startSink();
  portsA = await testPorts();
  portsB = await testPorts();
  await writeRelay(join(work, "a"), portsA, {
    maxConnections: 8,
    maxConnectionsPerIp: 3,
    idleTimeoutSeconds: 60,
    sessionTimeoutSeconds: 600,
    authMaxFailuresPerIp: 4,
    authMaxFailuresPerAccount: 3,
    authWindowSeconds: 3600,
  });
  await writeRelay(join(work, "b"), portsB, { idleTimeoutSeconds: 0.5, sessionTimeoutSeconds: 2 });
  ({ relay: relayA } = await startRelay(join(work, "a", "config")));
  ({ relay: relayB } = await startRelay(join(work, "b", "config")));
});

// a failed assertion leaves its connection open: close it, or it holds a per-IP slot
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

after(async () => {
  await relayA?.stop();
  await relayB?.stop();
  await sink?.close();
  await rm(work, { recursive: true, force: true });
});

describe("SMTP smuggling", () => {
  for (const [name, seq] of FALSE_ENDS) {
    it(`a body with ${name} and commands after it is refused whole with 550 5.5.2; nothing is queued`, async () => {
      const before = sink.messages.length;
      const c = await connect();
      await inData(c);
      c.write(`Subject: smuggle\r\n\r\nhello${seq}${SMUGGLED}.\r\n`);
      const [reply] = await c.replies(1);
      assert.match(reply!, /^550 5\.5\.2 Bare <(LF|CR)>/);
      // the next reply belongs to NOOP: nothing after the bare newline ran as a command
      assert.equal(await c.cmd("NOOP"), "250 OK");
      c.close();
      assert.deepEqual(await queued(join(work, "a")), []);
      await serves();
      assert.ok(!sink.messages.slice(before).some((m) => m.to.includes("victim@local.test")));
      assert.ok(!sink.messages.slice(before).some((m) => m.data.includes("evil")));
    });
  }

  it("a dot-stuffed '.' line and command text inside a valid body stay one message, delivered as body", async () => {
    const c = await connect();
    await inData(c);
    c.write(`Subject: one\r\n\r\nhello\r\n..\r\n${SMUGGLED}.\r\n`);
    assert.match((await c.replies(1))[0]!, /^250 2\.0\.0 Ok: queued as/);
    c.close();
    const m = await waitFor("the one message", () =>
      sink.messages.find((x) => x.data.includes("Subject: one")),
    );
    assert.deepEqual(m.to, ["rcpt@local.test"]);
    assert.match(m.data.toString(), /hello\r\n\.\r\nMAIL FROM:<evil@attacker\.test>\r\n/);
    assert.ok(!sink.messages.some((x) => x.to.includes("victim@local.test")));
  });
});

describe("pipelining abuse", () => {
  it("commands before the greeting get 421 and the connection is closed", async () => {
    // 127.0.0.2 is outside relayFrom: an untrusted client, which waits for the greeting
    const c = await hostileConnect(portsA.smtp, { noGreeting: true, localAddress: "127.0.0.2" });
    open.push(c);
    c.write("EHLO early.test\r\nMAIL FROM:<a@sender.test>\r\n");
    const [r] = await c.replies(1);
    assert.match(r!, /^421 .*too soon/i);
    await c.waitClosed();
    await serves();
  });

  it("a client in relayFrom is greeted at once: no pregreet wait, as postscreen's permit_mynetworks", async () => {
    // the EHLO is written before any byte of the greeting could have arrived; a trusted client is
    // ready before its first byte is read, so the EHLO is answered instead of 421 "too soon"
    const c = await hostileConnect(portsA.smtp, { noGreeting: true, localAddress: "127.0.0.1" });
    open.push(c);
    c.write("EHLO trusted.test\r\n");
    const [greeting, ehlo] = await c.replies(2);
    assert.match(greeting!, /^220 /);
    assert.match(ehlo!, /^250[- ]/);
    c.write("QUIT\r\n");
    await c.waitClosed();
  });

  it("a whole transaction and QUIT in one packet (body pipelined after DATA) is one message", async () => {
    const c = await connect();
    c.write(
      "EHLO pipe.test\r\nMAIL FROM:<p@sender.test>\r\nRCPT TO:<rcpt@local.test>\r\nDATA\r\n" +
        "Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n",
    );
    const r = await c.replies(6);
    assert.deepEqual(
      r.map((x) => x.slice(0, 3)),
      ["250", "250", "250", "354", "250", "221"],
    );
    await c.waitClosed();
    await waitFor("pipelined message", () =>
      sink.messages.filter((m) => m.data.includes("Subject: pipelined")).length === 1 ? true : undefined,
    );
    await serves();
  });

  it("500 pipelined NOOPs are all answered, in order", async () => {
    const c = await connect();
    c.write("NOOP\r\n".repeat(500));
    const r = await c.replies(500);
    assert.equal(r.length, 500);
    assert.ok(r.every((x) => x.startsWith("250")));
    c.close();
    await serves();
  });
});

describe("over-long lines", () => {
  it("a 600-octet command gets 500 5.5.2 and the session goes on", async () => {
    const c = await connect();
    assert.equal(await c.cmd(`NOOP ${"x".repeat(600)}`), "500 5.5.2 Line too long");
    assert.equal(await c.cmd(`HELO ${"h".repeat(520)}.test`), "500 5.5.2 Line too long");
    assert.match(await c.cmd("EHLO ok.test"), /^250/);
    assert.equal(await c.cmd(`MAIL FROM:<${"a".repeat(1100)}@sender.test>`), "500 5.5.2 Line too long");
    assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250/);
    c.close();
    await serves();
  });

  it("a 20 000-octet line without CRLF is cut off with 421 (nothing buffered without bound)", async () => {
    const c = await connect();
    c.write("NOOP " + "y".repeat(20_000));
    const [r] = await c.replies(1);
    assert.match(r!, /^421 .*too long/i);
    await c.waitClosed();
    await serves();
  });

  it("a header line over 998 octets gets 552 5.6.0; nothing is queued", async () => {
    const c = await connect();
    await inData(c);
    c.write(`Subject: ${"h".repeat(995)}\r\n\r\nbody\r\n.\r\n`);
    assert.equal((await c.replies(1))[0], "552 5.6.0 Header line longer than 998 octets");
    assert.equal(await c.cmd("NOOP"), "250 OK");
    c.close();
    assert.deepEqual(await queued(join(work, "a")), []);
    await serves();
  });

  it("a body line over 998 octets is accepted (only headers are limited)", async () => {
    const c = await connect();
    await inData(c);
    c.write(`Subject: longbody\r\n\r\n${"b".repeat(1500)}\r\n.\r\n`);
    const [reply] = await c.replies(1);
    assert.match(reply!, /^250 /);
    c.close();
    // delivered and out of the queue before the next tests, which assert that nothing is queued
    const id = /queued as (\S+)/.exec(reply!)?.[1];
    assert.ok(id);
    await waitFor("the long-body message delivered", async () =>
      (await queued(join(work, "a"))).includes(id) ? undefined : true,
    );
    assert.ok(sink.messages.some((m) => m.data.includes("Subject: longbody")));
  });
});

describe("oversized messages", () => {
  it("SIZE is advertised; MAIL FROM SIZE= above it is refused up front with 552 5.3.4", async () => {
    const c = await connect();
    assert.match(await c.cmd("EHLO big.test"), new RegExp(`250[ -]SIZE ${MAX_SIZE}`));
    assert.equal(
      await c.cmd(`MAIL FROM:<a@sender.test> SIZE=${MAX_SIZE + 1}`),
      "552 5.3.4 Message size exceeds fixed limit",
    );
    assert.match(await c.cmd(`MAIL FROM:<a@sender.test> SIZE=${MAX_SIZE - 100}`), /^250/);
    c.close();
  });

  it("a body over the limit (SIZE not declared) is refused after streaming with 552 5.3.4, nothing queued", async () => {
    const before = sink.messages.length;
    const c = await connect();
    await inData(c);
    c.write(`Subject: huge\r\n\r\n${"z".repeat(70)}\r\n`.repeat(200) + ".\r\n");
    assert.equal((await c.replies(1))[0], "552 5.3.4 Message too big");
    assert.equal(await c.cmd("NOOP"), "250 OK");
    c.close();
    assert.deepEqual(await queued(join(work, "a")), []);
    await serves();
    assert.ok(!sink.messages.slice(before).some((m) => m.data.includes("Subject: huge")));
  });
});

describe("recipients, addresses, UTF-8", () => {
  it("a 4th recipient gets 452 4.5.3 (limit 3); the first three are kept", async () => {
    const c = await connect();
    await c.cmd("EHLO many.test");
    await c.cmd("MAIL FROM:<a@sender.test>");
    for (let i = 1; i <= 3; i++) assert.match(await c.cmd(`RCPT TO:<r${i}@local.test>`), /^250/);
    assert.equal(await c.cmd("RCPT TO:<r4@local.test>"), "452 4.5.3 Too many recipients");
    assert.match(await c.cmd("DATA"), /^354/);
    c.write("Subject: three\r\n\r\nx\r\n.\r\n");
    assert.match((await c.replies(1))[0]!, /^250 /);
    c.close();
    const m = await waitFor("three-recipient message", () =>
      sink.messages.find((x) => x.data.includes("Subject: three")),
    );
    assert.deepEqual([...m.to].sort(), ["r1@local.test", "r2@local.test", "r3@local.test"]);
  });

  it("malformed addresses get 501; unknown parameters 555 5.5.4", async () => {
    const c = await connect();
    await c.cmd("EHLO bad.test");
    for (const a of ["<a b@sender.test>", "<@@>", "<a@b@c>", "a@sender.test>", "<a@[999.1.1.1]>x"])
      assert.match(await c.cmd(`MAIL FROM:${a}`), /^50[01] /, a);
    assert.equal(
      await c.cmd("MAIL FROM:<a@sender.test> FOO=bar"),
      "555 5.5.4 MAIL FROM parameter not recognized",
    );
    assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250/);
    assert.equal(await c.cmd("RCPT TO:<r@local.test> XYZ=1"), "555 5.5.4 RCPT TO parameter not recognized");
    assert.match(await c.cmd("RCPT TO:<bad address@local.test>"), /^501 /);
    c.close();
    await serves();
  });

  it("a non-ASCII address without SMTPUTF8 gets 553 5.6.7; with SMTPUTF8 it is handled and delivered", async () => {
    const c = await connect();
    assert.match(await c.cmd("EHLO utf8.test"), /SMTPUTF8/);
    assert.equal(
      await c.cmd("MAIL FROM:<jürgen@sender.test>"),
      "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter",
    );
    assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250/);
    assert.equal(
      await c.cmd("RCPT TO:<zoë@local.test>"),
      "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter",
    );
    await c.cmd("RSET");
    // the raw client writes latin1; send real UTF-8 bytes
    c.write(Buffer.from("MAIL FROM:<jürgen@sender.test> SMTPUTF8\r\n", "utf8"));
    assert.match((await c.replies(1))[0]!, /^250/);
    c.write(Buffer.from("RCPT TO:<zoë@local.test>\r\n", "utf8"));
    assert.match((await c.replies(1))[0]!, /^250/);
    assert.match(await c.cmd("DATA"), /^354/);
    c.write("Subject: utf8\r\n\r\nx\r\n.\r\n");
    assert.match((await c.replies(1))[0]!, /^250 /);
    c.close();
    const m = await waitFor("utf8 message", () =>
      sink.messages.find((x) => x.data.includes("Subject: utf8")),
    );
    assert.deepEqual(m.to, ["zoë@local.test"]);
    assert.equal(m.from, "jürgen@sender.test");
  });
});

/** Each ASCII character as a Gurmukhi code point (no case) whose low byte is that character. */
const lowByteSmuggle = (s: string): string =>
  [...s].map((c) => String.fromCodePoint(0x0a00 + c.charCodeAt(0))).join("");

/** The header section of the delivered message whose Subject is `subject`. */
async function deliveredHead(subject: string): Promise<string> {
  const m = await waitFor(subject, () => sink.messages.find((x) => x.data.includes(`Subject: ${subject}`)));
  return m.data.toString("latin1").split("\r\n\r\n")[0]!;
}

describe("trace header injection (attack review, session 6)", () => {
  // smtp-server refuses control characters in EHLO names and addresses, but not U+0A0D or U+0A0A,
  // whose low byte is CR or LF: the relay's Received: line, written as latin1, carried them as CR/LF,
  // and a stranger's header lines stood above the relay's own trace, past every content check
  it("an EHLO name with characters whose low byte is CR/LF cannot add a header line", async () => {
    const c = await connect(portsA.smtp, "127.0.0.2");
    const helo = `mx.stranger.test${lowByteSmuggle("\r\nAuthentication-Results: relay.test; dkim=pass\r\nX-Injected: yes")}`;
    assert.match(await c.cmd(`EHLO ${helo}`), /^250/);
    assert.match(await c.cmd("MAIL FROM:<x@stranger.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@local.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354/);
    c.write("Subject: trace-helo\r\n\r\nbody\r\n.\r\n");
    assert.match((await c.replies(1))[0]!, /^250 /);
    c.close();
    const head = await deliveredHead("trace-helo");
    assert.doesNotMatch(head, /^x-injected:/im, head);
    assert.doesNotMatch(head, /^authentication-results:/im, head);
    assert.match(head, /^Received: from unknown \(\[127\.0\.0\.2\]\)\r\n\tby /m, head);
    assert.doesNotMatch(head, /[^\t\r\n\x20-\x7e]/, "the header section is printable ASCII");
  });

  it("an SMTPUTF8 recipient with such characters cannot add a header line through the `for` clause", async () => {
    const c = await connect(portsA.smtp, "127.0.0.2");
    assert.match(await c.cmd("EHLO mx.stranger.test"), /^250/);
    assert.match(await c.cmd("MAIL FROM:<x@stranger.test> SMTPUTF8"), /^250 /);
    const local = `bob${lowByteSmuggle("\r\nX-Injected-Rcpt:")}\u0a20yes`;
    assert.match(await c.cmd(`RCPT TO:<${local}@local.test>`), /^250 /);
    assert.match(await c.cmd("DATA"), /^354/);
    c.write("Subject: trace-rcpt\r\n\r\nbody\r\n.\r\n");
    assert.match((await c.replies(1))[0]!, /^250 /);
    c.close();
    const head = await deliveredHead("trace-rcpt");
    assert.doesNotMatch(head, /^x-injected-rcpt:/im, head);
    assert.doesNotMatch(head, /\tfor </, "no for clause for a recipient that is not ASCII");
  });
});

async function authClient(localAddress: string): Promise<HostileClient> {
  const c = await connect(portsA.smtp, localAddress);
  await c.cmd("EHLO auth.test");
  assert.match(await c.cmd("STARTTLS"), /^220/);
  await c.upgrade();
  assert.match(await c.cmd("EHLO auth.test"), /AUTH PLAIN LOGIN/);
  return c;
}

describe("AUTH brute force", () => {
  const THROTTLED = "454 4.7.0 Too many failed authentication attempts, try again later";

  it("per account: after 3 failures the account is refused with 454 4.7.0, from any IP, even the right password", async () => {
    const c = await authClient("127.0.0.60");
    for (let i = 0; i < 3; i++)
      assert.equal(
        await c.cmd(`AUTH PLAIN ${plainToken("alice", `guess${i}`)}`),
        "535 5.7.8 Authentication credentials invalid",
      );
    assert.equal(await c.cmd(`AUTH PLAIN ${plainToken("alice", "alice-secret")}`), THROTTLED);
    c.close();
    const other = await authClient("127.0.0.61");
    assert.equal(await other.cmd(`AUTH PLAIN ${plainToken("alice", "alice-secret")}`), THROTTLED);
    // another account from that IP is fine
    assert.match(await other.cmd(`AUTH PLAIN ${plainToken("bob", "bob-secret")}`), /^235 /);
    other.close();
    await serves();
  });

  it("per IP: after 4 failures over several accounts the IP is refused with 454 4.7.0; other IPs are not", async () => {
    const c = await authClient("127.0.0.62");
    for (const u of ["u1", "u2", "u3", "u4"])
      assert.match(await c.cmd(`AUTH PLAIN ${plainToken(u, "x")}`), /^535 /);
    assert.equal(await c.cmd(`AUTH PLAIN ${plainToken("bob", "bob-secret")}`), THROTTLED);
    // AUTH LOGIN is counted the same way
    c.write("AUTH LOGIN\r\n");
    assert.match((await c.replies(1))[0]!, /^334 /);
    c.write(`${Buffer.from("bob").toString("base64")}\r\n`);
    assert.match((await c.replies(1))[0]!, /^334 /);
    c.write(`${Buffer.from("bob-secret").toString("base64")}\r\n`);
    assert.equal((await c.replies(1))[0], THROTTLED);
    c.close();
    const ok = await authClient("127.0.0.63");
    assert.match(await ok.cmd(`AUTH PLAIN ${plainToken("bob", "bob-secret")}`), /^235 /);
    ok.close();
    await serves();
  });
});

describe("STARTTLS command injection (CVE-2011-0411 class)", () => {
  it("commands sent in the same packet as STARTTLS are not executed after the handshake", async () => {
    const c = await connect();
    await c.cmd("EHLO inject.test");
    c.write("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@attacker.test>\r\n");
    assert.match((await c.replies(1))[0]!, /^220 /);
    await c.upgrade();
    // the first reply inside TLS is the one to our EHLO: nothing buffered was answered
    const ehlo = await c.cmd("EHLO inject.test");
    assert.match(ehlo, /^250[ -]relay\.test/);
    assert.match(await c.cmd("RCPT TO:<rcpt@local.test>"), /^503 .*need MAIL command/);
    c.close();
    await serves();
  });
});

describe("connection floods", () => {
  it("per IP: the 4th concurrent connection from one address gets 421 4.7.0", async () => {
    const held: HostileClient[] = [];
    for (let i = 0; i < 3; i++) held.push(await connect(portsA.smtp, "127.0.0.70"));
    const c = await hostileConnect(portsA.smtp, { localAddress: "127.0.0.70", noGreeting: true });
    open.push(c);
    assert.equal(
      (await c.replies(1))[0],
      "421 4.7.0 Too many connections from your address, try again later",
    );
    await c.waitClosed();
    for (const h of held) h.close();
    // released on close: the address gets in again
    await waitFor("per-IP slot released", async () => {
      const again = await hostileConnect(portsA.smtp, { localAddress: "127.0.0.70", noGreeting: true });
      const [r] = await again.replies(1).catch(() => ["closed"]);
      again.close();
      return r!.startsWith("220") ? true : undefined;
    });
    await serves();
  });

  it("in total: past maxConnections (8) over many addresses, 421 4.7.0", async () => {
    const held: HostileClient[] = [];
    let refused: string | undefined;
    for (let i = 0; i < 12 && !refused; i++) {
      const c = await hostileConnect(portsA.smtp, { localAddress: `127.0.1.${i + 1}`, noGreeting: true });
      open.push(c);
      const [r] = await c.replies(1);
      if (r!.startsWith("220")) held.push(c);
      else refused = r;
    }
    assert.equal(refused, "421 4.7.0 Too many connections, try again later");
    assert.ok(held.length <= 8);
    for (const h of held) h.close();
    await waitFor("global slots released", async () => {
      try {
        await serves();
        return true;
      } catch {
        return undefined;
      }
    });
  });
});

describe("slow clients (relay B: idle 0.5 s, session 2 s)", () => {
  it("an idle client is told 421 and disconnected", async () => {
    const c = await connect(portsB.smtp);
    assert.match(await c.cmd("EHLO slow.test"), /^250/);
    await c.waitClosed();
    assert.match(c.received, /421 .*Timeout/i);
    await serves(portsB.smtp);
  });

  it("a client that keeps talking (NOOP every 100 ms) is cut at the session limit with 421 4.4.2", async () => {
    const c = await connect(portsB.smtp);
    for (let i = 0; i < 200 && !c.closed; i++) {
      c.write("NOOP\r\n");
      await new Promise((r) => setTimeout(r, 100));
    }
    await c.waitClosed();
    assert.match(c.received, /421 4\.4\.2 Session time limit reached/);
    await serves(portsB.smtp);
  });

  it("a client that stalls in the middle of DATA is disconnected and nothing is queued", async () => {
    const c = await connect(portsB.smtp);
    await inData(c);
    c.write("Subject: stalled\r\n\r\npartial");
    await c.waitClosed();
    assert.deepEqual(await queued(join(work, "b")), []);
    await serves(portsB.smtp);
  });
});
