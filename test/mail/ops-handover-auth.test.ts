// Issue 15.2, from the attacker's side of the wire: the queue handover (relay/queue/handover.ts)
// authenticates with the fleet's own key, never with relayFrom. Relay B (the handover target) has an
// empty relayFrom; relay A drains into B; relay C presents another certificate.
// - an outside client forging the handover header (even with a valid MAC) is refused, and so is the
//   legacy X-Sealpost-Queued-At header;
// - a fleet session replaying a MAC onto another body or another recipient is refused;
// - a fleet session without a handover header is refused; a wrong fleet password gets 535;
// - the header never reaches the next hop; a target without the fleet's certificate gets nothing,
//   not even the credential.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fleetPassword, handoverHeader, messageDigest } from "../../relay/queue/handover.js";
import { readSpool } from "../../relay/queue/spool.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RawSession, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const KEY = "fleet-key-0123456789abcdef0123456789";
const TOKEN = "admin-token-0123456789";

let a: RelayFixture;
let b: RelayFixture;
let c: RelayFixture;
let sink: Sink;
let heldPort: number;

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString("base64");

async function configure(
  f: RelayFixture,
  o: { relayFrom: string[]; handover?: number; cert?: RelayFixture },
): Promise<void> {
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      fleet: { keyFile: "secrets/fleet/key" },
      inbound: { require: "none", relayFrom: o.relayFrom, localDomains: ["local.test"] },
      policies: [
        {
          name: "mail/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: sink.host, port: sink.port } },
        },
        {
          // a next hop that refuses connections: its messages stay queued, to be looked at
          name: "mail/held",
          domains: ["held.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: "127.0.0.1", port: heldPort } },
        },
      ],
      queue: {
        dir: `${f.work}/queue`,
        retry: { initial: 0.3, max: 1 },
        workers: 2,
        ...(o.handover ? { handover: { host: "127.0.0.1", port: o.handover } } : {}),
      },
    },
    {
      files: { "secrets/fleet/key": `${KEY}\n`, "secrets/admin/token": `${TOKEN}\n` },
      ...(o.cert ? { cert: o.cert.relayCert } : {}),
    },
  );
}

/** A fleet session to B: STARTTLS, AUTH PLAIN with the fleet credential (or `pass`). */
async function fleetSession(pass = fleetPassword(KEY)): Promise<{ s: RawSession; auth: string }> {
  const s = await rawSession(b.ports.smtp);
  await s.cmd("EHLO peer.internal");
  await s.starttls();
  await s.cmd("EHLO peer.internal");
  return { s, auth: await s.cmd(`AUTH PLAIN ${plain("sealpost-fleet", pass)}`) };
}

/** A message with a handover header MAC'd for (`macFrom`, `macTo`, `macBody`), sent with `body`. */
function handedOver(o: {
  id: string;
  to: string;
  body: string;
  macBody?: string;
  macTo?: string;
  from?: string;
  trust?: { signable?: boolean; tlsRequiredNoTrusted?: boolean };
}): string {
  const message = `Subject: ${o.id}\r\nX-Test-Id: ${o.id}\r\n\r\n${o.macBody ?? o.body}\r\n`;
  const header = handoverHeader(KEY, {
    id: `q${o.id}`,
    queuedAt: Date.now() - 60_000,
    from: o.from ?? "app@client.test",
    to: [o.macTo ?? o.to],
    requireTls: false,
    digest: messageDigest(Buffer.from(message)),
    ...o.trust,
  });
  return `${header}Subject: ${o.id}\r\nX-Test-Id: ${o.id}\r\n\r\n${o.body}\r\n`;
}

async function send(s: RawSession, to: string, data: string, from = "app@client.test"): Promise<string> {
  assert.match(await s.cmd(`MAIL FROM:<${from}>`), /^250 /);
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250 /);
  assert.match(await s.cmd("DATA"), /^354 /);
  return s.data(data);
}

before(async () => {
  sink = await startSink();
  heldPort = await freePort(); // nothing listens there
  a = await relayFixture("handover-a");
  b = await relayFixture("handover-b");
  c = await relayFixture("handover-c");
  await configure(b, { relayFrom: [], cert: a }); // the fleet: B serves A's certificate
  await configure(c, { relayFrom: [] }); // an impostor with its own certificate
  await b.start();
  await c.start();
});

after(async () => {
  await a?.stop();
  await c?.stop();
  await b?.stop(() => sink?.close());
});

describe("issue 15.2: the handover authenticates, never relayFrom", () => {
  it("an outside client forging the handover header is refused, even with a valid MAC", async () => {
    const s = await rawSession(b.ports.smtp);
    await s.cmd("EHLO outside.example");
    assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250 /);
    assert.match(await s.cmd("RCPT TO:<u@partner.test>"), /^550 /, "B has no relayFrom: no relaying");
    assert.match(await s.cmd("RSET"), /^250 /);
    // to a local domain (accepted from anyone) a forged header is refused at DATA
    assert.match(
      await send(s, "u@local.test", handedOver({ id: "forged", to: "u@local.test", body: "x" })),
      /^550 5\.7\.1 handover header from outside the fleet/,
    );
    assert.match(
      await send(
        s,
        "u@local.test",
        `X-Sealpost-Queued-At: 2001-01-01T00:00:00Z; mac=${"A".repeat(43)}\r\nSubject: legacy\r\n\r\nx\r\n`,
      ),
      /^550 5\.7\.1 /,
      "the legacy header too",
    );
    s.close();
  });

  it("the fleet credential needs the fleet key (535 otherwise) and is offered only inside TLS", async () => {
    const { s, auth } = await fleetSession(fleetPassword("another-key"));
    assert.match(auth, /^535 /);
    s.close();
    const clear = await rawSession(b.ports.smtp);
    await clear.cmd("EHLO peer.internal");
    assert.match(await clear.cmd(`AUTH PLAIN ${plain("sealpost-fleet", fleetPassword(KEY))}`), /^5\d\d /);
    clear.close();
  });

  it("a replayed MAC on another body, or onto another recipient, is refused", async () => {
    const { s, auth } = await fleetSession();
    assert.match(auth, /^235 /);
    assert.match(
      await send(
        s,
        "u@partner.test",
        handedOver({ id: "r1", to: "u@partner.test", body: "evil", macBody: "good" }),
      ),
      /^550 5\.7\.1 handover MAC does not verify/,
    );
    assert.match(
      await send(
        s,
        "v@partner.test",
        handedOver({ id: "r2", to: "v@partner.test", macTo: "u@partner.test", body: "b" }),
      ),
      /^550 5\.7\.1 handover MAC does not verify/,
    );
    s.close();
  });

  it("a fleet session must carry a handover header", async () => {
    const { s } = await fleetSession();
    assert.match(
      await send(s, "u@partner.test", "Subject: plain\r\n\r\nx\r\n"),
      /^550 5\.7\.1 a fleet session must carry exactly one handover header/,
    );
    s.close();
  });

  it("a valid handover relays without relayFrom, keeps the queue time, and the header never reaches the next hop", async () => {
    const { s } = await fleetSession();
    assert.match(
      await send(s, "u@partner.test", handedOver({ id: "ok", to: "u@partner.test", body: "fine" })),
      /^250 /,
    );
    s.close();
    const m = await waitFor("delivered to the next hop", () =>
      sink.messages.find((x) => x.data.toString("latin1").includes("X-Test-Id: ok")),
    );
    assert.doesNotMatch(m.data.toString("latin1"), /X-Sealpost-Handover/i);
    assert.ok(
      b.logs!.find((l) => l.event === "queued-at"),
      "B kept the original queue time",
    );
  });

  it("attack: trust is not laundered through the handover (an outsider's message stays unsigned, its TLS-Required: No unhonoured)", async () => {
    // what A hands over for an outside sender's message, MAIL FROM spoofing a local
    // sender and asking for TLS-Required: No: on A it was neither signable nor trusted; the fleet
    // session that carries it to B must not make it so (only what A's MAC vouches for counts)
    const { s } = await fleetSession();
    const outsider = handedOver({
      id: "launder",
      to: "u@held.test",
      from: "ceo@local.test",
      body: "wire the money",
    });
    assert.match(await send(s, "u@held.test", outsider, "ceo@local.test"), /^250 /);
    // and a message A trusted says so under the MAC, so the trust survives the handover
    const trusted = handedOver({
      id: "trusted",
      to: "u@held.test",
      from: "ceo@local.test",
      body: "fine",
      trust: { signable: true, tlsRequiredNoTrusted: true },
    });
    assert.match(await send(s, "u@held.test", trusted, "ceo@local.test"), /^250 /);
    s.close();
    const spool = await waitFor("both queued on B", async () => {
      const live = await readSpool(join(b.work, "queue"));
      const byTag = new Map<string, (typeof live)[number]["env"]>();
      for (const m of live) {
        const tag = /X-Test-Id: (\S+)/.exec((await m.message()).toString("latin1"))?.[1];
        if (tag) byTag.set(tag, m.env);
      }
      return byTag.has("launder") && byTag.has("trusted") ? byTag : undefined;
    });
    const laundered = spool.get("launder")!;
    assert.equal(laundered.signable, undefined, "an outsider's message is never signable on B");
    assert.equal(laundered.tlsRequiredNoTrusted, undefined, "nor is its TLS-Required: No trusted");
    const kept = spool.get("trusted")!;
    assert.equal(kept.signable, true);
    assert.equal(kept.tlsRequiredNoTrusted, true);
  });

  it("the drain hands over only to a relay presenting the fleet's certificate, never sending the credential elsewhere", async () => {
    sink.setDown(true);
    await configure(a, { relayFrom: ["127.0.0.1"], handover: c.ports.smtp });
    await a.start();
    const s = await rawSession(a.ports.smtp);
    await s.cmd("EHLO app.internal");
    assert.match(
      await send(s, "w@partner.test", "Subject: drained\r\nX-Test-Id: drained\r\n\r\nx\r\n"),
      /^250 /,
    );
    s.close();
    await waitFor("queued on A", async () => {
      const st = (await (await fetch(`http://127.0.0.1:${a.ports.admin}/status`)).json()) as {
        queue: { depth: number };
      };
      return st.queue.depth === 1 ? true : undefined;
    });
    // the drain keeps trying until its deadline: it is enough that it tried and refused C
    const r = await fetch(`http://127.0.0.1:${a.ports.admin}/queue/drain`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.ok(r.status < 300, String(r.status));
    await waitFor("A refused C's certificate", () =>
      a.logs!.find((l) => typeof l.err === "string" && /fleet's server certificate/.test(l.err)),
    );
    await waitFor("C logged A's session", () => c.logs!.find((l) => l.event === "session"));
    assert.equal(
      c.logs!.find(
        (l) => l.event === "session" && Boolean((l.auth as { mechanism?: string } | null)?.mechanism),
      ),
      undefined,
      "C never saw an AUTH attempt",
    );
    const st = (await (await fetch(`http://127.0.0.1:${a.ports.admin}/status`)).json()) as {
      queue: { depth: number };
    };
    assert.equal(st.queue.depth, 1, "the message stays on A");
  });
});
