// Queue operations for partner-facing support: a message stuck behind a STARTTLS-stripping
// firewall (policy tls: required) is listed with its deferral reason by `sealpost queue` (the real
// CLI, as a child process, over the admin port with the token), retried once the path is fixed,
// and bounced (a DSN to the sender; `delete` removes without one: ops-queue-tools.test.ts). The /queue endpoints refuse requests without the
// token. /status carries the per-policy figures the operator copies into MailDomainPolicy status.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf } from "../support/certs.js";
import { sealpost, type CliResult } from "../support/cli.js";
import { waitFor } from "../support/process.js";
import {
  rawSession,
  startRelay,
  testConfig,
  testPorts,
  writeConfigDir,
  type LogCapture,
  type TestPorts,
} from "../support/relay.js";
import { startSink, type Sink } from "../support/sink.js";
import { startStripProxy, type StripProxy } from "../support/strip-proxy.js";

const TOKEN = "s3cret-admin-token";

let work: string;
let ports: TestPorts;
let relay: Relay;
let logs: LogCapture;
let sink: Sink;
let proxy: StripProxy;
let blocked: StripProxy; // a second firewall that never lets STARTTLS through
let tokenFile: string;

function cli(...args: string[]): Promise<CliResult> {
  const admin = ["--admin", `http://127.0.0.1:${ports.admin}`];
  return sealpost(["queue", ...args, ...admin], { SEALPOST_ADMIN_TOKEN: "" });
}

async function send(to: string): Promise<string> {
  const s = await rawSession(ports.smtp);
  await s.cmd("EHLO app.internal");
  assert.match(await s.cmd("MAIL FROM:<app@client.test>"), /^250 /);
  assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250 /);
  await s.cmd("DATA");
  const reply = await s.data(`Subject: invoice\r\n\r\nfor ${to}`);
  s.close();
  const id = /queued as ([0-9A-F]+)/.exec(reply)?.[1];
  assert.ok(id, reply);
  return id;
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${ports.admin}${path}`, init);
}

async function attempted(id: string): Promise<void> {
  await waitFor(`first attempt of ${id}`, async () => {
    const r = await api(`/queue/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(r.status, 200, `${id} left the queue`);
    const m = (await r.json()) as { attempts: number; inFlight: boolean };
    return m.attempts >= 1 && !m.inFlight ? true : undefined;
  });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "ops-queue-"));
  const ca = await makeCa(join(work, "ca"));
  const cert = await makeLeaf(ca, { cn: "relay.test", dnsNames: ["relay.test"], name: "relay" });
  const peer = await makeLeaf(ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"], name: "peer" });
  sink = await startSink({ tls: { cert: await readFile(peer.certFile), key: await readFile(peer.keyFile) } });
  proxy = await startStripProxy({ upstream: { host: sink.host, port: sink.port }, mode: "strip" });
  blocked = await startStripProxy({ upstream: { host: sink.host, port: sink.port }, mode: "strip" });
  ports = await testPorts();
  const cfg = testConfig(ports, join(work, "queue"), {
    admin: { port: ports.admin, host: "127.0.0.1", tokenFile: "secrets/admin/token" },
    policies: [
      {
        name: "mail/partner",
        domains: ["partner.test"],
        outbound: { tls: { mode: "required" }, nextHop: { host: proxy.host, port: proxy.port } },
      },
      {
        name: "mail/blocked",
        domains: ["blocked.test"],
        outbound: { tls: { mode: "required" }, nextHop: { host: blocked.host, port: blocked.port } },
      },
    ],
    // long enough that only `queue retry` brings a second attempt during the test
    queue: { dir: join(work, "queue"), maxAge: 7200, retry: { initial: 3600, max: 3600 }, workers: 4 },
  });
  await writeConfigDir(join(work, "config"), {
    "config.json": JSON.stringify(cfg),
    "tls/tls.crt": await readFile(cert.certFile),
    "tls/tls.key": await readFile(cert.keyFile),
    "secrets/admin/token": `${TOKEN}\n`,
  });
  tokenFile = join(work, "token");
  await writeFile(tokenFile, TOKEN);
  ({ relay, logs } = await startRelay(join(work, "config")));
});

after(async () => {
  await relay?.stop();
  await proxy?.stop();
  await blocked?.stop();
  await sink?.close();
  await rm(work, { recursive: true, force: true });
});

describe("sealpost queue", () => {
  let stuck: string;

  it("list and show: a message behind a STARTTLS-stripping firewall, with the reason", async () => {
    stuck = await send("bob@partner.test");
    await attempted(stuck);
    assert.equal(proxy.sawMailFrom, false, "nothing went out in clear");
    const list = await cli("list", "--token-file", tokenFile);
    process.stdout.write(`\n$ sealpost queue list\n${list.stdout}`);
    assert.equal(list.code, 0, list.stderr);
    const hop = `127.0.0.1:${proxy.port}`;
    assert.match(list.stdout, /^ID +AGE +ATTEMPTS +FROM +PENDING +REASON\n/);
    assert.match(
      list.stdout,
      new RegExp(
        `${stuck} +\\S+ +1 +app@client\\.test +1/1 +STARTTLS not offered by ${hop}: possible stripping firewall\\n`,
      ),
    );
    const show = await cli("show", stuck, "--token-file", tokenFile);
    process.stdout.write(`\n$ sealpost queue show ${stuck}\n${show.stdout}`);
    assert.equal(show.code, 0, show.stderr);
    assert.match(
      show.stdout,
      /bob@partner\.test {2}pending {2}policy mail\/partner \(tls required\) via 127\.0\.0\.1:\d+/,
    );
    assert.match(
      show.stdout,
      new RegExp(`deferred: STARTTLS not offered by ${hop}: possible stripping firewall`),
    );
  });

  it("the /queue endpoints need the token", async () => {
    const none = await cli("list");
    assert.equal(none.code, 1);
    assert.match(none.stderr, /missing or wrong bearer token/);
    assert.equal((await api("/queue", { headers: { authorization: "Bearer wrong" } })).status, 401);
    assert.equal((await api(`/queue/${stuck}`, { method: "DELETE" })).status, 401);
    assert.equal((await api("/status")).status, 200, "probes and /status stay open");
    const pub = (await (await api("/status")).json()) as Record<string, unknown>;
    assert.equal(pub.policies, undefined, "the per-policy figures (hosts delivered to) need the token");
  });

  it("/status reports the policy's deferrals", async () => {
    const s = (await (await api("/status", { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      policies: Record<string, { deferrals: number; lastDeferral?: { code?: string } }>;
    };
    assert.ok(s.policies["mail/partner"]!.deferrals >= 1);
    assert.equal(s.policies["mail/partner"]!.lastDeferral?.code, "TLS_NOT_OFFERED");
  });

  it("retry <id>: once the firewall lets STARTTLS through, the message goes out over TLS", async () => {
    proxy.mode = "pass";
    const r = await cli("retry", stuck, "--token-file", tokenFile);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `retrying ${stuck} now\n`);
    const got = await waitFor("delivery", () => sink.messages.find((m) => m.to.includes("bob@partner.test")));
    assert.equal(got.secure, true);
    await waitFor("queue empty", () => (relay.status().queue.depth === 0 ? true : undefined));
    const s = (await (await api("/status", { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      policies: Record<string, { deliveries: number; lastDelivery?: { tlsVersion?: string } }>;
    };
    assert.equal(s.policies["mail/partner"]!.deliveries, 1);
    assert.match(s.policies["mail/partner"]!.lastDelivery?.tlsVersion ?? "", /^TLSv1\.[23]$/);
  });

  it("bounce <id>: the message leaves the queue and its sender gets a failure notice", async () => {
    const id = await send("carol@blocked.test");
    await attempted(id);
    const r = await cli("bounce", id, "--token-file", tokenFile);
    assert.equal(r.code, 0, r.stderr);
    const list = await cli("list", "--token-file", tokenFile, "--json");
    const body = JSON.parse(list.stdout) as {
      messages: { id: string; from: string; recipients: { address: string }[] }[];
    };
    assert.ok(!body.messages.some((m) => m.id === id));
    const dsn = logs.find((l) => l.event === "dsn" && l.queueId === id);
    assert.equal(dsn?.to, "app@client.test", "a DSN to the sender was queued");
    const again = await cli("show", id, "--token-file", tokenFile);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not queued/);
  });
});
