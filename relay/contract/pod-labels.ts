// The labels a relay pod carries, as the operator renders them (operator/render/meta.ts re-exports
// these) and as the relay's fleet tools find its peers by (relay/queue/fleet.ts): one definition, in
// the contract, so neither side imports the other.
export const RELAY_NAME_LABEL = "app.kubernetes.io/name";
export const RELAY_APP = "sealpost-relay";
export const RELAY_LABEL = "sealpost.dev/relay";

/** The labels selecting one MailRelay's pods. */
export function relaySelector(relay: string): Record<string, string> {
  return { [RELAY_NAME_LABEL]: RELAY_APP, [RELAY_LABEL]: relay };
}
