// The local address of an outbound SMTP connection: TLS-RPT's `sending-mta-ip` (RFC 8460 section
// 4.4) and the attempt log. Read when the TCP connection is established, because a session that
// fails later (a refused or broken STARTTLS handshake) has no socket left to ask by the time its
// failure is classified. nodemailer does not hand the address out; its one connect hook
// (`_onConnect`, called once the socket is connected, as `refuseMissingStartTls` wraps `_actionEHLO`)
// is wrapped here. Without that hook the address stays unknown (reports leave the field out).
import type SMTPConnection from "nodemailer/lib/smtp-connection";

/** Starts watching `conn`; the returned function gives the local address once connected. */
export function watchSourceAddress(conn: SMTPConnection): () => string | undefined {
  let address: string | undefined;
  const c = conn as unknown as { _onConnect?: () => void; _socket?: { localAddress?: string } | false };
  const original = c._onConnect;
  if (typeof original !== "function") return () => undefined;
  c._onConnect = function (this: typeof c) {
    const s = this._socket;
    if (s && typeof s.localAddress === "string")
      address = s.localAddress.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
    original.call(this);
  };
  return () => address;
}
