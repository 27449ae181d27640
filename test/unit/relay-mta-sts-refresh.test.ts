// Issue 20 item 5: the MTA-STS policy cache is refreshed in the background before it expires (RFC
// 8461 section 3.3), with an injected clock and fetcher: days pass in a loop, not in wall time.
// From the attacker's side: a refresh that fails (HTTPS blocked, DNS broken, TXT removed) or that
// serves another policy under the cached id keeps the cached enforce policy until its max_age; only
// a successfully fetched policy under a new id replaces it, mode none included (section 10.3).
// The cache file is replaced durably (relay/durable-file.ts): a writer killed with SIGKILL mid-write
// leaves a whole policy, the last acknowledged or the next.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fail, ok } from "../../relay/contract/failure.js";
import type { Dns } from "../../relay/outbound/mx.js";
import { MtaSts, type PolicyFetch, type StsPolicy } from "../../relay/outbound/mta-sts.js";
import { REFRESH_INTERVAL_MS, refreshDue, StsRefresher } from "../../relay/outbound/mta-sts-refresh.js";
import { waitFor } from "../support/process.js";
import { stsCachePolicy } from "../support/sts-cache-writer.js";

const DAY = 86_400_000;
const policy = (mode: StsPolicy["mode"], mx = ["*.partner.test"], maxAge = 30 * 86_400): StsPolicy => ({
  version: "STSv1",
  mode,
  mx,
  maxAge,
});

/** One domain's world: its TXT id (undefined: no record; "error": DNS fails) and its HTTPS answer. */
class World {
  id: string | undefined = "v1";
  dnsFails = false;
  answer: PolicyFetch = ok(policy("enforce"));
  fetches = 0;
  t = Date.UTC(2026, 0, 1);
  dns: Dns = {
    resolveMx: () => Promise.reject(new Error("unused")),
    resolve4: () => Promise.resolve(["192.0.2.1"]),
    resolve6: () => Promise.resolve([]),
    resolveTxt: () => {
      if (this.dnsFails) return Promise.reject(Object.assign(new Error("SERVFAIL"), { code: "ESERVFAIL" }));
      if (!this.id) return Promise.reject(Object.assign(new Error("none"), { code: "ENODATA" }));
      return Promise.resolve([[`v=STSv1; id=${this.id};`]]);
    },
  };
}

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), "sts-refresh-"))));
after(() => rm(dir, { recursive: true, force: true }));

async function setup(name: string) {
  const w = new World();
  const cacheDir = join(dir, name);
  const sts = new MtaSts({
    dns: () => w.dns,
    cacheDir: () => cacheDir,
    ca: () => undefined,
    httpsPort: () => 443,
    now: () => w.t,
    fetch: () => {
      w.fetches++;
      return Promise.resolve(w.answer);
    },
  });
  const refresher = new StsRefresher(sts, () => w.t);
  // the first delivery fetches and caches the enforce policy
  const first = await sts.lookup("partner.test");
  assert.equal(first.source, "fetched");
  return { w, sts, refresher, cacheDir };
}

describe("MTA-STS background refresh (RFC 8461 section 3.3)", () => {
  it("refreshDue: once a day, or at half of a short max_age; never an expired policy", () => {
    const c = { id: "1", fetchedAt: 0, policy: policy("enforce", ["a"], 30 * 86_400) };
    assert.equal(refreshDue(c, REFRESH_INTERVAL_MS - 1), false);
    assert.equal(refreshDue(c, REFRESH_INTERVAL_MS), true);
    const short = { ...c, policy: policy("enforce", ["a"], 600) };
    assert.equal(refreshDue(short, 299_999), false);
    assert.equal(refreshDue(short, 300_000), true);
    assert.equal(refreshDue(short, 600_000), false, "expired: nothing to keep alive");
  });

  it("a daily refresh keeps an enforce policy alive past its first max_age; nothing before it is due", async () => {
    const { w, sts, refresher } = await setup("alive");
    assert.deepEqual(await refresher.tick(), []);
    assert.equal(w.fetches, 1);
    for (let day = 1; day <= 45; day++) {
      w.t += DAY;
      const r = await refresher.tick();
      assert.deepEqual(
        r.map((x) => x.outcome),
        ["refreshed"],
        `day ${day}`,
      );
    }
    assert.equal(w.fetches, 46);
    // 45 days after the first fetch, max_age 30 days: still valid, because it was refreshed
    const l = await sts.lookup("partner.test");
    assert.equal(l.source, "cache");
    assert.equal(l.policy?.mode, "enforce");
  });

  it("attacker: failed refreshes (HTTPS blocked, DNS broken, TXT removed) keep the enforce policy until max_age, then it expires", async () => {
    const { w, sts, refresher } = await setup("blocked");
    const fetchedAt = (await sts.cached("partner.test"))!.fetchedAt;
    // day by day another interference, each against the refresh of a valid cached enforce policy
    const interference: (() => void)[] = [
      () => {
        // HTTPS to mta-sts.<domain> blocked
        w.dnsFails = false;
        w.id = "v1";
        w.answer = fail("MTA_STS_FETCH_FAILED", true, "connection refused");
      },
      () => (w.dnsFails = true), // DNS answers SERVFAIL
      () => {
        // the TXT record suppressed
        w.dnsFails = false;
        w.id = undefined;
      },
      () => {
        // a new id announced, the policy fetch answered with another certificate
        w.id = "v2";
        w.answer = { ...fail("MTA_STS_FETCH_FAILED", true, "self-signed certificate"), webpki: true };
      },
    ];
    const outcomes: string[] = [];
    for (let day = 1; day < 30; day++) {
      w.t += DAY;
      interference[day % interference.length]!();
      outcomes.push(...(await refresher.tick()).map((x) => x.outcome));
      const l = await sts.lookup("partner.test");
      assert.equal(l.policy?.mode, "enforce", `day ${day}: the cached enforce policy applies`);
      assert.deepEqual(l.policy?.mx, ["*.partner.test"]);
      // the last failed fetch stays on /status and in the metrics (a lookup served from the cache
      // does not hide it), until a fetch succeeds
      const shown = sts.fetchProblems().map((p) => [p.type, p.cached, p.cachedMode]);
      if (day % interference.length === 0)
        assert.deepEqual(shown, [["sts-policy-fetch-error", true, "enforce"]], `day ${day}`);
      if (day % interference.length === 3)
        assert.deepEqual(shown, [["sts-webpki-invalid", true, "enforce"]], `day ${day}`);
    }
    assert.deepEqual([...new Set(outcomes)].sort(), ["failed", "kept"]);
    assert.equal((await sts.cached("partner.test"))!.fetchedAt, fetchedAt, "never extended");
    w.t = fetchedAt + 30 * DAY;
    w.dnsFails = false;
    assert.deepEqual(await refresher.tick(), [], "expired: not refreshed");
  });

  it("attacker: mode none (or other mx) served under the cached id does not replace the enforce policy", async () => {
    const { w, sts, refresher } = await setup("same-id");
    w.t += DAY;
    w.answer = ok(policy("none", []));
    assert.deepEqual(
      (await refresher.tick()).map((x) => x.outcome),
      ["kept-same-id"],
    );
    w.answer = ok(policy("enforce", ["mx.attacker.test"]));
    w.t += DAY;
    assert.deepEqual(
      (await refresher.tick()).map((x) => x.outcome),
      ["kept-same-id"],
    );
    const l = await sts.lookup("partner.test");
    assert.equal(l.policy?.mode, "enforce");
    assert.deepEqual(l.policy?.mx, ["*.partner.test"]);
  });

  it("RFC 8461 sections 3.1 and 10.3: a policy fetched under a new id replaces the cached one, mode none included", async () => {
    const { w, sts, refresher, cacheDir } = await setup("new-id");
    w.t += DAY;
    w.id = "v2";
    w.answer = ok(policy("none", []));
    assert.deepEqual(
      (await refresher.tick()).map((x) => x.outcome),
      ["replaced"],
    );
    const stored = JSON.parse(await readFile(join(cacheDir, "mta-sts", "partner.test.json"), "utf8")) as {
      id: string;
      policy: StsPolicy;
    };
    assert.equal(stored.id, "v2");
    assert.equal(stored.policy.mode, "none");
    assert.equal((await sts.lookup("partner.test")).policy?.mode, "none");
  });
});

describe("MTA-STS policy cache under kill -9", () => {
  it(
    "the cache holds a whole policy, the last one written or the one being written",
    { timeout: 120_000 },
    async () => {
      const cacheDir = join(dir, "crash");
      const writer = new URL("../support/sts-cache-writer.ts", import.meta.url).pathname;
      const cwd = new URL("../..", import.meta.url).pathname;
      for (let round = 1; round <= 3; round++) {
        const child = spawn(process.execPath, ["--import", "tsx", writer, cacheDir], {
          cwd,
          stdio: ["ignore", "pipe", "inherit"],
        });
        let acked = 0;
        let rest = "";
        child.stdout.on("data", (d: Buffer) => {
          const lines = (rest + d.toString()).split("\n");
          rest = lines.pop()!;
          for (const l of lines) if (l.startsWith("ok ")) acked = Number(l.slice(3));
        });
        const exited = new Promise((r) => child.once("exit", r));
        await waitFor(
          "policies written",
          () => (acked >= 50 * round || child.exitCode !== null ? true : undefined),
          60_000,
          2,
        );
        child.kill("SIGKILL"); // mid-write: the next policy's temp file or rename under way
        await exited;
        assert.ok(acked >= 50 * round, `the writer ran (exit ${child.exitCode})`);
        const text = await readFile(join(cacheDir, "mta-sts", "partner.test.json"), "utf8");
        const c = JSON.parse(text) as { id: string; policy: StsPolicy };
        const n = Number(c.id.slice(1));
        assert.ok(
          n === acked || n === acked + 1,
          `round ${round}: cache holds p${n}, acknowledged p${acked}`,
        );
        assert.deepEqual(c.policy, stsCachePolicy(n), "the policy is whole and is the one of its id");
      }
    },
  );
});
