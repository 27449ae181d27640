// Third review of the admin port's bounds (session 11): one client, within its 16-connection share,
// pipelined thousands of GET /metrics on each connection and never read the answers. Node's http
// server parses a received chunk of pipelined requests at once, started every render (async), and
// kept each finished reply until the client read the ones before it; no timeout applies once a
// request is in: the relay grew past a gigabyte (a 512Mi pod is killed), from about 4 MB sent. Now a
// connection answers one request at a time and is closed when another comes before its reply was
// sent (relay/net/http-limits.ts oneAtATime).
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { ADMIN_LIMITS } from "../../relay/admin.js";
import { waitFor } from "../support/process.js";
import { outsiderInbound, relayFixture, type RelayFixture } from "../support/relay.js";

let f: RelayFixture;
const held: Socket[] = [];

before(async () => {
  f = await relayFixture("attack-admin-pipelined");
  await f.configure(outsiderInbound());
  await f.start();
});

after(async () => {
  for (const s of held) s.destroy();
  await f?.stop();
});

const REQ = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const PIPELINED = 2000;

/** One connection that sends PIPELINED requests at once; resolves with the replies it got, once closed. */
function pipeline(): Promise<number> {
  return new Promise((resolve) => {
    const s = connect({ port: f.ports.admin, host: "127.0.0.1", localAddress: "127.0.0.2" });
    held.push(s);
    let text = "";
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => (text += d.toString("latin1")));
    s.once("connect", () => s.write(REQ.repeat(PIPELINED)));
    s.once("close", () => resolve(text.split("HTTP/1.1 200").length - 1));
  });
}

describe("attack: pipelined /metrics requests", () => {
  it("each connection is closed at its second pipelined request: no replies pile up", async () => {
    const replies = await Promise.all(Array.from({ length: ADMIN_LIMITS.perClient }, () => pipeline()));
    assert.ok(
      replies.every((n) => n <= 1),
      `replies per connection: ${replies.join(", ")} (at most the first before the connection closed)`,
    );
    // one at a time is still served, and the probes answer
    const m = await fetch(`http://127.0.0.1:${f.ports.admin}/metrics`);
    assert.equal(m.status, 200);
    await m.text();
    await waitFor("/healthz", async () =>
      (await fetch(`http://127.0.0.1:${f.ports.admin}/healthz`)).ok ? true : undefined,
    );
  });
});
