// Attack review (in-cluster attacker, no token), session 11: the admin port (relay/admin.ts) took any
// number of silent connections from one client, each held until Node's header timeout (60 s) and
// opened again at will; at the process's descriptor limit the SMTP listeners accepted nothing and
// /readyz failed (the reviewer's run: 19,967 connections, SMTP closed without greeting). Now the
// admin port keeps at most ADMIN_LIMITS.perClient connections of one client (relay/net/http-limits.ts)
// and closes the rest at once, so the attacker holds a handful while mail and the probes go on.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { ADMIN_LIMITS } from "../../relay/admin.js";
import { waitFor } from "../support/process.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";

const ATTACKER = "127.0.0.9";
const ATTEMPTS = 4 * ADMIN_LIMITS.perClient;

let f: RelayFixture;
const held: Socket[] = [];

before(async () => {
  f = await relayFixture("attack-admin-idle");
  await f.configure(outsiderInbound());
  await f.start();
});

after(async () => {
  for (const s of held) s.destroy();
  await f?.stop();
});

/** The first line the SMTP listener sends a new client from 127.0.0.1 (or why none came). */
function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1" });
    s.once("data", (d) => (s.destroy(), resolve(d.toString().trim())));
    s.once("error", (e) => resolve(`error ${e.message}`));
    s.once("close", () => resolve("closed without greeting"));
  });
}

/** A silent connection from the attacker's address; resolves once connected (or failed). */
function silent(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ port, host: "127.0.0.1", localAddress: ATTACKER });
    s.on("error", () => undefined);
    s.once("connect", () => resolve(s));
    s.once("close", () => resolve(s));
    held.push(s);
  });
}

describe("attack: silent connections to the admin port", () => {
  it("one client keeps at most its share open; SMTP and /readyz answer meanwhile", async () => {
    await Promise.all(Array.from({ length: ATTEMPTS }, () => silent(f.ports.admin)));
    const open = await waitFor(
      "the connections beyond the client's share closed by the relay",
      () => {
        const n = held.filter((s) => !s.destroyed && !s.closed).length;
        return n <= ADMIN_LIMITS.perClient ? n : undefined;
      },
      10_000,
    );
    assert.equal(open, ADMIN_LIMITS.perClient, "the client keeps exactly its share");
    assert.match(await greeting(f.ports.smtp), /^220 /);
    const ready = await fetch(`http://127.0.0.1:${f.ports.admin}/readyz`);
    assert.equal(ready.status, 200);
    // one more from the attacker is closed at once, before a byte
    const extra = await silent(f.ports.admin);
    await waitFor("the extra connection closed", () => (extra.closed ? true : undefined), 5_000);
  });
});
