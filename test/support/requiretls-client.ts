// A client submitting a REQUIRETLS message (RFC 8689) to the relay, as the REQUIRETLS tests write it.
import assert from "node:assert/strict";
import { rawSession } from "./relay.js";

/**
 * STARTTLS, then MAIL FROM ... REQUIRETLS from `from` to `rcpt`, a message tagged `tag` (X-Test-Id)
 * whose body says "confidential"; returns the relay's queue id.
 */
export async function submitRequireTls(
  smtpPort: number,
  rcpt: string,
  tag: string,
  from = "alice@local.test",
): Promise<string> {
  const s = await rawSession(smtpPort);
  try {
    await s.cmd("EHLO client.test");
    assert.match(await s.starttls(), /^220/);
    assert.match(await s.cmd("EHLO client.test"), /250[ -]REQUIRETLS/);
    assert.match(await s.cmd(`MAIL FROM:<${from}> REQUIRETLS`), /^250/);
    assert.match(await s.cmd(`RCPT TO:<${rcpt}>`), /^250/);
    assert.match(await s.cmd("DATA"), /^354/);
    const reply = await s.data(
      `From: ${from}\nTo: ${rcpt}\nSubject: ${tag}\nX-Test-Id: ${tag}\n\nconfidential\n`,
    );
    const m = /queued as ([0-9A-F]+)/.exec(reply);
    assert.ok(m, reply);
    return m[1]!;
  } finally {
    s.close();
  }
}
