// The message a sender writes in the message-encryption tests (S/MIME, OpenPGP): a multipart with a
// text part and a binary attachment, and the MIME entity (its Content-* fields and body) a gateway
// must encrypt and the recipient must get back byte for byte.
export function sampleMessage(
  tag: string,
  to: string,
  from = "alice@local.test",
): { data: string; entity: Buffer } {
  const attachment = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256)).toString("base64");
  const contentHeaders =
    `Content-Type: multipart/mixed; boundary="sep-${tag}"\r\n` + `Content-Language: en\r\n`;
  const body =
    `--sep-${tag}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
    `Grüße, the secret number is 4711.\r\n` +
    `--sep-${tag}\r\nContent-Type: application/octet-stream; name=data.bin\r\n` +
    `Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=data.bin\r\n\r\n` +
    `${attachment.replace(/(.{76})/g, "$1\r\n")}\r\n` +
    `--sep-${tag}--\r\n`;
  const data =
    `From: ${from}\r\nTo: ${to}\r\nSubject: quarterly ${tag}\r\n` +
    `Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <${tag}@local.test>\r\nX-Test-Id: ${tag}\r\n` +
    `MIME-Version: 1.0\r\n${contentHeaders}\r\n${body}`;
  // swaks ends the DATA with CRLF . CRLF, so the last line's CRLF is part of the message exactly once
  return { data: data.replace(/\r\n$/, ""), entity: Buffer.from(`${contentHeaders}\r\n${body}`, "utf8") };
}
