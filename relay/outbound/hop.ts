// One next hop of a delivery attempt: the name chosen (MX or configured), the address it resolved to
// and the port. Its own module because every step of the outbound path speaks of hops (mx.ts
// resolves them, loop.ts and attempt-limits.ts filter them, dane.ts and transport-options.ts connect
// to them), and none of those should import another only for this type.
export interface Hop {
  /** Host name (MX target or configured next hop) or an IP literal. */
  name: string;
  /** The address to connect to (resolved). */
  address: string;
  port: number;
}
