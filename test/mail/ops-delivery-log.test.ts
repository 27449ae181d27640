// The delivery log against a real Postfix partner (issue 17): one line per recipient attempt, in JSON
// (the default) and in the Postfix-like text format, both written by the same running relay (a pino
// multistream through the real text destination). Every field is checked, in both: sent over
// verified TLS (the fingerprint is openssl's of the partner's certificate), bounced by the partner
// (550 5.1.1), deferred by the policy (wrong CA: TLS_VERIFY_FAILED, no session). The relay's metrics
// endpoint then has the delivery-delay histogram by status and the server certificate's not-after,
// which follows a certificate reload.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { DeliveryLine } from "../../relay/delivery-log.js";
import { createLogger, textDestination } from "../../relay/log.js";
import { makeCa, makeLeaf, type Leaf } from "../support/certs.js";
import { startHostileMta, type HostileMta } from "../support/hostile-mta.js";
import { startPostfix, type PostfixPeer } from "../support/postfix.js";
import { waitFor } from "../support/process.js";
import { relayFixture, type RelayFixture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";

const run = promisify(execFile);

let f: RelayFixture;
let peer: PostfixPeer;
let hostile: HostileMta;
let mxCert: Leaf;
let fingerprint: string;
let relayConfig: Parameters<RelayFixture["configure"]>;
const json: Record<string, unknown>[] = [];
const text: string[] = [];

before(async () => {
  f = await relayFixture("ops-delivery-log", { caName: "Partner CA" });
  const otherCa = await makeCa(join(f.work, "other-ca"), "Other CA");
  mxCert = await makeLeaf(f.ca, { cn: "mx.partner.test", dnsNames: ["mx.partner.test"] });
  const { stdout } = await run("openssl", [
    "x509",
    "-in",
    mxCert.certFile,
    "-noout",
    "-fingerprint",
    "-sha256",
  ]);
  fingerprint = stdout.trim().split("=")[1]!;
  peer = await startPostfix({
    domains: ["partner.test", "wrongca.test"],
    recipients: ["bob@partner.test", "dave@wrongca.test"],
    tls: "require",
    cert: mxCert,
    hostname: "mx.partner.test",
  });
  // a next hop whose RCPT reply tries to forge fields and lines of the text log
  hostile = await startHostileMta({
    rcptReply: Buffer.from(
      "450-4.2.0 busy), status=sent (250 2.0.0 Ok\r\n450 4.2.0 x\x1b[2K\r, relay=forged[192.0.2.9]:25, to=<ceo@bank.test>\r\n",
      "latin1",
    ),
  });
  const tls = (caFile: string) => ({ mode: "verify" as const, caFile, matchNames: ["mx.partner.test"] });
  relayConfig = [
    {
      policies: [
        {
          name: "partners/partner",
          domains: ["partner.test"],
          outbound: { tls: tls("secrets/partner-ca/ca.crt"), nextHop: { host: peer.host, port: peer.port } },
        },
        {
          name: "partners/evil",
          domains: ["evil.test"],
          outbound: { tls: { mode: "none" }, nextHop: { host: hostile.host, port: hostile.port } },
        },
        {
          name: "partners/wrongca",
          domains: ["wrongca.test"],
          outbound: { tls: tls("secrets/other-ca/ca.crt"), nextHop: { host: peer.host, port: peer.port } },
        },
      ],
    },
    {
      files: {
        "secrets/partner-ca/ca.crt": await readFile(f.ca.certFile),
        "secrets/other-ca/ca.crt": await readFile(otherCa.certFile),
      },
    },
  ];
  await f.configure(...relayConfig);
  const jsonSink = {
    write: (s: string) => {
      for (const l of s.split("\n")) if (l.trim()) json.push(JSON.parse(l) as Record<string, unknown>);
    },
  };
  const textSink = { write: (s: string) => void text.push(...s.split("\n").filter((l) => l.trim())) };
  const logger = createLogger(
    pino.multistream([
      { stream: jsonSink, level: "debug" },
      { stream: textDestination(textSink), level: "debug" },
    ]),
    "debug",
  );
  await f.start({ logger });
});

after(async () => {
  await f?.stop(async () => {
    await hostile?.close();
    await peer?.stop();
  });
});

async function submit(to: string, tag: string): Promise<string> {
  const r = await swaks({
    server: "127.0.0.1",
    port: f.ports.smtp,
    from: "alice@local.test",
    to,
    headers: { "Message-Id": `<${tag}@local.test>`, "X-Test-Id": tag },
    subject: tag,
  });
  assert.equal(r.code, 0, r.transcript);
  return /queued as (\w+)/.exec(r.queued?.lines.join(" ") ?? "")![1]!;
}

/** The JSON line (parsed with the shared type) and the text line of one recipient's attempt. */
async function lines(queueId: string, to: string, status: string) {
  const j = await waitFor(
    `json line ${status}`,
    () =>
      json.find(
        (l) => l.event === "recipient" && l.queueId === queueId && l.to === to && l.status === status,
      ),
    30_000,
  );
  const t = await waitFor(
    `text line ${status}`,
    () => text.find((l) => l.includes(` ${queueId}: to=<${to}>,`) && l.includes(`status=${status} (`)),
    5_000,
  );
  return { json: DeliveryLine.parse(j), text: parseText(t) };
}

/** The text format, parsed independently of the relay's code (Postfix-like `k=v, ` pairs). */
function parseText(line: string): Record<string, string> {
  const m = /^(\S+) (\w+) relay recipient: (\w+): (.*), status=(\w+) \((.*)\)$/.exec(line);
  assert.ok(m, `not a delivery text line: ${line}`);
  const out: Record<string, string> = {
    time: m[1]!,
    level: m[2]!,
    queueId: m[3]!,
    status: m[5]!,
    response: m[6]!.startsWith('"') ? (JSON.parse(m[6]!) as string) : m[6]!,
  };
  const re = /([a-z-]+)=("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const p of m[4]!.matchAll(re))
    out[p[1]!] = p[2]!.startsWith('"') ? (JSON.parse(p[2]!) as string) : p[2]!;
  return out;
}

/** Every field of the JSON line appears in the text line with the same value. */
function sameInBoth(j: DeliveryLine, t: Record<string, string>): void {
  assert.equal(t.queueId, j.queueId);
  assert.equal(t.to, `<${j.to}>`);
  assert.equal(t.from, `<${j.from}>`);
  assert.equal(t.size, String(j.size));
  assert.equal(t["message-id"], j.messageId === undefined ? undefined : `<${j.messageId}>`);
  assert.equal(t.relay, j.relay);
  assert.equal(Number(t.delay), j.delay);
  const d = t.delays!.split("/").map(Number);
  assert.deepEqual(d, [j.delays.beforeQueue, j.delays.inQueue, j.delays.connection, j.delays.transmission]);
  assert.equal(t.dsn, j.dsn);
  assert.equal(t.status, j.status);
  assert.equal(t.code, j.code);
  assert.equal(t.attempt, String(j.attempt));
  assert.equal(t.response, j.response);
  assert.equal(t.policy, j.tls.policy);
  assert.equal(t.mode, j.tls.mode);
  assert.equal(t.level, j.tls.level);
  assert.equal(t.why, j.tls.why);
  assert.equal(t.tls, j.tls.version);
  assert.equal(t.cipher, j.tls.cipher);
  assert.equal(t.verified, j.tls.verified ? "yes" : "no");
  assert.equal(t.fingerprint, j.tls.peerFingerprint);
}

/** The delays add up to the delay (each rounded to the millisecond). */
function delaysAddUp(j: DeliveryLine): void {
  const sum = j.delays.beforeQueue + j.delays.inQueue + j.delays.connection + j.delays.transmission;
  assert.ok(Math.abs(sum - j.delay) <= 0.005, `delays ${JSON.stringify(j.delays)} vs delay ${j.delay}`);
}

describe("delivery log, JSON and text", () => {
  it("sent over verified TLS: relay, delays, dsn, TLS session and the partner certificate's fingerprint", async () => {
    const id = await submit("bob@partner.test", "log-sent");
    const { json: j, text: t } = await lines(id, "bob@partner.test", "sent");
    await peer.waitForMessages(1);
    assert.equal(j.from, "alice@local.test");
    assert.equal(j.messageId, "log-sent@local.test");
    assert.ok(j.size > 100, `size ${j.size}`);
    assert.equal(j.relay, `${peer.host}[${peer.host}]:${peer.port}`);
    assert.equal(j.dsn, "2.0.0");
    assert.equal(j.code, "DELIVERED");
    assert.match(j.response, /^250 2\.0\.0 Ok: queued as \w+/);
    assert.equal(j.attempt, 0);
    assert.equal(j.tls.policy, "partners/partner");
    assert.equal(j.tls.mode, "verify");
    assert.equal(j.tls.level, "verify");
    assert.ok(j.tls.why && j.tls.why.length > 0);
    assert.match(j.tls.version ?? "", /^TLSv1\.[23]$/);
    assert.ok(j.tls.cipher && j.tls.cipher.length > 0);
    assert.equal(j.tls.verified, true);
    assert.equal(j.tls.peerFingerprint, fingerprint);
    assert.ok(j.delays.transmission > 0, "a transaction with Postfix takes time");
    assert.ok(j.delays.connection > 0, "connect + STARTTLS take time");
    delaysAddUp(j);
    sameInBoth(j, t);
    assert.equal(t.level, "verify");
  });

  it("bounced by the partner: 550 5.1.1, status=bounced, TLS session still logged", async () => {
    const id = await submit("nobody@partner.test", "log-bounced");
    const { json: j, text: t } = await lines(id, "nobody@partner.test", "bounced");
    assert.equal(j.dsn, "5.1.1");
    assert.equal(j.code, "REJECTED");
    assert.match(j.response, /^550 5\.1\.1 /);
    assert.equal(j.tls.verified, true);
    assert.equal(j.tls.peerFingerprint, fingerprint);
    delaysAddUp(j);
    sameInBoth(j, t);
  });

  it("deferred by the policy (wrong CA): no verified session, the reason code and why", async () => {
    const id = await submit("dave@wrongca.test", "log-deferred");
    const { json: j, text: t } = await lines(id, "dave@wrongca.test", "deferred");
    assert.equal(j.code, "TLS_VERIFY_FAILED");
    assert.equal(j.dsn, "4.4.0");
    assert.equal(j.relay, `${peer.host}[${peer.host}]:${peer.port}`);
    assert.equal(j.tls.policy, "partners/wrongca");
    assert.equal(j.tls.mode, "verify");
    assert.equal(j.tls.verified, false);
    assert.equal(j.tls.peerFingerprint, undefined);
    delaysAddUp(j);
    sameInBoth(j, t);
    assert.equal(
      (await peer.messages()).filter((m) => m.headers["x-test-id"]?.[0] === "log-deferred").length,
      0,
    );
  });

  // The attacker's review of issue 17: Message-ID, MAIL FROM and the next hop's reply are the
  // sender's and the partner's text; in the text format they must not forge a field or a line.
  it("log injection: a Message-ID folded over lines and a reply with look-alike fields stay one line, parsed back exactly", async () => {
    const forgedLine =
      "2026-12-04T00:00:00.000Z info relay recipient: FORGED: to=x@y.test, status=sent (250 ok)";
    const messageId = `evil\r\n , status=sent, relay=forged[192.0.2.9]:25 (250 ok)\r\n\t${forgedLine}\x0b\x1b[2K\u0085\u2028 k=v@local.test`;
    const from = '"a,status=sent(x)"@local.test';
    const r = await swaks({
      server: "127.0.0.1",
      port: f.ports.smtp,
      from,
      to: "victim@evil.test",
      data: `From: alice@local.test\r\nTo: victim@evil.test\r\nSubject: log-injection\r\nMessage-Id: <${messageId}>\r\n\r\nbody\r\n`,
    });
    assert.equal(r.code, 0, r.transcript);
    const id = r.queueId!;
    const j = DeliveryLine.parse(
      await waitFor(
        "json line",
        () => json.find((l) => l.event === "recipient" && l.queueId === id && l.status === "deferred"),
        30_000,
      ),
    );
    // the attacker's text is all there, in the JSON line
    assert.equal(j.from, from);
    assert.match(j.messageId ?? "", /^evil .*status=sent.*FORGED.*k=v@local\.test$/s);
    assert.match(j.response, /status=sent \(250 2\.0\.0 Ok.*relay=forged/);
    // the text format: exactly one line for the attempt, none forged, no control character
    await waitFor("text line", () => text.find((l) => l.includes(` ${id}: `)), 5_000);
    const t = text.filter((l) => l.includes(` ${id}: `) && l.includes("status=deferred"));
    assert.equal(t.length, 1, t.join("\n"));
    assert.deepEqual(
      text.filter((l) => /FORGED/.test(l) && !l.includes(` ${id}: `)),
      [],
      "no line of the attacker's own",
    );
    // eslint-disable-next-line no-control-regex -- what must not reach the log
    assert.doesNotMatch(t[0]!, /[\x00-\x1f\x7f-\x9f\u2028\u2029]/);
    assert.equal(t[0]!.split(", status=").length, 2, "one status field");
    assert.equal(t[0]!.split("relay=").length, 2, "one relay field");
    const parsed = parseText(t[0]!);
    assert.equal(parsed.status, "deferred");
    sameInBoth(j, parsed);
    // every JSON line is still one valid JSON record
    assert.ok(json.every((l) => typeof l === "object"));
  });

  it("metrics: delivery delay by status, the server certificate's expiry (updated on reload)", async () => {
    const scrape = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${f.ports.admin}/metrics`)).text();
    const value = (text: string, series: string): number => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      assert.ok(line, `${series} in /metrics`);
      return Number(line.split(" ")[1]);
    };
    const notAfter = async (certFile: string): Promise<number> => {
      const { stdout } = await run("openssl", ["x509", "-in", certFile, "-noout", "-enddate"]);
      return Date.parse(stdout.trim().replace(/^notAfter=/, "")) / 1000;
    };
    await waitFor("the DSN's own outcome", () =>
      json.find((l) => l.event === "recipient" && l.to === "alice@local.test" && l.status !== "deferred"),
    );
    let text = await scrape();
    // one observation per final line of the delivery log: the earlier tests' sent and bounced
    // recipients (and the bounce's DSN to alice@local.test, which bounces too); deferred is not final
    const final = (status: string): number =>
      json.filter((l) => l.event === "recipient" && l.status === status).length;
    assert.equal(final("sent"), 1);
    assert.ok(final("bounced") >= 1);
    assert.equal(value(text, 'sealpost_relay_delivery_delay_seconds_count{status="sent"}'), final("sent"));
    assert.equal(
      value(text, 'sealpost_relay_delivery_delay_seconds_count{status="bounced"}'),
      final("bounced"),
    );
    assert.equal(value(text, 'sealpost_relay_delivery_delay_seconds_bucket{le="+Inf",status="sent"}'), 1);
    assert.ok(value(text, 'sealpost_relay_delivery_delay_seconds_sum{status="sent"}') > 0);
    assert.doesNotMatch(text, /delivery_delay_seconds_count\{status="deferred"\}/);
    assert.equal(
      value(text, "sealpost_relay_certificate_expiry_timestamp_seconds"),
      await notAfter(f.relayCert.certFile),
    );

    const renewed = await makeLeaf(f.ca, {
      cn: "relay.test",
      dnsNames: ["relay.test"],
      // not the fixture's 30 days: made within the same second, the two would expire at once
      days: 60,
      name: "renewed",
    });
    const [patch, o] = relayConfig;
    await f.configure(patch, { ...o, cert: renewed });
    await f.relay!.checkConfig();
    const expected = await notAfter(renewed.certFile);
    assert.notEqual(expected, await notAfter(f.relayCert.certFile));
    text = await scrape();
    assert.equal(value(text, "sealpost_relay_certificate_expiry_timestamp_seconds"), expected);
  });
});
