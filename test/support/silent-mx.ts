// A mail server that accepts connections and never speaks, or only its greeting (a tarpit MX, as an
// attacker runs one): it counts the connections open now, the most at once and all so far, so the
// bounce-lane attack tests can tell how many of the relay's delivery workers it holds. close() ends every connection. And the
// two sides of those tests on the wire: an outsider's forged bounce, a legitimate message delivered.
import assert from "node:assert/strict";
import * as net from "node:net";
import { waitFor } from "./process.js";
import { rawSession } from "./relay.js";
import type { Sink } from "./sink.js";
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
