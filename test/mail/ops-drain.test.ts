// Scale-down drain (relay/queue/drain.ts): relay A holds 500 messages while its next hop (a sink) is
// down; relay B, the handover target, shares A's next hop, A's server certificate and the fleet key
// (the operator's `<relay>-fleet` Secret), and has no relayFrom at all (issue 15.2: the handover
// authenticates as the fleet). POST /queue/drain on A: A stops accepting (readiness false), hands
// every message over to B by SMTP with its envelope (MAIL FROM incl. the null sender, every pending
// RCPT) and a MAC'd X-Sealpost-Handover header, and empties its spool only after B's 250s. B keeps
// the original queue time (its spool envelope's receivedAt, the maxAge clock) and removes the header;
// a forged header from a client is refused. Then the sink comes up and every message arrives, each
// exactly once, without the header.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { handoverHeader, handoverVerdict, messageDigest } from "../../relay/queue/handover.js";
import type { Envelope } from "../../relay/queue/envelope.js";
import { readSpool } from "../../relay/queue/spool.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "fleet-admin-token-0123456789";
const FLEET_KEY = "fleet-key-0123456789abcdef";
const N = 500;

let a: RelayFixture;
let b: RelayFixture;
let sink: Sink;

/** id -> the envelope A was given. */
const sent = new Map<string, { from: string; to: string[] }>();

const auth = { authorization: `Bearer ${TOKEN}` };
const api = (f: RelayFixture, path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`http://127.0.0.1:${f.ports.admin}${path}`, init);
const testId = (data: Buffer): string | undefined =>
  /^X-Test-Id: (\S+)\r?$/m.exec(data.toString("latin1"))?.[1];

/** The live messages of a relay's spool (journal and files), read from its queue folder. */
async function spoolOf(f: RelayFixture): Promise<{ env: Envelope; data: Buffer }[]> {
  const live = await readSpool(join(f.work, "queue"));
  return Promise.all(live.map(async (m) => ({ env: m.env, data: await m.message() })));
}

async function configure(f: RelayFixture, handover?: { host: string; port: number }): Promise<void> {
  await f.configure(
    {
      relay: "mail/edge",
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      fleet: { keyFile: "secrets/fleet/key" },
      // the target relays for nobody by address: only the fleet credential lets A hand over
      inbound: { require: "none", relayFrom: handover ? ["127.0.0.1"] : [], localDomains: ["local.test"] },
      policies: [
        {
          name: "mail/partner",
          domains: ["partner.test"],
          outbound: { tls: { mode: "opportunistic" }, nextHop: { host: sink.host, port: sink.port } },
        },
      ],
      queue: {
        dir: join(f.work, "queue"),
        maxAge: 7200,
        retry: { initial: 0.5, max: 2 },
        workers: 4,
        ...(handover ? { handover } : {}),
      },
    },
    {
      files: { "secrets/admin/token": `${TOKEN}\n`, "secrets/fleet/key": `${FLEET_KEY}\n` },
      // one Certificate for the fleet: the drain hands over only to a relay presenting it
      ...(f === b ? { cert: a.relayCert } : {}),
    },
  );
}

before(async () => {
  sink = await startSink();
  sink.setDown(true);
  a = await relayFixture("ops-drain-a");
  b = await relayFixture("ops-drain-b");
  await configure(b);
  await b.start();
  await configure(a, { host: "127.0.0.1", port: b.ports.smtp });
  await a.start();
});

after(async () => {
  await a?.stop();
  await b?.stop(() => sink?.close());
});

describe("scale-down drain with handover", () => {
  it("queues 500 messages on A while the next hop is down", async () => {
    const s = await rawSession(a.ports.smtp);
    await s.cmd("EHLO app.internal");
    for (let i = 0; i < N; i++) {
      const id = `m${i}`;
      // every 50th: the null sender; every 7th: two recipients
      const from = i % 50 === 0 ? "" : `app${i % 5}@client.test`;
      const to = i % 7 === 0 ? [`u${i}@partner.test`, `v${i}@partner.test`] : [`u${i}@partner.test`];
      assert.match(await s.cmd(`MAIL FROM:<${from}>`), /^250 /);
      for (const r of to) assert.match(await s.cmd(`RCPT TO:<${r}>`), /^250 /);
      assert.match(await s.cmd("DATA"), /^354 /);
      assert.match(
        await s.data(`Subject: drain ${id}\r\nX-Test-Id: ${id}\r\n\r\nbody of ${id}\r\n`),
        /^250 /,
      );
      sent.set(id, { from, to });
    }
    await s.cmd("QUIT");
    s.close();
    // the last message joins the scheduler a moment after its 250 (its queue time is read first)
    await waitFor("all queued on A", async () => {
      const st = (await (await api(a, "/status")).json()) as { queue: { depth: number } };
      return st.queue.depth === N ? true : undefined;
    });
    await waitFor("deferrals on A", async () => {
      const x = (await (await api(a, "/status", { headers: auth })).json()) as {
        policies: Record<string, { deferrals: number }>;
      };
      return (x.policies["mail/partner"]?.deferrals ?? 0) > 0 ? true : undefined;
    });
    assert.equal(sink.messages.length, 0);
  });

  it("POST /queue/drain needs the token", async () => {
    assert.equal((await api(a, "/queue/drain", { method: "POST" })).status, 401);
    assert.equal((await api(a, "/status")).status, 200);
    assert.equal((await api(a, "/readyz")).status, 200, "no drain started by the refused request");
  });

  let queuedAtA: Map<string, number>;
  let drainStarted: number;

  it("drains A: stops accepting, hands everything over to B, A's queue goes to 0", async () => {
    queuedAtA = new Map((await spoolOf(a)).map((m) => [testId(m.data)!, m.env.receivedAt]));
    assert.equal(queuedAtA.size, N);
    drainStarted = Date.now();
    const r = await api(a, "/queue/drain?wait=true", { method: "POST", headers: auth });
    const body = (await r.json()) as { state: string; remaining: number; handedOver: number; mode: string };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.deepEqual(
      { state: body.state, remaining: body.remaining, handedOver: body.handedOver, mode: body.mode },
      { state: "drained", remaining: 0, handedOver: N, mode: "handover" },
    );
    const st = (await (await api(a, "/status", { headers: auth })).json()) as {
      draining?: boolean;
      queue: { depth: number };
      drain: { state: string; remaining: number };
    };
    assert.equal(st.draining, true);
    assert.equal(st.queue.depth, 0);
    assert.equal(st.drain.state, "drained");
    assert.equal((await api(a, "/readyz")).status, 503, "readiness false while draining");
    assert.equal((await spoolOf(a)).length, 0, "A's spool is empty");
    await assert.rejects(rawSession(a.ports.smtp), "A's listener is closed");
  });

  it("B holds every message with its envelope and the original queue time", async () => {
    // B adopts a message's queue time just after its 250 (relay.ts queued(), asynchronously): the
    // last ones handed over may still be on their way; the assertions below say what is wrong if not
    const adopted = (h: { env: Envelope; data: Buffer }[]): boolean =>
      h.length === N && h.every(({ env, data }) => env.receivedAt === queuedAtA.get(testId(data)!));
    const held = await waitFor("B's spool with every message at A's queue time", async () => {
      const h = await spoolOf(b);
      return adopted(h) ? h : undefined;
    }).catch(() => spoolOf(b));
    assert.equal(held.length, N);
    const ids = new Set<string>();
    for (const { env, data } of held) {
      const id = testId(data)!;
      ids.add(id);
      const orig = sent.get(id)!;
      assert.equal(env.from, orig.from, `${id}: MAIL FROM`);
      assert.deepEqual(
        env.recipients.map((r) => r.address),
        orig.to,
        `${id}: RCPT TO`,
      );
      assert.equal(env.receivedAt, queuedAtA.get(id), `${id}: B's maxAge clock runs from A's queue time`);
      assert.ok(env.receivedAt < drainStarted);
    }
    assert.equal(ids.size, N);
    assert.ok(
      b.logs!.find((l) => l.event === "queued-at"),
      "B logged that it kept the original queue time",
    );
  });

  it("B removed the handover header from every message it queued", async () => {
    for (const { data } of await spoolOf(b))
      assert.doesNotMatch(data.toString("latin1"), /X-Sealpost-(Handover|Queued-At)/i);
  });

  it("B refuses a handover header from a client that is not the fleet (issue 15.2; was: ignored)", async () => {
    const body = "Subject: forged\r\nX-Test-Id: forged\r\n\r\nx\r\n";
    const forged = handoverHeader("not-the-key", {
      id: "q1",
      queuedAt: Date.parse("2001-01-01T00:00:00Z"),
      from: "x@client.test",
      to: ["forged@local.test"],
      requireTls: false,
      digest: messageDigest(Buffer.from(body)),
    });
    const s = await rawSession(b.ports.smtp);
    await s.cmd("EHLO app.internal");
    await s.cmd("MAIL FROM:<x@client.test>");
    assert.match(await s.cmd("RCPT TO:<forged@partner.test>"), /^550 /, "no relayFrom on B");
    assert.match(await s.cmd("RCPT TO:<forged@local.test>"), /^250 /);
    await s.cmd("DATA");
    assert.match(await s.data(`${forged}${body}`), /^550 5\.7\.1 /);
    s.close();
    assert.equal(
      (await spoolOf(b)).find((x) => testId(x.data) === "forged"),
      undefined,
    );
  });

  it("after the sink comes up, every message arrives exactly once", async () => {
    sink.setDown(false);
    await b.relay!.checkConfig();
    const r = await api(b, "/queue/retry", { method: "POST", headers: auth });
    assert.equal(r.status, 200);
    await waitFor(
      "all messages at the sink",
      () => {
        const got = new Set(sink.messages.map((m) => testId(m.data)));
        return Promise.resolve(got.size >= sent.size ? true : undefined);
      },
      120_000,
      200,
    );
    await waitFor("B's queue empty", async () => {
      const x = (await (await api(b, "/status")).json()) as { queue: { depth: number } };
      return x.queue.depth === 0 ? true : undefined;
    });
    const byId = new Map<string, number>();
    for (const m of sink.messages) {
      const id = testId(m.data)!;
      assert.doesNotMatch(m.data.toString("latin1"), /X-Sealpost-Handover/i, `${id}: header left the fleet`);
      byId.set(id, (byId.get(id) ?? 0) + 1);
      const orig = sent.get(id)!;
      assert.equal(m.from, orig.from, `${id}: MAIL FROM at the sink`);
      assert.deepEqual([...m.to].sort(), [...orig.to].sort(), `${id}: RCPT TO at the sink`);
    }
    assert.equal(byId.size, sent.size, "none lost");
    const dup = [...byId].filter(([, n]) => n > 1);
    assert.deepEqual(dup, [], "none twice");
    assert.equal(sink.messages.length, sent.size);
  });
});

describe("handover header (relay/queue/handover.ts)", () => {
  const body = Buffer.from("Subject: s\r\n\r\nbody\r\n");
  const t = Date.parse("2030-05-06T07:08:09.123Z");
  const env = { id: "q1", queuedAt: t, from: "a@b.test", to: ["x@p.test"], requireTls: false };
  const found = (k = "k", e = env, digest = messageDigest(body)) => {
    const line = handoverHeader(k, { ...e, digest }).replace(/\r\n$/, "");
    return [{ name: "X-Sealpost-Handover", value: line.slice(line.indexOf(":") + 1).trim() }];
  };
  const verdict = (o: Partial<Parameters<typeof handoverVerdict>[0]>) =>
    handoverVerdict({
      fleetSession: true,
      key: "k",
      found: found(),
      from: env.from,
      to: env.to,
      requireTls: false,
      digest: messageDigest(body),
      now: t + 1,
      ...o,
    });

  it("verifies for its envelope, message and key only", () => {
    assert.deepEqual(verdict({}), { ok: true, queuedAt: t });
    assert.equal(verdict({ from: "other@b.test" }).ok, false, "another sender");
    assert.equal(verdict({ to: ["y@p.test"] }).ok, false, "another recipient");
    assert.equal(verdict({ to: ["x@p.test", "y@p.test"] }).ok, false, "a recipient added");
    assert.equal(verdict({ requireTls: true }).ok, false, "REQUIRETLS flipped");
    assert.equal(verdict({ digest: messageDigest(Buffer.from("other")) }).ok, false, "another body");
    assert.equal(verdict({ key: "k2" }).ok, false, "another key");
    // a queue time ahead of the receiver's clock (another node's): taken as queued now
    // (test/unit/attack-handover-clock-skew.test.ts)
    assert.deepEqual(verdict({ now: t - 1 }), { ok: true, queuedAt: t - 1 }, "ahead of this clock");
    assert.equal(verdict({ fleetSession: false }).ok, false, "not from the fleet");
    assert.equal(verdict({ found: [] }).ok, false, "a fleet session without the header");
    assert.deepEqual(verdict({ fleetSession: false, found: [] }), { ok: true }, "ordinary mail");
  });
});
