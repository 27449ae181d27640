// Second review of the admin port's bounds (session 11): with a total of 256, 16 clients (16 pods on
// the pod network, each its own IPv4 address) held the whole total, each connection kept alive with
// a request every 3 s (under keepAliveMs), and the kubelet's probes (here from 127.0.0.1) were closed
// at once: /readyz and /healthz failed for as long as the attacker liked (readiness: out of the
// Service after 10 s; liveness: a restart after 60 s). The total is now far above what that many
// clients can hold (relay/admin.ts ADMIN_LIMITS): reaching it takes hundreds of addresses.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { ADMIN_LIMITS } from "../../relay/admin.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";

/** The pods of the review, each holding its whole share. */
const CLIENTS = 16;
let f: RelayFixture;
const held: Socket[] = [];
const timers: NodeJS.Timeout[] = [];

before(async () => {
  f = await relayFixture("attack-admin-probe-lockout");
  await f.configure(outsiderInbound());
  await f.start();
});

after(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of held) s.destroy();
  await f?.stop();
});

const REQ = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

function keepBusy(port: number, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1", localAddress });
    s.on("error", () => undefined);
    s.on("data", () => undefined);
    s.once("connect", () => {
      s.write(REQ);
      timers.push(setInterval(() => !s.destroyed && s.write(REQ), 3_000));
      resolve();
    });
    s.once("close", () => resolve());
    held.push(s);
  });
}

async function probe(port: number): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) });
    return String(r.status);
  } catch (e) {
    return `failed (${(e as Error).cause ? String((e as Error & { cause: Error }).cause.message ?? (e as Error).cause) : (e as Error).message})`;
  }
}

describe("attack: pods keeping their shares of the admin port busy", () => {
  it("the kubelet's probes keep answering while 16 pod addresses hold their shares", async () => {
    for (let c = 1; c <= CLIENTS; c++)
      await Promise.all(
        Array.from({ length: ADMIN_LIMITS.perClient }, () => keepBusy(f.ports.admin, `127.0.1.${c}`)),
      );
    assert.ok(CLIENTS * ADMIN_LIMITS.perClient < ADMIN_LIMITS.total);
    const results: string[] = [];
    for (let i = 0; i < 3; i++) results.push(await probe(f.ports.admin));
    assert.deepEqual(results, ["200", "200", "200"], "every probe answered");
    assert.equal(
      held.filter((s) => !s.destroyed && !s.closed).length,
      CLIENTS * ADMIN_LIMITS.perClient,
      "the clients' shares are kept (nothing legitimate is cut)",
    );
  });
});
