// The smallest relay config the schema accepts (no listeners, no policies), for unit tests of
// parts that read only a few of its fields; `queue` and the rest are the test's own.
import { CONFIG_VERSION, type RelayConfigInput } from "../../relay/contract/config.js";

export function minimalRelayConfig(over: Partial<RelayConfigInput> = {}): RelayConfigInput {
  return {
    version: CONFIG_VERSION,
    relay: "mail/edge",
    hostname: "relay.example.com",
    listeners: {},
    tls: { certFile: "tls/tls.crt", keyFile: "tls/tls.key" },
    inbound: {},
    queue: { dir: "/nonexistent/queue" },
    ...over,
  };
}
