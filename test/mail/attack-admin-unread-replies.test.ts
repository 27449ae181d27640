// Fourth review of the admin port's bounds (session 11): a client that never pipelines (one request
// after the other, every 25 ms) but never reads a reply fills the relay's socket send queues; when
// the keep-alive timeout closed such a connection with a FIN, the kernel kept its queue in an
// orphaned FIN-WAIT-1 socket that no longer counted for the client, who opened new ones: 82 sockets
// and 318 MB of one client's unread /metrics replies after six rounds. The relay now closes a
// connection it gives up on with a reset (relay/net/http-limits.ts), which drops the queue.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { ADMIN_LIMITS } from "../../relay/admin.js";
import { waitFor } from "../support/process.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import { serverSockets } from "../support/socket-queues.js";

const CLIENT = "127.0.0.10";
const REQ = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
/** Enough queued on the relay's side to show the attack (the review's connections reached 3.9 MB). */
const QUEUED = 4 * 2 ** 20;

let f: RelayFixture;
const held: Socket[] = [];

before(async () => {
  f = await relayFixture("attack-admin-unread");
  await f.configure(outsiderInbound());
  await f.start();
});

after(async () => {
  for (const s of held) s.destroy();
  await f?.stop();
});

/** The relay's sockets on the admin port to CLIENT, in any state, with their send queues. */
const relaySide = (): { states: string[]; sendQ: number } => serverSockets(f.ports.admin, CLIENT);

describe("attack: requests one after another, replies never read", () => {
  it("the relay's closes leave nothing of the client's unread replies in the kernel", async () => {
    let stop = false;
    const senders = Array.from({ length: ADMIN_LIMITS.perClient }, async () => {
      const s = connect({ port: f.ports.admin, host: "127.0.0.1", localAddress: CLIENT });
      held.push(s);
      s.on("error", () => undefined);
      await new Promise((r) => s.once("connect", r));
      s.pause(); // never reads
      while (!stop && !s.destroyed) {
        s.write(REQ);
        await sleep(25);
      }
    });
    await waitFor(
      "the relay's send queues filled",
      () => (relaySide().sendQ > QUEUED ? true : undefined),
      60_000,
    );
    stop = true;
    await Promise.all(senders);
    // the relay gives up on them (its keep-alive timeout, or the next request before a reply went out)
    await waitFor(
      "the relay's side closed",
      () => (relaySide().states.includes("ESTAB") ? undefined : true),
      30_000,
    );
    const left = relaySide();
    assert.equal(left.sendQ, 0, `left in the kernel: ${left.sendQ} bytes in ${left.states.join(", ")}`);
  });
});
