// A client that pipelines commands and never reads a reply fills the relay's socket send queues (the
// SMTP side of the admin port's fourth review, session 11: attack-admin-unread-replies). When the
// relay ended such a session (QUIT, or a 421 cut) it closed the socket with a FIN five seconds later,
// and the kernel kept the unread replies in an orphaned FIN-WAIT-1 socket, for as long as the client
// held its end open without reading: nothing of the relay counted it any more (its session had
// closed, its per-address slot was free), so the client opened the next sessions and stacked another
// megabyte of the relay's memory per session, past maxConnectionsPerIp and maxConnections.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../support/process.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";
import { serverSockets } from "../support/socket-queues.js";

const CLIENT = "127.0.0.12";
const SESSIONS = 4;
/** EHLOs per session: about 100 octets of reply each, under the command cap (10,000). */
const EHLOS = 9000;
/** Enough queued on the relay's side to show the attack (here each session queued about 0.7 MB). */
const QUEUED = 2 ** 20;

let f: RelayFixture;
const held: Socket[] = [];

before(async () => {
  f = await relayFixture("attack-smtp-unread");
  // a session whose replies stall is ended by the idle timeout instead of its QUIT: the relay ends it
  // either way
  const inbound = { ...outsiderInbound().inbound, limits: { idleTimeoutSeconds: 10 } };
  await f.configure({ inbound });
  await f.start();
});

after(async () => {
  for (const s of held) s.destroy();
  await f?.stop();
});

/** The relay's sockets on port 25 to CLIENT, in any state, with their send queues. */
const relaySide = (): { states: string[]; sendQ: number } => serverSockets(f.ports.smtp, CLIENT);

describe("attack: pipelined commands, replies never read, on port 25", () => {
  it("the relay's closes leave nothing of the client's unread replies in the kernel", async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const s = connect({ port: f.ports.smtp, host: "127.0.0.1", localAddress: CLIENT });
      held.push(s);
      s.on("error", () => undefined);
      await new Promise((r) => s.once("connect", r));
      s.pause(); // never reads: not even the greeting
      // after the pregreet wait, so the pipeline is not "talking too soon"
      await waitFor("the greeting sent", () => (s.readableLength > 0 ? true : undefined));
      s.write("EHLO attacker.test\r\n".repeat(EHLOS));
    }
    await waitFor(
      "the relay's send queues filled",
      () => (relaySide().sendQ > QUEUED ? true : undefined),
      60_000,
    );
    for (const s of held) s.write("QUIT\r\n");
    // the relay ends the sessions and frees their slots; the client keeps its sockets open, unread
    await waitFor(
      "the relay's sessions closed",
      () =>
        f.logs!.lines.filter((l) => l.event === "session" && l.peer === CLIENT).length === SESSIONS
          ? true
          : undefined,
      60_000,
    );
    const left = relaySide();
    assert.equal(left.sendQ, 0, `left in the kernel: ${left.sendQ} bytes in ${left.states.join(", ")}`);
  });
});
