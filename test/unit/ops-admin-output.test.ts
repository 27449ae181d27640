// Issue 22 finding 7: operator-facing output. Remote reply text and DNS names must reach
// `sealpost queue list/show` (text and --json) with their control characters escaped; the admin
// port's /status gives its details (reload errors, hosts delivered to, drain) only with the token
// and checks the Host header (DNS rebinding); the operator's /status probe sends the token.
import assert from "node:assert/strict";
import { createServer, request, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { startAdmin } from "../../relay/admin.js";
import { AdminSignatures } from "../../relay/contract/admin-auth.js";
import type { RelayStatus } from "../../relay/contract/status.js";
import type { MessageView } from "../../relay/queue/admin-api.js";
import { formatList, formatShow, runQueueCli } from "../../relay/queue/queue-cli.js";
import { httpStatusProbe } from "../../operator/controllers/relay-probe.js";
import type { PodObject } from "../../operator/objects.js";

const ESC = "\x1b";
const CSI8 = "\u009b";
const RLO = "\u202e";
const hostile = `${ESC}[2J${ESC}]0;pwned\x07 evil${CSI8}31m${RLO}gnp.exe\r\nfake line`;

const view: MessageView = {
  id: "0123456789ABCDEF",
  from: `a${ESC}[31m@sender.test`,
  receivedAt: "2026-01-01T00:00:00.000Z",
  ageSeconds: 61,
  attempts: 2,
  size: 100,
  inFlight: false,
  nextAttemptAt: "2026-01-01T00:02:00.000Z",
  peer: "127.0.0.1",
  recipients: [
    {
      address: "bob@partner.test",
      state: "pending",
      policy: "default",
      mode: "opportunistic",
      nextHop: `MX of mx${ESC}[8m.partner.test`,
      reason: `451 ${hostile}`,
    },
  ],
};

// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

describe("issue 22 finding 7: operator-facing output", () => {
  it("queue list and show print remote reply text and DNS names with control characters escaped", () => {
    for (const out of [formatList([view]), formatShow(view)]) {
      assert.doesNotMatch(out, RAW, JSON.stringify(out));
      assert.match(out, /\\x1b\[2J/);
      assert.match(out, /\\u202e/);
    }
    assert.equal(
      formatShow(view)
        .split("\n")
        .filter((l) => l.includes("fake line")).length,
      1,
    );
  });

  it("queue list --json: no raw C1/bidi characters, the same JSON value", async () => {
    let out = "";
    const code = await runQueueCli(["list", "--json"], {
      out: (s) => (out += s),
      err: () => undefined,
      env: {},
      fetch: () => Promise.resolve(new Response(JSON.stringify({ messages: [view] }))),
    });
    assert.equal(code, 0);
    assert.doesNotMatch(out.replace(/\n/g, ""), RAW);
    assert.deepEqual(JSON.parse(out), { messages: [view] });
  });

  it("an error message from the admin API is escaped too", async () => {
    let err = "";
    await runQueueCli(["list"], {
      out: () => undefined,
      err: (s) => (err += s),
      env: {},
      fetch: () => Promise.resolve(new Response(JSON.stringify({ error: hostile }), { status: 500 })),
    });
    assert.doesNotMatch(err.replace(/\n$/, ""), RAW);
  });

  describe("admin port", () => {
    const status = {
      relay: "mail/edge",
      generation: 3,
      configHash: "abc",
      loadedAt: "2026-01-01T00:00:00.000Z",
      lastReloadError: "CONFIG_INVALID: /etc/sealpost/secrets/internal-db/password unreadable",
      listeners: { smtp: 25 },
      queue: { depth: 1, oldestAgeSeconds: 5 },
      // a partial, hostile figure: the admin port must escape whatever it is handed
      policies: { "mail/p": { deliveries: 1, lastDelivery: { host: `10.0.0.7${ESC}[0m` } } },
    } as unknown as RelayStatus;

    async function admin(): Promise<{ port: number; close(): void }> {
      const a = await startAdmin(
        {
          ready: () => true,
          status: () => status,
          registry: new Registry(),
          authorized: (req) => Promise.resolve(req.headers.authorization === "Bearer s3cret"),
          hostNames: () => ["relay.example.com", "edge-admin.mail.svc"],
        },
        0,
        "127.0.0.1",
      );
      return { port: a.port, close: () => a.server.close() };
    }

    function get(
      port: number,
      path: string,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString("utf8")));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    }

    it("/status without the token: health only (no reload error, no hosts); with it: everything, escaped", async () => {
      const a = await admin();
      try {
        const pub = await get(a.port, "/status");
        assert.equal(pub.status, 200);
        const p = JSON.parse(pub.body) as Record<string, unknown>;
        assert.equal(p.configHash, "abc");
        assert.equal(p.lastReloadError, undefined);
        assert.equal(p.policies, undefined);
        assert.doesNotMatch(pub.body, /10\.0\.0\.7|secrets/);
        const full = await get(a.port, "/status", { authorization: "Bearer s3cret" });
        const f = JSON.parse(full.body) as RelayStatus;
        assert.equal(f.lastReloadError, status.lastReloadError);
        assert.deepEqual(f.policies, status.policies);
        assert.doesNotMatch(full.body, RAW);
      } finally {
        a.close();
      }
    });

    it("Host header: IP literals, localhost and configured names pass; a rebinding page's name gets 421", async () => {
      const a = await admin();
      try {
        for (const host of [
          `127.0.0.1:${a.port}`,
          "10.1.2.3",
          "[::1]:8080",
          "localhost:8080",
          "relay.example.com",
          "EDGE-ADMIN.mail.svc:8080",
        ])
          assert.equal((await get(a.port, "/healthz", { host })).status, 200, host);
        for (const host of [
          "attacker.example",
          "attacker.example:8080",
          "127.0.0.1.nip.io",
          "relay.example.com.evil",
        ])
          for (const path of ["/status", "/metrics", "/queue"])
            assert.equal((await get(a.port, path, { host })).status, 421, `${host}${path}`);
      } finally {
        a.close();
      }
    });
  });

  it("the operator's /status probe proves the relay's admin token without sending it", async () => {
    let seen: IncomingHttpHeaders | undefined;
    const srv = createServer((req, res) => {
      seen = req.headers;
      res.end(JSON.stringify({ configHash: "abc" }));
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const pod = { metadata: { name: "edge-0" }, status: { podIP: "127.0.0.1" } } as PodObject;
      const r = await httpStatusProbe(pod, (srv.address() as AddressInfo).port, "s3cret");
      assert.equal(r?.configHash, "abc");
      assert.ok(!seen?.authorization?.includes("s3cret"), `the token in clear: ${seen?.authorization}`);
      const verify = new AdminSignatures();
      const host = seen?.host ?? "";
      assert.ok(verify.verify(seen?.authorization, "s3cret", "GET", "/status", host), "signed by the token");
      assert.ok(!verify.verify(seen?.authorization, "s3cret", "GET", "/status", host), "once only");
      assert.ok(
        !new AdminSignatures().verify(seen?.authorization, "s3cret", "GET", "/queue", host),
        "not /queue",
      );
      assert.ok(
        !new AdminSignatures().verify(seen?.authorization, "other", "GET", "/status", host),
        "not another token",
      );
    } finally {
      srv.close();
    }
  });
});
