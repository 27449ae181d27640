// Queue tools at postqueue/postsuper parity (issue 17), through the real CLI (`sealpost queue`, a
// child process) against a running relay: show with the header section (the body on request), hold
// by id and by reason, held mail not delivered across a restart of the relay and delivered once
// released, release by domain, requeue, flush per domain, delete without a bounce, bounce by age and
// domain, and selections that are refused (none, a bad age).
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sealpost, type CliResult } from "../support/cli.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";

const TOKEN = "queue-tools-token";

let f: RelayFixture;
let partner: Sink; // a.test: refuses (421) until it is switched up
let tokenFile: string;

interface View {
  id: string;
  attempts: number;
  inFlight: boolean;
  held?: boolean;
  recipients: { address: string; code?: string }[];
}

function cli(...args: string[]): Promise<CliResult> {
  const admin = ["--admin", `http://127.0.0.1:${f.ports.admin}`, "--token-file", tokenFile];
  return sealpost(["queue", ...args, ...admin], { SEALPOST_ADMIN_TOKEN: "" });
}

async function api(path: string, method = "GET"): Promise<Response> {
  return fetch(`http://127.0.0.1:${f.ports.admin}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
}

async function view(id: string): Promise<View | undefined> {
  const r = await api(`/queue/${id}`);
  return r.status === 200 ? ((await r.json()) as View) : undefined;
}

/** Resolves once message `id` has had `n` attempts and none is running. */
async function attempts(id: string, n: number): Promise<void> {
  await waitFor(`${n} attempt(s) of ${id}`, async () => {
    const v = await view(id);
    assert.ok(v, `${id} left the queue`);
    return v.attempts >= n && !v.inFlight ? true : undefined;
  });
}

async function send(to: string, tag: string): Promise<string> {
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO app.internal");
  assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250 /);
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250 /);
  await s.cmd("DATA");
  const reply = await s.data(`Subject: ${tag}\r\nX-Test-Id: ${tag}\r\n\r\nbody of ${tag}\r\nsecond line`);
  s.close();
  const id = /queued as ([0-9A-F]+)/.exec(reply)?.[1];
  assert.ok(id, reply);
  return id;
}

before(async () => {
  f = await relayFixture("ops-queue-tools");
  partner = await startSink();
  partner.setDown(true);
  const closed = await freePort(); // b.test: nothing listens there
  tokenFile = join(f.work, "token");
  await writeFile(tokenFile, TOKEN);
  await f.configure(
    {
      admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
      // retries an hour away: only the queue commands bring another attempt during the test
      queue: { dir: join(f.work, "queue"), maxAge: 7200, retry: { initial: 3600, max: 3600 }, workers: 8 },
      policies: [
        {
          name: "mail/a",
          domains: ["a.test"],
          outbound: { tls: { mode: "none" }, nextHop: { host: partner.host, port: partner.port } },
        },
        {
          name: "mail/b",
          domains: ["b.test"],
          outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: closed } },
        },
      ],
    },
    { files: { "secrets/admin/token": `${TOKEN}\n` } },
  );
  await f.start();
});

after(async () => {
  await f?.stop(() => partner?.close());
});

describe("sealpost queue tools", () => {
  let m1: string; // a.test, held by id
  let m2: string; // a.test, not held
  let m3: string; // b.test, held by reason

  it("show: envelope and header section; the body only with --body", async () => {
    m1 = await send("x@a.test", "qt-m1");
    m2 = await send("y@a.test", "qt-m2");
    m3 = await send("z@b.test", "qt-m3");
    for (const id of [m1, m2, m3]) await attempts(id, 1);
    const show = await cli("show", m1);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^headers:$/m);
    assert.match(show.stdout, /^ {2}Subject: qt-m1$/m);
    assert.match(show.stdout, /^ {2}X-Test-Id: qt-m1$/m);
    assert.match(show.stdout, /^ {2}Received: from /m, "the relay's own trace header is there");
    assert.doesNotMatch(show.stdout, /body of qt-m1/);
    const body = await cli("show", m1, "--body");
    assert.equal(body.code, 0, body.stderr);
    assert.match(body.stdout, /^body:\n {2}body of qt-m1\n {2}second line$/m);
  });

  it("hold by id and by reason (bulk): listed with '!', the others untouched", async () => {
    const one = await cli("hold", m1);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, `${m1} on hold\n`);
    const bulk = await cli("hold", "--reason", "CONNECT_FAILED");
    assert.equal(bulk.code, 0, bulk.stderr);
    assert.equal(bulk.stdout, `${m3} on hold\nhold: 1 message(s)\n`);
    const list = await cli("list");
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${m1}! `, "m"));
    assert.match(list.stdout, new RegExp(`^${m3}! `, "m"));
    assert.match(list.stdout, new RegExp(`^${m2} `, "m"));
    assert.equal((await view(m2))?.held, undefined);
  });

  it("held mail survives a restart and is not delivered; released, it is", async () => {
    await f.relay!.stop();
    partner.setDown(false);
    await f.start();
    // recovered messages keep their next attempt (an hour away): retry everything now; the one not
    // held goes out...
    const all = await cli("retry", "--all");
    assert.equal(all.code, 0, all.stderr);
    await waitFor("m2 delivered", () => partner.messages.find((m) => m.to.includes("y@a.test")), 20_000);
    // ...the held one to the same partner is not even attempted
    const held = await view(m1);
    assert.equal(held?.held, true);
    assert.equal(held.attempts, 1);
    assert.equal(partner.messages.filter((m) => m.to.includes("x@a.test")).length, 0);
    assert.equal((await view(m3))?.held, true);
    const r = await cli("release", m1);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${m1} released, due now\n`);
    await waitFor("m1 delivered", () => partner.messages.find((m) => m.to.includes("x@a.test")), 20_000);
  });

  it("release by domain, requeue (fresh backoff), flush per domain", async () => {
    const rel = await cli("release", "--domain", "b.test");
    assert.equal(rel.code, 0, rel.stderr);
    assert.equal(rel.stdout, `${m3} released, due now\nrelease: 1 message(s)\n`);
    await attempts(m3, 2);
    const rq = await cli("requeue", m3);
    assert.equal(rq.code, 0, rq.stderr);
    await waitFor("requeued and attempted once more", async () => {
      const v = await view(m3);
      return v && !v.inFlight && v.attempts === 1 ? true : undefined;
    });
    const fl = await cli("flush", "--domain", "b.test");
    assert.equal(fl.code, 0, fl.stderr);
    assert.equal(fl.stdout, `retrying ${m3} now\nretry: 1 message(s)\n`);
    await attempts(m3, 2);
    const none = await cli("flush", "--domain", "nowhere.test");
    assert.equal(none.stdout, "retry: 0 message(s)\n");
  });

  it("delete: gone without a bounce to the sender", async () => {
    const r = await cli("delete", m3);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${m3} deleted, no bounce to the sender\n`);
    assert.equal(await view(m3), undefined);
    assert.equal(
      f.logs!.find((l) => l.event === "dsn" && l.queueId === m3),
      undefined,
      "no DSN queued",
    );
    assert.ok(f.logs!.find((l) => l.event === "queue-done" && l.queueId === m3 && l.deleted === true));
  });

  it("bounce by age and domain: a DSN to the sender; a selection that matches nothing does nothing", async () => {
    const m4 = await send("w@b.test", "qt-m4");
    await attempts(m4, 1);
    const young = await cli("bounce", "--older-than", "1d", "--domain", "b.test");
    assert.equal(young.stdout, "bounce: 0 message(s)\n");
    assert.ok(await view(m4));
    const r = await cli("bounce", "--older-than", "0s", "--domain", "b.test");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^${m4} removed from the queue; its sender gets a delivery failure notice\n`),
    );
    await waitFor("DSN", () => f.logs!.find((l) => l.event === "dsn" && l.queueId === m4));
  });

  it("refused: no ids and no selection, a bad age, ids and a selection; the API without a selection", async () => {
    const none = await cli("delete");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /a message id is required/);
    const bad = await cli("delete", "--older-than", "5x");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--older-than "5x" is not an age such as 90s, 30m, 2h or 3d/);
    const both = await cli("hold", "0123456789ABCDEF", "--domain", "a.test");
    assert.equal(both.code, 2);
    assert.match(both.stderr, /ids or a selection, not both/);
    const r = await api("/queue/delete", "POST");
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: string }).error, /needs a selection/);
  });
});
