// Outbound TLS mode -> SMTP client connection options, pure. Fail closed: every mode that requires
// TLS makes the client send STARTTLS and error out when that fails; `deliver` additionally checks
// the connection really is encrypted (and verified, under `verify`) before any AUTH or MAIL FROM.
//   none           never STARTTLS (AUTH impossible: it is only ever sent inside TLS)
//   opportunistic  STARTTLS when offered, no verification; clear only when it is not offered
//   required       STARTTLS or defer, no verification
//   verify         STARTTLS + chain to the CA file (or the system roots) + a name match, or defer
//   mta-sts, dane  refused here: deliver.ts resolves them (mta-sts.ts, dane.ts) into the modes above
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from "node:tls";
import type { SMTPConnectionOptions } from "nodemailer/lib/smtp-connection";
import type { Outbound, TlsMode } from "../config/schema.js";
import { fail, ok, type Failure, type Result } from "../result.js";

export interface Hop {
  /** Host name (MX target or configured next hop) or an IP literal. */
  name: string;
  /** The address to connect to (resolved). */
  address: string;
  port: number;
}

export interface Material {
  /** PEM bundle from tls.caFile. */
  ca?: Buffer;
  clientCert?: { cert: Buffer; key: Buffer };
  auth?: { user: string; pass: string };
}

export interface Timeouts {
  connectionMs: number;
  greetingMs: number;
  /** Idle time on the socket (each byte the next hop sends resets it). */
  socketMs: number;
  /**
   * The whole transaction with one next hop (connect to the reply to DATA): a next hop that
   * trickles a reply a byte at a time never trips socketMs, and would hold the worker (and its
   * share of the memory budget) for ever. Long enough for the largest message on a slow link.
   */
  transactionMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectionMs: 30_000,
  greetingMs: 30_000,
  socketMs: 300_000,
  transactionMs: 30 * 60_000,
};

export interface TransportPlan {
  mode: TlsMode;
  options: SMTPConnectionOptions;
  /** After connecting, the session must be encrypted, else defer (TLS_REQUIRED). */
  requireSecure: boolean;
  /** The peer certificate must chain to a trusted root and carry one of expectedNames. */
  verify: boolean;
  expectedNames: string[];
  /** AUTH credentials; only ever used on an encrypted session. */
  auth?: { user: string; pass: string };
  /** Connections are reused only between plans with the same key. */
  poolKey: string;
  /** Checked once the session is encrypted, before AUTH or MAIL FROM: a failure ends it (DANE). */
  peerCheck?(socket: TLSSocket): Failure | undefined;
}

/** A checkServerIdentity that accepts a certificate carrying any of `names`. */
export function identityChecker(
  names: readonly string[],
): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    for (const n of names) if (checkServerIdentity(n, cert) === undefined) return undefined;
    const e = new Error(`certificate does not match ${names.join(", ")}`) as Error & { code: string };
    e.code = "ERR_TLS_CERT_ALTNAME_INVALID";
    return e;
  };
}

function digest(x: unknown): string {
  return createHash("sha256").update(JSON.stringify(x)).digest("hex").slice(0, 32);
}

export function planTransport(
  outbound: Outbound,
  hop: Hop,
  material: Material,
  ehloName: string,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): Result<TransportPlan> {
  const mode = outbound.tls.mode;
  if (mode === "mta-sts" || mode === "dane")
    return fail("MODE_NOT_IMPLEMENTED", true, `mode not implemented: ${mode}`);
  if (material.auth && mode === "none")
    return fail(
      "AUTH_REQUIRES_TLS",
      true,
      "policy has an AUTH credential but TLS mode none: AUTH is never sent in clear",
    );
  const verify = mode === "verify";
  const requireSecure = mode === "required" || mode === "verify";
  const expectedNames = verify ? (outbound.tls.matchNames ?? [hop.name]) : [];
  const servername = isIP(hop.name) ? undefined : hop.name;
  const tls: NonNullable<SMTPConnectionOptions["tls"]> = {
    minVersion: outbound.tls.minVersion,
    rejectUnauthorized: verify,
    ...(servername ? { servername } : {}),
    ...(verify && material.ca ? { ca: material.ca } : {}),
    ...(verify ? { checkServerIdentity: identityChecker(expectedNames) } : {}),
    ...(material.clientCert ? { cert: material.clientCert.cert, key: material.clientCert.key } : {}),
  };
  const options: SMTPConnectionOptions = {
    host: hop.address,
    port: hop.port,
    ...(servername ? { servername } : {}),
    name: ehloName,
    secure: false,
    ignoreTLS: mode === "none",
    requireTLS: requireSecure,
    opportunisticTLS: false,
    connectionTimeout: timeouts.connectionMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
    tls,
  };
  const poolKey = digest({
    a: hop.address,
    p: hop.port,
    n: hop.name,
    mode,
    min: outbound.tls.minVersion,
    names: expectedNames,
    ca: material.ca ? digest(material.ca.toString("base64")) : null,
    cc: material.clientCert ? digest(material.clientCert.cert.toString("base64")) : null,
    auth: material.auth ? digest([material.auth.user, material.auth.pass]) : null,
    ehloName,
  });
  return ok({
    mode,
    options,
    requireSecure,
    verify,
    expectedNames,
    ...(material.auth ? { auth: material.auth } : {}),
    poolKey,
  });
}
