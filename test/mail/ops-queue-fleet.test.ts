// The fleet-wide queue view (issue 17): `sealpost queue list` over several relays at once (the real
// CLI against two running relays on loopback, as --fleet does over a MailRelay's pods), one table
// with a POD column, oldest first; a pod that does not answer is named with the URL tried (exit 1)
// while the others are still listed. Discovery of a MailRelay's pods (pure part) and the merge.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fleetSelector, fleetTargets, mergeListings } from "../../relay/queue/fleet.js";
import type { MessageView } from "../../relay/queue/admin-api.js";
import { sealpost, type CliResult } from "../support/cli.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { rawSession, relayFixture, type RelayFixture } from "../support/relay.js";

const TOKEN = "fleet-token";

let relays: RelayFixture[] = [];
let tokenFile: string;
let dead: number;

function cli(...args: string[]): Promise<CliResult> {
  return sealpost(["queue", ...args, "--token-file", tokenFile], { SEALPOST_ADMIN_TOKEN: "" });
}

async function send(f: RelayFixture, to: string): Promise<string> {
  const s = await rawSession(f.ports.smtp);
  await s.cmd("EHLO app.internal");
  await s.cmd("MAIL FROM:<app@client.test>");
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250 /);
  await s.cmd("DATA");
  const reply = await s.data("Subject: fleet\r\n\r\nbody");
  s.close();
  return /queued as ([0-9A-F]+)/.exec(reply)![1]!;
}

before(async () => {
  dead = await freePort();
  for (const name of ["fleet-0", "fleet-1"]) {
    const f = await relayFixture(`ops-queue-${name}`);
    await f.configure(
      {
        admin: { port: f.ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
        queue: { dir: join(f.work, "queue"), maxAge: 7200, retry: { initial: 3600, max: 3600 }, workers: 4 },
        policies: [
          {
            name: "mail/down",
            domains: ["down.test"],
            outbound: { tls: { mode: "none" }, nextHop: { host: "127.0.0.1", port: dead } },
          },
        ],
      },
      { files: { "secrets/admin/token": `${TOKEN}\n` } },
    );
    await f.start();
    relays.push(f);
  }
  tokenFile = join(relays[0]!.work, "token");
  await writeFile(tokenFile, TOKEN);
});

after(async () => {
  for (const f of relays) await f.stop();
  relays = [];
});

describe("fleet-wide queue view", () => {
  it("list over two relays: one table, a POD column, every message; an unreachable pod named with its URL", async () => {
    const a = await send(relays[0]!, "x@down.test");
    const b = await send(relays[1]!, "y@down.test");
    for (const [f, id] of [
      [relays[0]!, a],
      [relays[1]!, b],
    ] as const)
      await waitFor(`first attempt of ${id}`, async () => {
        const r = await fetch(`http://127.0.0.1:${f.ports.admin}/queue/${id}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const v = (await r.json()) as { attempts: number; inFlight: boolean };
        return v.attempts >= 1 && !v.inFlight ? true : undefined;
      });
    const urls = relays.map((f) => `http://127.0.0.1:${f.ports.admin}`);
    const r = await cli("list", "--admin", urls[0]!, "--admin", urls[1]!);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^POD +ID +AGE +ATTEMPTS +FROM +PENDING +REASON\n/);
    assert.match(r.stdout, new RegExp(`^${urls[0]} +${a} `, "m"));
    assert.match(r.stdout, new RegExp(`^${urls[1]} +${b} `, "m"));
    const json = await cli("list", "--admin", urls[0]!, "--admin", urls[1]!, "--json");
    const body = JSON.parse(json.stdout) as { pods: { pod: string; messages: { id: string }[] }[] };
    assert.deepEqual(
      body.pods.map((p) => [p.pod, p.messages.map((m) => m.id)]),
      [
        [urls[0], [a]],
        [urls[1], [b]],
      ],
    );
    const gone = `http://127.0.0.1:${dead}`;
    const partly = await cli("list", "--admin", urls[0]!, "--admin", gone);
    assert.equal(partly.code, 1);
    assert.match(partly.stdout, new RegExp(`^${urls[0]} +${a} `, "m"), "the answering pod is still listed");
    assert.equal(
      partly.stderr,
      `sealpost queue: ${gone}: cannot reach the admin port at ${gone}/queue: ECONNREFUSED\n`,
    );
    const bulk = await cli("hold", "--all", "--admin", urls[0]!, "--admin", urls[1]!);
    assert.equal(bulk.code, 2);
    assert.match(bulk.stderr, /work with list only/);
  });
});

describe("fleet discovery and merge (pure)", () => {
  it("the MailRelay's pod selector, running pods at their IPs, the others skipped", () => {
    assert.equal(fleetSelector("edge"), "app.kubernetes.io/name=sealpost-relay,sealpost.dev/relay=edge");
    const { targets, skipped } = fleetTargets(
      [
        { metadata: { name: "edge-1" }, status: { podIP: "10.0.0.2", phase: "Running" } },
        { metadata: { name: "edge-0" }, status: { podIP: "fd00::1", phase: "Running" } },
        { metadata: { name: "edge-2" }, status: { phase: "Pending" } },
      ],
      8080,
    );
    assert.deepEqual(targets, [
      { pod: "edge-0", url: "http://[fd00::1]:8080" },
      { pod: "edge-1", url: "http://10.0.0.2:8080" },
    ]);
    assert.deepEqual(skipped, ["edge-2 (Pending)"]);
  });

  it("merged oldest first, each message with its pod; a failed pod adds none", () => {
    const m = (id: string, receivedAt: string): MessageView => ({
      id,
      from: "a@x.test",
      receivedAt,
      ageSeconds: 1,
      attempts: 1,
      nextAttemptAt: receivedAt,
      size: 1,
      inFlight: false,
      recipients: [],
    });
    const merged = mergeListings([
      { pod: "edge-0", messages: [m("B", "2026-01-01T00:00:02.000Z")] },
      { pod: "edge-1", messages: [m("A", "2026-01-01T00:00:01.000Z")] },
      { pod: "edge-2", error: "unreachable" },
    ]);
    assert.deepEqual(
      merged.map((x) => [x.pod, x.id]),
      [
        ["edge-1", "A"],
        ["edge-0", "B"],
      ],
    );
  });
});
