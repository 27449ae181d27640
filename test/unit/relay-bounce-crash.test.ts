// A bounce against kill -9 and failed writes (relay/queue/scheduler.ts notify, relay/queue/spool.ts
// remove): the scheduler over a real spool on a temp folder, the folder copied before and after each
// of the spool's writes (what a kill -9 at that moment leaves) and each copy recovered as a restart
// would. The attacker's claim: a recipient the relay bounced (a DSN said "failed", or the message
// was said done) is delivered after a restart. Checked on every copy: once the DSN is queued, or the
// message removed, the message comes back with no pending recipient (or not at all), and a message
// that is gone left its DSN behind (at least once).
// Found on main: a message moved out of the journal (its state written to env/) whose journal done
// record was not durable yet (it waits for the next round; on a full volume it fails) lost its
// envelope at its removal, and a restart found the journal's copy alone, pending; and an admin bounce
// queued the DSN before the recipients' failure was written, so a failed write left them pending
// with the DSN sent.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LoadedConfig } from "../../relay/config/load.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { createLogger } from "../../relay/log.js";
import { createMetrics } from "../../relay/metrics.js";
import type { Deliverer, DeliveryRequest, RecipientResult } from "../../relay/outbound/deliver.js";
import type { Envelope } from "../../relay/queue/envelope.js";
import { Scheduler } from "../../relay/queue/scheduler.js";
import { newQueueId, Spool, type SpoolOptions } from "../../relay/queue/spool.js";
import { copyLiveDir } from "../support/copy-live-dir.js";
import { fullableAppend } from "../support/full-volume-spool.js";
import { minimalRelayConfig } from "../support/minimal-relay-config.js";

let root = "";
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "relay-bounce-crash-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
const fresh = (): string => join(root, `q${++n}`);

/** Small segments: the spare each copy carries stays small. */
const SPOOL: SpoolOptions = { segmentBytes: 64 * 1024 };

const BOUNCED = "b@y.test";

/** The scheduler reads only the config itself (retry 60 s: nothing is attempted again meanwhile). */
const CONFIG = {
  config: RelayConfig.parse(
    minimalRelayConfig({
      queue: { dir: "/nonexistent/queue", retry: { initial: 60, max: 3600, jitter: 0 } },
    }),
  ),
} as LoadedConfig;

/** BOUNCED fails (5xx) or defers (`defer`); every other recipient (the DSN's) is deferred. */
function deliverer(o: { defer: boolean }): Deliverer {
  return {
    deliver: (req: DeliveryRequest): Promise<RecipientResult[]> =>
      Promise.resolve(
        req.recipients.map((address) =>
          address === BOUNCED && !o.defer
            ? { address, outcome: "failed", code: "TEST", message: "550 5.1.1 no such user", status: "5.1.1" }
            : { address, outcome: "deferred", code: "TEST", message: "451 try later", status: "4.0.0" },
        ),
      ),
  } as unknown as Deliverer;
}

interface Copy {
  dir: string;
  /** The message's DSN had been queued when the copy was taken. */
  dsnQueued: boolean;
  /** The message's removal had resolved when the copy was taken. */
  removed: boolean;
  when: string;
}

/**
 * The spool as the scheduler uses it, copying the queue folder before and after each write (enqueue,
 * update, remove). `fail(op, id)` (the id written, or a DSN's) makes a write throw before it does
 * anything (a full volume).
 */
function watched(
  spool: Spool,
  q: string,
  id: () => string,
  fail: (op: string, id: string) => boolean = () => false,
): { spool: Spool; copies: Copy[]; settled: () => Promise<void>; broken: () => unknown } {
  const copies: Copy[] = [];
  let dsnQueued = false;
  let removed = false;
  let chain = Promise.resolve();
  let ops = 0;
  // a failed copy rejects the chain, and with it every later write: the test says so at once
  // (until) instead of waiting for what can no longer happen
  let broken: unknown;
  const copy = (when: string): Promise<void> => {
    const c: Copy = { dir: `${q}.copy${copies.length}`, dsnQueued, removed, when };
    copies.push(c);
    return copyLiveDir(q, c.dir).catch((e: unknown) => {
      broken ??= e;
      throw e;
    });
  };
  const wrap =
    <A extends unknown[], R>(op: string, fn: (...a: A) => Promise<R>, after?: (r: R, ...a: A) => void) =>
    async (...a: A): Promise<R> => {
      const k = ++ops;
      await (chain = chain.then(() => copy(`before ${op} #${k}`)));
      const arg = a[0] as string | { id: string };
      if (fail(op, typeof arg === "string" ? arg : arg.id)) {
        await (chain = chain.then(() => copy(`${op} #${k} failed`)));
        throw new Error(`ENOSPC: no space left on device (${op} #${k})`);
      }
      let r: R;
      try {
        r = await fn(...a);
      } catch (e) {
        await (chain = chain.then(() => copy(`${op} #${k} rejected`)));
        throw e;
      }
      after?.(r, ...a);
      await (chain = chain.then(() => copy(`after ${op} #${k}`)));
      return r;
    };
  const proxy = {
    enqueue: wrap("enqueue", spool.enqueue.bind(spool), (r, env) => {
      if (r.ok && env.from === "") dsnQueued = true;
    }),
    update: wrap("update", spool.update.bind(spool)),
    remove: wrap("remove", spool.remove.bind(spool), (_r, removedId) => {
      if (removedId === id()) removed = true;
    }),
    readMessage: spool.readMessage.bind(spool),
    openMessage: spool.openMessage.bind(spool),
  };
  return { spool: proxy as unknown as Spool, copies, settled: () => chain, broken: () => broken };
}

/** Recovers each copy as a restart would and checks the claim against it. */
async function check(copies: Copy[], id: string, from: string): Promise<void> {
  assert.ok(copies.length > 0);
  for (const c of copies) {
    const { spool, envelopes } = await Spool.open(c.dir, SPOOL);
    await spool.close();
    const m = envelopes.find((e) => e.id === id);
    const pending = m?.recipients.filter((r) => r.address === BOUNCED && r.state === "pending") ?? [];
    if (c.dsnQueued || c.removed)
      assert.deepEqual(
        pending.map((r) => r.address),
        [],
        `kill -9 ${c.when}: a restart delivers to a recipient the relay bounced` +
          (c.dsnQueued ? " (its DSN queued)" : " (the message said done)"),
      );
    if (!m && from !== "")
      assert.ok(
        envelopes.some((e) => e.from === "" && e.peer === "local (dsn)"),
        `kill -9 ${c.when}: the message is gone and its DSN with it`,
      );
  }
}

/** Waits for `cond`; fails at once when the copies of `w` broke (no later write runs then). */
async function until(cond: () => boolean, what: string, w?: { broken: () => unknown }): Promise<void> {
  for (let i = 0; i < 6000; i++) {
    if (cond()) return;
    if (w?.broken() !== undefined) assert.fail(`a kill -9 copy failed: ${String(w.broken())}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

async function queue(spool: Spool, from: string): Promise<Envelope> {
  const now = Date.now();
  const r = await spool.enqueue(
    { id: newQueueId(now), from, recipients: [{ address: BOUNCED, state: "pending" }], receivedAt: now },
    Buffer.from("Subject: t\r\n\r\n"),
    Buffer.from("the body\r\n"),
  );
  assert.ok(r.ok, r.ok ? "" : r.message);
  return r.value;
}

function scheduler(spool: Spool, o: { defer: boolean }): Scheduler {
  return new Scheduler({
    spool,
    config: () => CONFIG,
    deliverer: deliverer(o),
    log: createLogger(undefined, "silent"),
    metrics: createMetrics(),
  });
}

describe("a bounce against kill -9 and failed writes", () => {
  for (const from of ["", "a@x.test"])
    it(`attack: a 5xx on the first attempt (${from ? "DSN" : "null sender"}): no kill -9 brings the recipient back`, async () => {
      const q = fresh();
      const { spool: real } = await Spool.open(q, SPOOL);
      const env = await queue(real, from);
      const w = watched(real, q, () => env.id);
      const s = scheduler(w.spool, { defer: false });
      s.add(env);
      await until(() => !s.get(env.id), "bounced and removed", w);
      await w.settled();
      await s.stop(1000);
      await real.close();
      await check(w.copies, env.id, from);
    });

  it("attack: on a full volume (every journal round fails) a bounced message is not removed until its journal copy is dead", async () => {
    const q = fresh();
    const { append, full } = fullableAppend();
    const { spool: real } = await Spool.open(q, { ...SPOOL, journalAppend: append });
    const env = await queue(real, "");
    const w = watched(real, q, () => env.id);
    const s = scheduler(w.spool, { defer: false });
    try {
      full.on = true; // the move to files works, the journal's done record for it does not
      s.add(env);
      await until(
        () => w.copies.some((c) => /^(after remove|remove #\d+ rejected)/.test(c.when)),
        "a removal tried",
        w,
      );
      await w.settled();
      await check(w.copies, env.id, "");
      // room again: a later attempt removes it for good
      full.on = false;
      s.retryAll();
      await until(() => !s.get(env.id), "removed once the volume has room", w);
      await w.settled();
    } finally {
      // a failure above must not leave a scheduler and a journal failing every round behind
      full.on = false;
      await s.stop(1000);
      await real.close();
    }
    await check(w.copies, env.id, "");
  });

  for (let k = 1; k <= 4; k++)
    it(`attack: an admin bounce whose write #${k} fails (full volume), then kill -9: never "failed" and delivered`, async () => {
      const q = fresh();
      const { spool: real } = await Spool.open(q, SPOOL);
      const env = await queue(real, "a@x.test");
      let writes = -1; // counted from the bounce on
      // the bounce's writes: the DSN's enqueue and the message's own (not the DSN's later updates)
      const w = watched(
        real,
        q,
        () => env.id,
        (op, id) => writes >= 0 && (op === "enqueue" || id === env.id) && ++writes === k,
      );
      // a first attempt defers it: its state goes to env/ (moved out of the journal)
      const s = scheduler(w.spool, { defer: true });
      s.add(env);
      await until(() => s.get(env.id)?.env.attempts === 1 && !s.get(env.id)?.inFlight, "deferred", w);
      writes = 0;
      await s.bounce(env.id, "given up by the operator").catch(() => undefined);
      await w.settled();
      await s.stop(1000);
      await real.close();
      await check(w.copies, env.id, "a@x.test");
    });
});

describe("a moved message's journal copy found at a restart", () => {
  it("attack: its removal after the restart writes the done record first: a second restart does not bring it back", async () => {
    const q = fresh();
    const { append, full } = fullableAppend();
    const { spool } = await Spool.open(q, { ...SPOOL, journalAppend: append });
    await queue(spool, "a@x.test"); // keeps the segment (never attempted)
    const env = await queue(spool, "a@x.test");
    full.on = true; // its done record fails: kill -9 before the retry
    await spool.update({ ...env, attempts: 1 });
    const first = `${q}.restart1`;
    await copyLiveDir(q, first);
    await spool.close();
    const again = await Spool.open(first, SPOOL);
    assert.equal(again.envelopes.find((e) => e.id === env.id)?.attempts, 1, "env/ wins over the journal");
    // bounced (or delivered) after the restart: removed
    await again.spool.remove(env.id, { delivered: true });
    const second = `${q}.restart2`;
    await copyLiveDir(first, second);
    await again.spool.close();
    const third = await Spool.open(second, SPOOL);
    await third.spool.close();
    assert.deepEqual(
      third.envelopes.filter((e) => e.id === env.id),
      [],
      "a removed message came back from the journal's copy",
    );
  });
});
