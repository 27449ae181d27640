// Attack review (pre-flight check, admin POST /check): a tenant who may only create a
// MailDomainPolicy and set its sealpost.dev/check annotation points its domain's MX at servers that
// accept and never speak (a tarpit: 16 addresses, CHECK_HOSTS_MAX). The relay runs one check at a
// time, and a check that overran its answer deadline (504) kept its slot until it ended: it went on
// probing every address, each one's greeting timing out in turn (in a relay, 10 s a step, up to
// three probes of five steps per address), so one tenant's check held the relay's only slot for
// many minutes after its answer, and every other tenant's check was refused 429 meanwhile. Now the
// deadline ends the check: the probe under way is closed and the addresses not yet probed are not.
// Counted: the connections the check made, not the time it took.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CheckLimiter, handleCheckRequest } from "../../relay/check/admin-api.js";
import { runCheck, type CheckDeps } from "../../relay/check/run.js";
import type { CheckReport } from "../../relay/contract/check.js";
import type { RelayConfig } from "../../relay/contract/config.js";
import { freePort } from "../support/ports.js";

const TOKEN = "tarpit-admin-token";
const ADDRESSES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`);
/** One step of a probe (connect, a reply, the handshake) may take this long. */
const STEP_MS = 200;
/** The answer deadline: a few steps, far less than the 16 steps the tarpit costs a full check. */
const DEADLINE_MS = 500;

let dir: string;
let port: number;
const tarpits: Server[] = [];
const held: Socket[] = [];
let connections = 0;
let admin: HttpServer;
let adminPort: number;
const runs: Promise<CheckReport>[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "attack-check-tarpit-"));
  await writeFile(join(dir, "token"), `${TOKEN}\n`);
  port = await freePort();
  for (const host of ADDRESSES) {
    const s = createServer((sock) => {
      connections++;
      held.push(sock);
      sock.on("error", () => undefined); // never a greeting
    });
    await new Promise<void>((r) => s.listen(port, host, r));
    tarpits.push(s);
  }
  const config = {
    admin: { tokenFile: "token" },
    policies: [
      {
        name: "tenant/tarpit",
        domains: ["tarpit.test"],
        outbound: { tls: { mode: "opportunistic" } },
      },
    ],
  } as unknown as RelayConfig;
  const deps: CheckDeps = {
    dns: {
      resolveMx: () => Promise.resolve([{ exchange: "mx.tarpit.test", priority: 10 }]),
      resolve4: (name) => Promise.resolve(name === "mx.tarpit.test" ? ADDRESSES : []),
      resolve6: () => Promise.resolve([]),
    },
    secureDns: {
      query: (name, type) =>
        Promise.resolve({
          rcode: "NOERROR",
          secure: false,
          answers:
            type === "MX" ? [{ type: "MX", name, data: { exchange: "mx.tarpit.test", preference: 10 } }] : [],
          finalName: name,
        } as never),
    },
    sts: () => Promise.resolve({ source: "none" }),
    port,
    refusal: () => undefined,
    probe: { ehloName: "relay.test", timeoutMs: STEP_MS },
  };
  admin = createHttpServer((req, res) => {
    if (
      !handleCheckRequest(
        {
          config: () => config,
          configDir: dir,
          limiter: new CheckLimiter(),
          deadlineMs: DEADLINE_MS,
          checkDeps: () => deps,
          run: (domain, d) => {
            const r = runCheck(domain, d);
            runs.push(r);
            return r;
          },
        },
        req,
        res,
      )
    ) {
      res.writeHead(404);
      res.end();
    }
  });
  adminPort = await freePort();
  await new Promise<void>((r) => admin.listen(adminPort, "127.0.0.1", r));
});

after(async () => {
  for (const s of held) s.destroy();
  await Promise.all(tarpits.map((s) => new Promise((r) => s.close(r))));
  await new Promise((r) => admin.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe("attack: a tenant's tarpit MX holds the relay's only check slot", () => {
  it("the answer deadline ends the check: no address is probed after it", async () => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/check`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ policy: "tenant/tarpit", domain: "tarpit.test" }),
    });
    assert.equal(res.status, 504);
    assert.equal(runs.length, 1);
    // the check's end is when its slot is free again
    await runs[0]!.catch(() => undefined);
    // before the deadline at most DEADLINE_MS / STEP_MS greetings could time out (one more under
    // way); a check that goes on past its answer probes all 16
    assert.ok(
      connections <= Math.ceil(DEADLINE_MS / STEP_MS) + 2,
      `the check went on after its 504: ${connections} of ${ADDRESSES.length} addresses probed`,
    );
  });
});
