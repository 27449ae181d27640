// One message submitted over plain SMTP on loopback (no TLS, no AUTH: a relayFrom client), for the
// mail tests that only need it queued: resolves with the relay's queue id from its 250 reply.
import assert from "node:assert/strict";
import SMTPConnection from "nodemailer/lib/smtp-connection";

export async function submitPlain(
  port: number,
  m: { from: string; to: string[]; data: string },
): Promise<string> {
  const conn = new SMTPConnection({ host: "127.0.0.1", port, ignoreTLS: true, name: "client.test" });
  await new Promise<void>((res, rej) => {
    conn.once("error", rej);
    conn.connect(() => res());
  });
  const info = await new Promise<SMTPConnection.SentMessageInfo>((res, rej) =>
    conn.send({ from: m.from, to: m.to }, m.data, (e, i) => (e ? rej(e) : res(i))),
  );
  conn.quit();
  const id = /queued as ([0-9A-F]+)/.exec(info.response);
  assert.ok(id, info.response);
  return id[1]!;
}
