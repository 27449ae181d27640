// MailRelay spec.tlsReporting -> the relay config's tlsRpt (RFC 8460 reports the relay sends). Pure.
// Absent or disabled: no tlsRpt, so the relay records and sends nothing. The defaults that name the
// relay (organization, sender) come from spec.hostname here, so the config says what is sent.
import type { RelayConfigInput } from "../../relay/contract/config.js";
import type { MailRelay } from "../api.js";

export function compileTlsReporting(relay: MailRelay): Pick<RelayConfigInput, "tlsRpt"> {
  const t = relay.spec.tlsReporting;
  if (!t?.enabled || !t.contactInfo) return {};
  const host = relay.spec.hostname;
  return {
    tlsRpt: {
      organizationName: t.organizationName ?? host,
      contactInfo: t.contactInfo,
      from: t.reportFrom ?? `tlsrpt-noreply@${host}`,
    },
  };
}
