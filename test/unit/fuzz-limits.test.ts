// Pure parts of the inbound hardening (GitHub issue 8): the AUTH throttle (relay/inbound/throttle.ts)
// with an injected clock, and the DATA content guard (relay/inbound/limits.ts) under fast-check
// properties: its verdict does not depend on how the message is cut into chunks, clean CRLF
// messages pass unchanged, and any bare CR or LF is refused.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  checkAddressCharset,
  checkParams,
  commandLineLimit,
  ConnectionLimiter,
  ContentGuard,
} from "../../relay/inbound/limits.js";
import { AuthThrottle, THROTTLED_TEXT } from "../../relay/inbound/throttle.js";

const L = { maxFailuresPerIp: 4, maxFailuresPerAccount: 3, windowMs: 60_000 };
/** Every username is a configured account. */
const ANY = (): boolean => true;

describe("AuthThrottle", () => {
  it("blocks an account after its limit, from any IP, and lets it in again once failures age out", () => {
    let now = 1_000_000;
    const t = new AuthThrottle(() => now);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(t.check(`10.0.0.${i}`, "alice", L, ANY), { ok: true });
      t.failed(`10.0.0.${i}`, "alice", L, ANY);
    }
    assert.deepEqual(t.check("10.9.9.9", "Alice", L, ANY), {
      ok: false,
      scope: "account",
      code: 454,
      text: THROTTLED_TEXT,
    });
    assert.deepEqual(t.check("10.9.9.9", "bob", L, ANY), { ok: true });
    now += 60_001;
    assert.deepEqual(t.check("10.9.9.9", "alice", L, ANY), { ok: true });
  });

  it("blocks an IP after its limit whatever the account; other IPs are not affected", () => {
    let now = 0;
    const t = new AuthThrottle(() => now);
    for (let i = 0; i < 4; i++) t.failed("192.0.2.1", `user${i}`, L, ANY);
    assert.equal(t.check("192.0.2.1", "fresh", L, ANY).ok, false);
    assert.equal(t.check("192.0.2.2", "fresh", L, ANY).ok, true);
    now += 30_000;
    t.failed("192.0.2.2", "x", L, ANY);
    now += 30_001; // the first four are out of the window now
    assert.equal(t.check("192.0.2.1", "fresh", L, ANY).ok, true);
  });

  it("memory stays bounded under a spray of IPs and made-up accounts", () => {
    const t = new AuthThrottle(() => 0, 100);
    const configured = new Set(["alice", "bob"]);
    for (let i = 0; i < 5000; i++)
      t.failed(`ip${i}`, i % 2 ? `acct${i}` : "alice", L, (u) => configured.has(u));
    // client keys and made-up names: the LRU bound; accounts: only configured ones
    assert.deepEqual(t.tracked, { ips: 100, accounts: 1, strangers: 100 });
  });

  it("property: never more than the limit of failures are let through per account within one window", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ ip: fc.constantFrom("a", "b", "c", "d", "e"), user: fc.constantFrom("u", "v") }),
          {
            maxLength: 60,
          },
        ),
        (attempts) => {
          const t = new AuthThrottle(() => 0);
          const passed = new Map<string, number>();
          for (const a of attempts) {
            if (!t.check(a.ip, a.user, L, ANY).ok) continue;
            passed.set(a.user, (passed.get(a.user) ?? 0) + 1);
            t.failed(a.ip, a.user, L, ANY); // every guess is wrong
          }
          for (const n of passed.values()) assert.ok(n <= L.maxFailuresPerAccount);
        },
      ),
      { numRuns: 200 },
    );
  });
});

async function guard(chunks: Buffer[]): Promise<{ out: Buffer; code?: number }> {
  const g = ContentGuard.over(Readable.from(chunks));
  const parts: Buffer[] = [];
  try {
    for await (const c of g) parts.push(c as Buffer);
  } catch {
    // the violation is in g.violation
  }
  return { out: Buffer.concat(parts), ...(g.violation ? { code: g.violation.reply.code } : {}) };
}

function cut(b: Buffer, points: number[]): Buffer[] {
  const ps = [...new Set(points.map((p) => p % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of ps) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  out.push(b.subarray(prev));
  return out.filter((c) => c.length);
}

const lineText = fc.string({ maxLength: 80 }).map((s) => s.replace(/[\r\n]/g, ""));

describe("ContentGuard", () => {
  it("property: a CRLF-only message with short header lines passes unchanged, however it is chunked", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(lineText, { maxLength: 8 }),
        fc.array(lineText, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (headers, body, points) => {
          const msg = Buffer.from(
            headers.map((h) => `X-H: ${h}\r\n`).join("") + "\r\n" + body.join("\r\n") + "\r\n",
          );
          const r = await guard(cut(msg, points));
          assert.equal(r.code, undefined);
          assert.ok(r.out.equals(msg));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("property: a bare CR or LF anywhere is refused with 550, however it is chunked", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(lineText, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.constantFrom("\n", "\r", "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n"),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (lines, at, bad, points) => {
          const clean = "Subject: x\r\n\r\n" + lines.join("\r\n") + "\r\n";
          // insert inside a line (never between the CR and LF of a CRLF)
          const starts = [...clean.matchAll(/\r\n/g)].map((m) => m.index);
          const pos = starts[at % starts.length]!;
          const msg = Buffer.from(clean.slice(0, pos) + "a" + bad + "b" + clean.slice(pos));
          const r = await guard(cut(msg, points));
          assert.equal(r.code, 550);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a 999-octet header line is refused with 552; 998 passes; a long body line passes", async () => {
    assert.equal((await guard([Buffer.from(`X: ${"a".repeat(996)}\r\n\r\nb\r\n`)])).code, 552);
    assert.equal(
      (await guard([Buffer.from(`X: ${"a".repeat(996)}`), Buffer.from("\r\n\r\nb\r\n")])).code,
      552,
    );
    assert.equal((await guard([Buffer.from(`X: ${"a".repeat(995)}\r\n\r\nb\r\n`)])).code, undefined);
    assert.equal((await guard([Buffer.from(`X: y\r\n\r\n${"b".repeat(5000)}\r\n`)])).code, undefined);
  });
});

describe("command and address rules", () => {
  it("command line limits per command", () => {
    assert.equal(commandLineLimit("NOOP x"), 510);
    assert.equal(commandLineLimit("mail FROM:<a@b>"), 1022);
    assert.equal(commandLineLimit("RCPT TO:<a@b>"), 1534);
    assert.equal(commandLineLimit("AUTH PLAIN xyz"), 12286);
  });
  it("SMTPUTF8 and parameters", () => {
    assert.equal(checkAddressCharset("ü@x.test", false)?.code, 553);
    assert.equal(checkAddressCharset("ü@x.test", true), undefined);
    assert.equal(checkAddressCharset("a@x.test", false), undefined);
    assert.equal(checkParams("MAIL", { SIZE: "1", BODY: "8BITMIME" }), undefined);
    assert.equal(checkParams("MAIL", { FOO: "1" })?.code, 555);
    assert.equal(checkParams("RCPT", { NOTIFY: "NEVER", ORCPT: "rfc822;a@b" }), undefined);
    assert.equal(checkParams("RCPT", { SIZE: "1" })?.code, 555);
  });
  it("ConnectionLimiter: per IP, in total, released once", () => {
    const l = new ConnectionLimiter();
    const lim = { maxConnections: 3, maxConnectionsPerIp: 2 };
    assert.equal(l.admit("1", "a", lim), undefined);
    assert.equal(l.admit("2", "a", lim), undefined);
    assert.equal(l.admit("3", "a", lim)?.code, 421);
    assert.equal(l.admit("4", "b", lim), undefined);
    assert.match(l.admit("5", "c", lim)?.text ?? "", /Too many connections, /);
    l.release("1");
    l.release("1");
    l.release("nope");
    assert.equal(l.total, 2);
    assert.equal(l.admit("6", "a", lim), undefined);
  });
});
