// A drain says "drained" only when this volume can no longer deliver what left the queue: the done
// records of the handed-over and delivered messages are durable (relay/queue/drain.ts, journal.ts
// flush). Attacker's / crash's side: a full volume at the end of a drain, the pod killed right after.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Drain, type DrainQueue } from "../../relay/queue/drain.js";
import { createLogger } from "../../relay/log.js";
import { readSpool, type Spool } from "../../relay/queue/spool.js";
import { fullableSpool, queued } from "../support/full-volume-spool.js";

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "relay-drain-durable-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The scheduler's side of a drain whose queue emptied (every message delivered). */
const emptied: DrainQueue = {
  list: () => [],
  get: () => undefined,
  depth: () => 0,
  retryAll: () => undefined,
  stop: () => Promise.resolve(),
  forget: () => undefined,
  claim: () => Promise.resolve(false),
  notifyFailed: () => Promise.resolve(),
};

function drainOf(spool: Spool): Drain {
  return new Drain({
    queue: emptied,
    spool,
    log: createLogger(undefined, "silent"),
    stopAccepting: () => Promise.resolve(),
    handover: () => undefined, // deliver mode: the queue emptied by deliveries
    ehloName: () => "relay.test",
    key: () => Promise.resolve(undefined),
    fleetCertificate: () => undefined,
  });
}

describe("drain and the late done records", () => {
  it("attack: a drain whose done records cannot be written (a full volume) says incomplete, not drained", async () => {
    const q = join(root, "full");
    const { spool, full } = await fullableSpool(q);
    const ids: string[] = [];
    for (const body of ["delivered during the drain", "keeps its segment"])
      ids.push((await queued(spool, body)).id);
    full.on = true;
    await spool.remove(ids[0]!, { delivered: true }); // its done record waits, then fails
    const st = await drainOf(spool).run(60_000);
    assert.equal(st.state, "incomplete", "the pod may be killed after drained: this message would come back");
    assert.match(st.lastError ?? "", /ENOSPC/);
    full.on = false;
    const again = await drainOf(spool).run(60_000);
    assert.equal(again.state, "drained");
    await spool.close();
  });

  it("a full volume whose journal segments all went with their messages still drains: nothing can come back", async () => {
    const q = join(root, "all-gone");
    const { spool, full } = await fullableSpool(q);
    const env = await queued(spool, "the last message, delivered during the drain");
    full.on = true;
    await spool.remove(env.id, { delivered: true }); // its done record fails, its segment goes
    const st = await drainOf(spool).run(60_000);
    assert.equal(st.state, "drained", st.lastError);
    assert.deepEqual(await readSpool(q), [], "what a later pod on this volume finds");
    await spool.close();
  });
});
