// Where to connect and whom to trust on the network: a host (name or IP address), a port, and an IP
// range in CIDR notation (a CEL rule: a pattern cannot check IP ranges).
import { z } from "zod";
import { cel } from "./cel.js";
import { LABEL } from "./dns-names.js";

/** A host to connect to: a DNS name (a cluster-local short name is fine) or an IPv4/IPv6 address. */
export const HOST_PATTERN = new RegExp(`^(${LABEL}(\\.${LABEL})*|[0-9a-f:.]+)$`);

export const host = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(HOST_PATTERN, "must be a lower-case DNS name or an IP address")
    .describe(description);

export const port = (description: string) => z.int32().min(1).max(65535).describe(description);

/**
 * An IPv4 or IPv6 range in CIDR notation, or a single address. The host bits must be zero: 10.0.0.1/8 is
 * almost always a typo for 10.0.0.0/8 or 10.0.0.1/32, and a relay's trust must not rest on a guess.
 */
export const cidr = (description: string) =>
  z
    .string()
    .min(2)
    .max(64)
    .describe(description)
    .meta(
      cel({
        rule: "isIP(self) || (isCIDR(self) && cidr(self) == cidr(self).masked())",
        message:
          "must be an IP address (192.0.2.10, 2001:db8::1) or a CIDR range with zero host bits (203.0.113.0/24, 2001:db8::/32)",
      }),
    );
