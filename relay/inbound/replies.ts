// SMTP replies with the right enhanced status codes. smtp-server derives the enhanced code of an
// error reply from its basic code alone (550 always becomes 5.1.1, even for "Relaying denied").
// This wraps its reply writer once: a reply text that already starts with an enhanced status code
// is sent as is, without a derived one in front. A refused AUTH in a cleartext session (the relay
// disables AUTH there, so it is not advertised) gets RFC 4954's 538 instead of "not recognized".
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const PATCHED = Symbol.for("sealpost.replies");

type Send = (code: number, data?: string | string[] | null, context?: string | false) => void;

export function installReplyCodes(): void {
  const proto = SMTPConnection.prototype as unknown as Record<symbol, boolean> & {
    send: Send;
    secure: boolean;
  };
  if (proto[PATCHED]) return;
  const original = proto.send;
  proto.send = function (this: SMTPConnection, code, data, context) {
    if (code === 500 && context === "AUTH" && !this.secure)
      return original.call(
        this,
        538,
        "5.7.11 Encryption required for requested authentication mechanism",
        false,
      );
    if (typeof data === "string" && ENHANCED.test(data)) return original.call(this, code, data, false);
    return original.call(this, code, data, context);
  };
  proto[PATCHED] = true;
}

/** An error for an smtp-server callback that produces exactly `code text`. */
export function smtpError(code: number, text: string): Error & { responseCode: number } {
  const e = new Error(text) as Error & { responseCode: number };
  e.responseCode = code;
  return e;
}
