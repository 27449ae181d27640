// An Internet client that nobody checked (no relayFrom, no login), writing to a local address with a
// MAIL FROM at a domain whose MX the attacker runs: the sender of the stranger-DSN tests, and where
// its bounce lands.
import assert from "node:assert/strict";
import { waitFor } from "./process.js";
import { rawSession } from "./relay.js";
import type { Sink } from "./sink.js";

/** The attacker's MX address (loopback) and the forged sender whose domain it serves. */
export const ATTACKER_MX = "127.0.0.5";
export const FORGED_SENDER = "probe@victim.test";

/** DNS records for victim.test's MX at ATTACKER_MX (startDnsServer's zone form). */
export const attackerZone = {
  "victim.test": { MX: [{ preference: 10, exchange: "mx.attacker.test" }] },
  "mx.attacker.test": { A: [ATTACKER_MX] },
};

/** Sends a message from FORGED_SENDER to `rcpt` without logging in; the relay answers 250. */
export async function sendAsStranger(smtpPort: number, rcpt: string, messageId: string): Promise<void> {
  const s = await rawSession(smtpPort);
  try {
    await s.cmd("EHLO attacker.example");
    assert.match(await s.cmd(`MAIL FROM:<${FORGED_SENDER}>`), /^250/);
    assert.match(await s.cmd(`RCPT TO:<${rcpt}>`), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    assert.match(
      await s.data(`From: ${FORGED_SENDER}\nMessage-ID: <${messageId}>\nSubject: hi\n\nhi\n`),
      /^250/,
    );
  } finally {
    s.close();
  }
}

/** The text of the DSN about message `messageId` that reached the attacker's MX. */
export async function strangerDsn(attackerMx: Sink, messageId: string): Promise<string> {
  const dsn = await waitFor(
    `DSN of ${messageId} at the attacker's MX`,
    () =>
      attackerMx.messages.find(
        (m) => m.to.includes(FORGED_SENDER) && m.data.toString().includes(`<${messageId}>`),
      ),
    30_000,
  );
  return dsn.data.toString();
}

/** The first line of `text` naming one of `secrets`, for an assertion's message. */
export function leakedLine(text: string, secrets: readonly string[]): string | undefined {
  return text.split(/\r?\n/).find((l) => secrets.some((s) => l.includes(s)));
}
