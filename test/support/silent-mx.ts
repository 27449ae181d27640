// A mail server that accepts connections and never speaks, or only its greeting (a tarpit MX, as an
// attacker runs one): it counts the connections open now, the most at once and all so far, so the
// bounce-lane attack tests can tell how many of the relay's delivery workers it holds. close() ends every connection. And the
// two sides of those tests on the wire: an outsider's forged bounce, a legitimate message delivered.
import assert from "node:assert/strict";
import * as net from "node:net";
import { waitFor } from "./process.js";
import type { RelayConfigInput } from "../../relay/contract/config.js";
import { rawSession, TEST_INTERNAL_CIDRS } from "./relay.js";
import type { Zone } from "./dns-server.js";
import { startSink, type Sink } from "./sink.js";
import { swaks } from "./swaks.js";

export interface SilentMx {
  host: string;
  port: number;
  /** Connections open now, the most at once, all so far. */
  open: number;
  max: number;
  total: number;
  /** The open connections (a test may tell whose they are). */
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** Listens on `host`:`port` (an address of the test's own, e.g. 127.0.0.5); `greeting`: its only words. */
export async function startSilentMx(host: string, port: number, greeting?: string): Promise<SilentMx> {
  const server = net.createServer((s) => {
    if (greeting !== undefined) s.write(`${greeting}\r\n`);
    mx.open++;
    mx.total++;
    mx.max = Math.max(mx.max, mx.open);
    mx.sockets.add(s);
    s.on("error", () => undefined);
    s.on("close", () => {
      mx.open--;
      mx.sockets.delete(s);
    });
  });
  const mx: SilentMx = {
    host,
    port,
    open: 0,
    max: 0,
    total: 0,
    sockets: new Set(),
    close: () => {
      for (const s of mx.sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return mx;
}

/**
 * An outsider's message the internal server will refuse: MAIL FROM `forged` (whose domain's MX the
 * attacker runs), RCPT TO `to` (a local address), answered 250; the relay then bounces it to `forged`.
 */
export async function forgedBounce(smtpPort: number, forged: string, to: string): Promise<void> {
  const s = await rawSession(smtpPort);
  try {
    await s.cmd("EHLO attacker.test");
    assert.match(await s.cmd(`MAIL FROM:<${forged}>`), /^250/);
    assert.match(await s.cmd(`RCPT TO:<${to}>`), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    assert.match(await s.data(`Subject: attack\n\nx\n`), /^250 2\.0\.0 Ok: queued/);
  } finally {
    s.close();
  }
}

/** A legitimate sender's message to alice@local.test through `smtpPort`, waited for at `sink`. */
export async function legitDelivered(smtpPort: number, sink: Sink, tag = "legit"): Promise<void> {
  const r = await swaks({
    server: "127.0.0.1",
    port: smtpPort,
    from: "friend@partner.test",
    to: "alice@local.test",
    headers: { "X-Test-Id": tag },
  });
  assert.equal(r.code, 0, r.transcript);
  await waitFor(
    `the ${tag} message delivered`,
    () => sink.messages.find((m) => m.data.toString().includes(`X-Test-Id: ${tag}`)),
    20_000,
  );
}

/**
 * The queue and attempt deadline of a tarpit test: the defaults (60 s / 3600 s retries for a 600 s
 * attempt deadline) scaled down to `attemptSeconds`, with `workers` queue workers.
 */
export function scaledDeadlines(
  queueDir: string,
  attemptSeconds: number,
  workers: number,
): Pick<RelayConfigInput, "queue" | "delivery"> {
  return {
    queue: {
      dir: queueDir,
      retry: { initial: (60 / 600) * attemptSeconds, max: (3600 / 600) * attemptSeconds },
      workers,
    },
    delivery: { attemptTimeoutSeconds: attemptSeconds, allowedInternalCidrs: TEST_INTERNAL_CIDRS },
  };
}

/** The internal server of a tarpit test: alice@ exists, every other address is refused 550 5.1.1. */
export function aliceOnlySink(): Promise<Sink> {
  return startSink({
    rcptReply: (a) =>
      a.toLowerCase().startsWith("alice@") ? undefined : "550 5.1.1 <" + a + ">: no such user",
  });
}

/**
 * The attacker's DNS for TLS-RPT reports into tarpits: t0.attacker.test (MX mx.attacker.test at
 * `mx`) publishes a TLS-RPT policy whose rua lists rpt@ each of `receivers`, every receiver's MX the
 * tarpit at `tarpit`.
 */
export function tlsRptTarpitZone(mx: string, tarpit: string, receivers: readonly string[]): Zone {
  const zone: Zone = {
    "mx.attacker.test": { A: [mx] },
    "tarpit.attacker.test": { A: [tarpit] },
    "t0.attacker.test": { MX: [{ preference: 10, exchange: "mx.attacker.test" }] },
    "_smtp._tls.t0.attacker.test": {
      TXT: [`v=TLSRPTv1; rua=${receivers.map((r) => `mailto:rpt@${r}`).join(",")}`],
    },
  };
  for (const r of receivers) zone[r] = { MX: [{ preference: 10, exchange: "tarpit.attacker.test" }] };
  return zone;
}
