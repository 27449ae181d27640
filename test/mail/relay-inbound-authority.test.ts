// Issue 15 findings 3, 7 and 8 from the attacker's side of the wire, against a real relay on
// loopback (different 127.0.0.x source addresses act as different hosts; IPv6 clients come through
// a trusted PROXY-protocol front, as behind a load balancer):
//  3. a partner's credential only from the partner's hosts; a logged-in partner may send to local
//     domains only (unless its credential grants relaying); MAIL FROM tied to the account;
//  7. unknown local recipients refused at RCPT TO (no backscatter); percent-hack and bang paths
//     refused for clients that may not relay;
//  8. AUTH failures and connections counted per IPv6 /64; a revoked credential stops working in
//     an open session from its next transaction.
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Relay } from "../../relay/relay.js";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { waitFor } from "../support/process.js";
import {
  plainToken,
  rawSession,
  relayFixture,
  type RawSession,
  type RelayFixture,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { swaks } from "../support/swaks.js";

let f: RelayFixture;
let relay: Relay;
let sink: Sink;
let front: { server: Server; port: number; sockets: Set<Socket>; next: string[] };

const STRANGER = "127.0.0.2";
const PARTNER = "127.0.0.3";

/** A load balancer on loopback in front of the submission port: each connection gets a PROXY v1 header. */
async function startFront(to: number): Promise<typeof front> {
  const sockets = new Set<Socket>();
  const next: string[] = [];
  const server = createServer((client) => {
    const src = next.shift() ?? "2001:db8::1";
    const up = connect({ host: "127.0.0.1", port: to });
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => (client.destroy(), up.destroy()));
    }
    up.once("connect", () => {
      up.write(`PROXY TCP6 ${src} 2001:db8:ffff::1 40000 587\r\n`);
      client.pipe(up);
      up.pipe(client);
    });
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
  return { server, port, sockets, next };
}

const FILES = {
  "secrets/partner-in/password": "partner-pw\n",
  "secrets/app-in/password": "app-pw",
  "secrets/other-in/password": "other-pw",
  // a Secret whose key exists but whose value was never filled in (`--from-literal=password=`)
  "secrets/empty-in/password": "\n",
  // one blank line more, or a space: the same mistake
  "secrets/blank-in/password": " \r\n\r\n",
};

function config(
  o: {
    withoutApp?: boolean;
    generation?: number;
    app?: { senderDomains?: string[]; allowRelay?: boolean };
  } = {},
): Partial<RelayConfigInput> {
  return {
    ...(o.generation ? { generation: o.generation } : {}),
    listeners: {
      smtp: { port: f.ports.smtp, host: "127.0.0.1" },
      smtps: { port: f.ports.smtps, host: "127.0.0.1" },
      submission: {
        port: f.ports.submission,
        host: "127.0.0.1",
        proxyProtocol: { enabled: true, trustedCidrs: ["127.0.0.1/32"] },
      },
    },
    inbound: {
      require: "none",
      relayFrom: ["127.0.0.1"],
      localDomains: ["local.test"],
      internalNextHop: { host: "127.0.0.1", port: sink.port },
      localRecipients: { addresses: ["bob@local.test", "alice@local.test"], files: [] },
      limits: { authMaxFailuresPerIp: 10, authMaxFailuresPerAccount: 5, maxConnectionsPerIp: 4 },
    },
    credentials: {
      // a partner's account: named on the partner's host rule
      "partner-in": {
        type: "password",
        usage: "inbound",
        username: "partner",
        passwordFile: "secrets/partner-in/password",
      },
      // a relay-wide account that may send anywhere, as our own users
      ...(o.withoutApp
        ? {}
        : {
            "app-in": {
              type: "password" as const,
              usage: "inbound" as const,
              username: "app",
              passwordFile: "secrets/app-in/password",
              allowRelay: o.app?.allowRelay ?? true,
              ...(o.app?.senderDomains ? { senderDomains: o.app.senderDomains } : {}),
            },
          }),
      // an account that may relay, whose password Secret is empty
      "empty-in": {
        type: "password",
        usage: "inbound",
        username: "empty",
        passwordFile: "secrets/empty-in/password",
        allowRelay: true,
      },
      "blank-in": {
        type: "password",
        usage: "inbound",
        username: "blank",
        passwordFile: "secrets/blank-in/password",
        allowRelay: true,
      },
      // a relay-wide account without relaying
      "other-in": {
        type: "password",
        usage: "inbound",
        username: "other",
        passwordFile: "secrets/other-in/password",
      },
    },
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
        inbound: { hosts: ["127.0.0.3/32"], require: "tls+auth", credentials: ["partner-in"] },
      },
    ],
    defaultOutbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: sink.port } },
  };
}

before(async () => {
  f = await relayFixture("relay-authority");
  sink = await startSink();
  front = await startFront(f.ports.submission);
  await f.configure(config(), { files: FILES });
  ({ relay } = await f.start());
});

after(async () => {
  await f?.stop(async () => {
    for (const s of front?.sockets ?? []) s.destroy();
    await new Promise((r) => front?.server.close(r));
    await sink?.close();
  });
});

async function loggedIn(from: string, user: string, pass: string): Promise<RawSession> {
  const s = await rawSession(f.ports.smtp, { localAddress: from });
  await s.cmd("EHLO client.test");
  await s.starttls();
  await s.cmd("EHLO client.test");
  const r = await s.cmd(`AUTH PLAIN ${plainToken(user, pass)}`);
  assert.match(r, /^235 /, `login as ${user} from ${from}`);
  return s;
}

/** A submission session through the PROXY front, as client `ip`, after STARTTLS. */
async function viaFront(ip: string): Promise<RawSession> {
  front.next.push(ip);
  const s = await rawSession(front.port);
  await s.cmd("EHLO client.test");
  await s.starttls();
  await s.cmd("EHLO client.test");
  return s;
}

describe("inbound authority (issue 15 finding 3)", () => {
  it("finding 3: a partner's credential is refused from a host outside the partner's host rule", async () => {
    const s = await rawSession(f.ports.smtp, { localAddress: STRANGER });
    await s.cmd("EHLO stolen.test");
    await s.starttls();
    await s.cmd("EHLO stolen.test");
    assert.equal(
      await s.cmd(`AUTH PLAIN ${plainToken("partner", "partner-pw")}`),
      "535 5.7.8 Authentication credentials invalid",
    );
    s.close();
  });

  it("finding 3: a logged-in partner may send to local domains only, not relay anywhere", async () => {
    const s = await loggedIn(PARTNER, "partner", "partner-pw");
    assert.match(await s.cmd("MAIL FROM:<a@partner.test>"), /^250 /);
    assert.equal(await s.cmd("RCPT TO:<victim@elsewhere.test>"), "550 5.7.1 Relaying denied");
    assert.equal(await s.cmd("RCPT TO:<someone@partner.test>"), "550 5.7.1 Relaying denied");
    assert.match(await s.cmd("RCPT TO:<bob@local.test>"), /^250 /);
    s.close();
  });

  it("finding 3: MAIL FROM must be one of the account's sender domains (553 5.7.1, as reject_sender_login_mismatch)", async () => {
    const s = await loggedIn(PARTNER, "partner", "partner-pw");
    assert.equal(
      await s.cmd("MAIL FROM:<ceo@local.test>"),
      "553 5.7.1 <ceo@local.test>: Sender address rejected: not owned by user partner",
    );
    assert.match(await s.cmd("MAIL FROM:<a@partner.test>"), /^250 /);
    s.close();
    // swaks, as a script kiddie with a stolen relay-wide password would use it
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "paypal@bank.example",
      to: "bob@local.test",
      tls: true,
      auth: { username: "other", password: "other-pw" },
      extraArgs: ["--local-interface", STRANGER],
      timeoutSeconds: 10,
    });
    assert.equal(r.replyTo("MAIL")?.code, 553, r.transcript);
    assert.equal(r.replyTo("MAIL")?.enhanced, "5.7.1");
  });

  it("attack: AUTH after MAIL FROM is refused (503 5.5.1, RFC 4954), so a forged sender cannot ride a later login", async () => {
    // a host that needs no login gives a sender no account owns, then logs in as an account that
    // may relay: the sender check ran at MAIL, before the login, and would never run again
    const s = await rawSession(f.ports.smtp, { localAddress: STRANGER });
    await s.cmd("EHLO forged.test");
    await s.starttls();
    await s.cmd("EHLO forged.test");
    assert.match(await s.cmd("MAIL FROM:<paypal@bank.example>"), /^250 /);
    assert.match(await s.cmd(`AUTH PLAIN ${plainToken("app", "app-pw")}`), /^503 5\.5\.1 /);
    assert.equal(await s.cmd("RCPT TO:<x@elsewhere.test>"), "550 5.7.1 Relaying denied");
    // after RSET the login is fine, and the sender is checked against the account
    assert.match(await s.cmd("RSET"), /^250 /);
    assert.match(await s.cmd(`AUTH PLAIN ${plainToken("app", "app-pw")}`), /^235 /);
    assert.match(await s.cmd("MAIL FROM:<paypal@bank.example>"), /^553 5\.7\.1 /);
    s.close();
  });

  it("attack: an account whose password Secret is empty logs nobody in, not even with an empty password", async () => {
    // the Secret's value is just a newline: its password read as "", which an empty AUTH PLAIN
    // password matched, and the account may relay (attack review, session 6)
    for (const [user, pass] of [
      ["empty", ""],
      ["empty", "\n"],
      ["empty", "x"],
      ["blank", " "],
      ["blank", " \r\n\r\n"],
      ["blank", ""],
    ]) {
      const s = await rawSession(f.ports.smtp, { localAddress: "127.0.0.14" });
      await s.cmd("EHLO attacker.test");
      await s.starttls();
      await s.cmd("EHLO attacker.test");
      assert.equal(
        await s.cmd(`AUTH PLAIN ${plainToken(user!, pass!)}`),
        "535 5.7.8 Authentication credentials invalid",
        JSON.stringify(pass),
      );
      assert.match(await s.cmd("MAIL FROM:<x@local.test>"), /^250 /);
      assert.equal(await s.cmd("RCPT TO:<victim@elsewhere.test>"), "550 5.7.1 Relaying denied");
      s.close();
    }
    assert.ok(
      f.logs!.find((l) => l.event === "credential-unusable" && l.credential === "empty-in"),
      "the empty password is logged",
    );
    assert.ok(f.logs!.find((l) => l.event === "credential-unusable" && l.credential === "blank-in"));
  });

  it("finding 3: only a credential that grants relaying may send anywhere", async () => {
    const other = await loggedIn(STRANGER, "other", "other-pw");
    assert.match(await other.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    assert.equal(await other.cmd("RCPT TO:<x@elsewhere.test>"), "550 5.7.1 Relaying denied");
    other.close();
    const app = await loggedIn(STRANGER, "app", "app-pw");
    assert.match(await app.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    assert.match(await app.cmd("RCPT TO:<x@elsewhere.test>"), /^250 /);
    app.close();
  });
});

describe("recipient validation and address tricks (issue 15 finding 7)", () => {
  it("finding 7: an unknown recipient of a local domain is refused at RCPT TO (550 5.1.1), so nothing bounces", async () => {
    const s = await rawSession(f.ports.smtp, { localAddress: STRANGER });
    await s.cmd("EHLO forged.test");
    assert.match(await s.cmd("MAIL FROM:<victim@forged.test>"), /^250 /);
    assert.equal(
      await s.cmd("RCPT TO:<nobody@local.test>"),
      "550 5.1.1 <nobody@local.test>: Recipient address rejected: User unknown in local recipient table",
    );
    assert.match(await s.cmd("RCPT TO:<Bob@local.test>"), /^250 /);
    s.close();
  });

  it("RFC 5321 4.5.1: postmaster is accepted at every local domain and without a domain, whatever the table", async () => {
    // the recipient table lists bob and alice only; a stranger reporting abuse must reach postmaster
    for (const [rcpt, tag, queued] of [
      ["Postmaster", "pm-bare", "postmaster@local.test"],
      // the local part as the sender spelt it (RFC 5321 2.4: the receiver's to interpret)
      ["POSTMASTER@local.test", "pm-local", "POSTMASTER@local.test"],
    ] as const) {
      const s = await rawSession(f.ports.smtp, { localAddress: STRANGER });
      await s.cmd("EHLO reporter.test");
      assert.match(await s.cmd("MAIL FROM:<abuse@reporter.test>"), /^250 /);
      assert.match(await s.cmd(`RCPT TO:<${rcpt}>`), /^250 /, rcpt);
      assert.match(await s.cmd("DATA"), /^354 /);
      assert.match(await s.data(`Subject: ${tag}\r\n\r\nhi`), /^250 /);
      s.close();
      const m = await waitFor(tag, () =>
        sink.messages.find((x) => x.data.toString().includes(`Subject: ${tag}`)),
      );
      assert.deepEqual(m.to, [queued]);
    }
    // only postmaster: another local part still needs the table, and a bare name is no local address
    const s = await rawSession(f.ports.smtp, { localAddress: STRANGER });
    await s.cmd("EHLO reporter.test");
    assert.match(await s.cmd("MAIL FROM:<abuse@reporter.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<postmasters@local.test>"), /^550 5\.1\.1 /);
    assert.match(await s.cmd("RCPT TO:<bob>"), /^5(01|53) /);
    assert.match(await s.cmd("RCPT TO:<postmaster@elsewhere.test>"), /^550 5\.7\.1 /);
    s.close();
  });

  it("finding 7: percent-hack and bang paths are refused (550 5.7.1) for a client that may not relay", async () => {
    const s = await rawSession(f.ports.smtp, { localAddress: STRANGER });
    await s.cmd("EHLO trick.test");
    assert.match(await s.cmd("MAIL FROM:<x@trick.test>"), /^250 /);
    for (const rcpt of ["victim%gmail.example@local.test", "gmail.example!victim@local.test"])
      assert.match(await s.cmd(`RCPT TO:<${rcpt}>`), /^550 5\.7\.1 /, rcpt);
    s.close();
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from: "x@trick.test",
      to: "victim%gmail.example@local.test",
      extraArgs: ["--local-interface", STRANGER],
      timeoutSeconds: 10,
    });
    assert.equal(r.replyTo("RCPT")?.code, 550, r.transcript);
    assert.equal(r.replyTo("RCPT")?.enhanced, "5.7.1");
  });
});

describe("throttling and revocation (issue 15 finding 8)", () => {
  it("finding 8: AUTH failures from one IPv6 /64 are counted together (a fresh /128 per guess does not help)", async () => {
    const replies: string[] = [];
    for (let i = 1; i <= 12; i++) {
      const s = await viaFront(`2001:db8:0:7::${i.toString(16)}`);
      replies.push(await s.cmd(`AUTH PLAIN ${plainToken(`guess${i}`, "nope")}`));
      s.close();
    }
    assert.deepEqual(replies.slice(0, 10), Array(10).fill("535 5.7.8 Authentication credentials invalid"));
    assert.match(replies[10]!, /^454 4\.7\.0 Too many failed authentication attempts/);
    assert.match(replies[11]!, /^454 4\.7\.0 /);
    // another /64 is not affected
    const s = await viaFront("2001:db8:0:8::1");
    assert.equal(await s.cmd(`AUTH PLAIN ${plainToken("app", "app-pw")}`).then((r) => r.slice(0, 3)), "235");
    s.close();
  });

  it("attack: IPv4 clients behind a dual-stack balancer (IPv4-mapped, hex spelling) are counted per IPv4 address, not as one /64", async () => {
    // a PROXY header (v2 carries 16 raw bytes, printed ::ffff:7f00:a) for IPv4 clients on a
    // dual-stack front: masked to /64, every IPv4 client on the Internet would share one counter
    const replies: string[] = [];
    for (let i = 1; i <= 11; i++) {
      const s = await viaFront("::ffff:7f00:a");
      replies.push(await s.cmd(`AUTH PLAIN ${plainToken(`guess${i}`, "nope")}`));
      s.close();
    }
    assert.match(replies[10]!, /^454 4\.7\.0 /, "the attacker itself is throttled");
    const s = await viaFront("::ffff:7f00:b");
    assert.equal(await s.cmd(`AUTH PLAIN ${plainToken("app", "app-pw")}`).then((r) => r.slice(0, 3)), "235");
    s.close();
  });

  it("attack: failures from a host that may not use a partner's credential do not lock the partner out", async () => {
    // the partner's account can never log in from here, whatever the password: guessing it from
    // here is no threat to the partner's count, only a way to trip the per-account limit (5) for it.
    // From here the name is counted as any made-up one is (locked after the limit, as a name that is
    // no account would be: attack-auth-lockout-enumeration), never against the partner's own hosts
    const s = await rawSession(f.ports.smtp, { localAddress: "127.0.0.4" });
    await s.cmd("EHLO grief.test");
    await s.starttls();
    await s.cmd("EHLO grief.test");
    // (the strangers' count of the name includes finding 3's attempt from another host)
    const replies: string[] = [];
    for (let i = 0; i < 6; i++)
      replies.push((await s.cmd(`AUTH PLAIN ${plainToken("partner", `guess${i}`)}`)).slice(0, 3));
    assert.ok(replies.every((r) => r === "535" || r === "454") && replies.at(-1) === "454", replies.join());
    s.close();
    const p = await loggedIn(PARTNER, "partner", "partner-pw");
    p.close();
  });

  it("finding 8: connections are limited per IPv6 /64", async () => {
    const open: RawSession[] = [];
    for (let i = 1; i <= 4; i++) {
      front.next.push(`2001:db8:0:9::${i}`);
      open.push(await rawSession(front.port));
    }
    front.next.push("2001:db8:0:9::99");
    const refused = await rawSession(front.port);
    assert.match(refused.greeting, /^421 4\.7\.0 Too many connections from your address/);
    refused.close();
    for (const s of open) s.close();
  });

  it("attack: a credential revoked between RCPT TO and DATA gets no message accepted (4.7.0, not relayed)", async () => {
    const s = await loggedIn(STRANGER, "app", "app-pw");
    assert.match(await s.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<x@elsewhere.test>"), /^250 /);
    await f.configure(config({ withoutApp: true }), { files: FILES });
    await relay.checkConfig();
    assert.equal(relay.status().lastReloadError, undefined);
    assert.match(await s.cmd("DATA"), /^354 /);
    assert.match(await s.data("Subject: after-revocation\r\n\r\nhi"), /^451 4\.7\.0 /);
    s.close();
    await f.configure(config(), { files: FILES });
    await relay.checkConfig();
    assert.equal(relay.status().lastReloadError, undefined);
    // nothing was queued: the next message (sent after) arrives alone
    const t = await loggedIn(STRANGER, "app", "app-pw");
    assert.match(await t.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    assert.match(await t.cmd("RCPT TO:<x@elsewhere.test>"), /^250 /);
    assert.match(await t.cmd("DATA"), /^354 /);
    assert.match(await t.data("Subject: marker-after-revocation\r\n\r\nhi"), /^250 /);
    t.close();
    await waitFor("the marker", () =>
      sink.messages.find((m) => m.data.toString().includes("Subject: marker-after-revocation")),
    );
    assert.equal(
      sink.messages.filter((m) => m.data.toString().includes("Subject: after-revocation")).length,
      0,
    );
  });

  /** Reloads the relay with `o` (the test's own config), checking the reload took. */
  async function reload(o: Parameters<typeof config>[0] = {}): Promise<void> {
    await f.configure(config(o), { files: FILES });
    await relay.checkConfig();
    assert.equal(relay.status().lastReloadError, undefined);
  }

  it("leftover c: sender domains narrowed by a reload between MAIL FROM and RCPT TO: RCPT TO is refused (553 5.7.1)", async () => {
    const s = await loggedIn(STRANGER, "app", "app-pw");
    assert.match(await s.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    await reload({ app: { senderDomains: ["other.test"] } });
    try {
      assert.match(
        await s.cmd("RCPT TO:<x@elsewhere.test>"),
        /^553 5\.7\.1 <me@local\.test>: Sender address rejected/,
      );
    } finally {
      s.close();
      await reload();
    }
  });

  it("leftover c: a transaction whose sender or relaying a reload withdrew before DATA gets 451 4.7.0, nothing queued", async () => {
    for (const [name, change] of [
      ["sender domains", { app: { senderDomains: ["other.test"] } }],
      ["relaying", { app: { allowRelay: false } }],
    ] as [string, Parameters<typeof config>[0]][]) {
      const s = await loggedIn(STRANGER, "app", "app-pw");
      assert.match(await s.cmd("MAIL FROM:<me@local.test>"), /^250 /);
      assert.match(await s.cmd("RCPT TO:<x@elsewhere.test>"), /^250 /);
      await reload(change);
      assert.match(await s.cmd("DATA"), /^354 /);
      assert.match(await s.data(`Subject: withdrawn-${name}\r\n\r\nhi`), /^451 4\.7\.0 /, name);
      s.close();
      await reload();
    }
    // nothing was queued: the marker sent after arrives, the withdrawn ones never
    const t = await loggedIn(STRANGER, "app", "app-pw");
    assert.match(await t.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    assert.match(await t.cmd("RCPT TO:<x@elsewhere.test>"), /^250 /);
    assert.match(await t.cmd("DATA"), /^354 /);
    assert.match(await t.data("Subject: marker-after-withdrawal\r\n\r\nhi"), /^250 /);
    t.close();
    await waitFor("the marker", () =>
      sink.messages.find((m) => m.data.toString().includes("Subject: marker-after-withdrawal")),
    );
    assert.equal(sink.messages.filter((m) => m.data.toString().includes("Subject: withdrawn-")).length, 0);
  });

  it("finding 8: a revoked credential stops working in an open session from its next transaction", async () => {
    const s = await loggedIn(STRANGER, "app", "app-pw");
    assert.match(await s.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<x@elsewhere.test>"), /^250 /);
    assert.match(await s.cmd("DATA"), /^354 /);
    assert.match(await s.data("Subject: before\r\n\r\nhi"), /^250 2\.0\.0 /);
    await f.configure(config({ withoutApp: true }), { files: FILES });
    await relay.checkConfig();
    assert.equal(relay.status().lastReloadError, undefined);
    assert.match(await s.cmd("MAIL FROM:<me@local.test>"), /^530 5\.7\.0 Authentication required/);
    // logged out: as an unauthenticated stranger it may not relay
    assert.match(await s.cmd("MAIL FROM:<me@local.test>"), /^250 /);
    assert.equal(await s.cmd("RCPT TO:<x@elsewhere.test>"), "550 5.7.1 Relaying denied");
    s.close();
    await waitFor("the message sent before the revocation", () =>
      sink.messages.find((m) => m.data.toString().includes("Subject: before")),
    );
  });
});
