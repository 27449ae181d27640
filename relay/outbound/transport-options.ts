// Resolved TLS level (tls-policy.ts) -> SMTP client connection options, pure. Fail closed: every
// level that requires TLS makes the client send STARTTLS and error out when that fails; `deliver`
// additionally checks the session reached the level (admits) before any AUTH or MAIL FROM.
//   none     never STARTTLS (AUTH impossible: it is only ever sent inside TLS)
//   may      STARTTLS when offered, no verification; clear only when it is not offered
//   encrypt  STARTTLS or defer, no verification
//   verify   STARTTLS + chain to the CA file (or the system roots) + one of the decided names
//   dane     STARTTLS + the chain matches one of the host's usable TLSA records (peerCheck)
//   fingerprint  STARTTLS + the leaf's key is one of the pins (peerCheck), no CA or name check
// pins on any other level: one more peerCheck (pins.ts). An audited policy (tls-audit.ts) is only
// evaluated on the session (`audit`), never part of what the connection accepts.
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import type { TLSSocket } from "node:tls";
import type { SMTPConnectionOptions } from "nodemailer/lib/smtp-connection";
import type { TlsVersion } from "../contract/config.js";
import { fail, ok, type Failure, type Result } from "../contract/failure.js";
import { rootCertificates } from "node:tls";
import { MANDATORY_CIPHERS, MIN_DH_BITS } from "./cipher-suites.js";
import { matchChain, peerChain, tlsaText } from "./dane.js";
import type { Hop } from "./hop.js";
import { checkPins } from "./pins.js";
import { serverNameChecker } from "./server-names.js";
import { auditSession, type AuditTarget, type AuditVerdict } from "./tls-audit.js";
import type { TlsDecision, TlsLevel, TlsResolution } from "./tls-policy.js";

export interface Material {
  /** PEM bundle from tls.caFile. */
  ca?: Buffer;
  /** PEM bundle from tls.audit.caFile (shadow mode's verify). */
  auditCa?: Buffer;
  clientCert?: { cert: Buffer; key: Buffer };
  auth?: { user: string; pass: string };
}

export interface Timeouts {
  connectionMs: number;
  greetingMs: number;
  /** Idle time on the socket (each byte the next hop sends resets it). */
  socketMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectionMs: 30_000,
  greetingMs: 30_000,
  socketMs: 300_000,
};

export interface TransportPlan {
  /** The resolved level this plan enforces. */
  level: TlsLevel;
  minVersion: TlsVersion;
  options: SMTPConnectionOptions;
  /** After connecting, the session must be encrypted, else defer (TLS_REQUIRED). */
  requireSecure: boolean;
  /** The peer certificate must chain to a trusted root and carry one of expectedNames. */
  verify: boolean;
  expectedNames: string[];
  /** AUTH credentials, only when the decision allows them; only ever used on an encrypted session. */
  auth?: { user: string; pass: string };
  /** Connections are reused only between plans with the same key. */
  poolKey: string;
  /** Pinned keys the leaf must carry (checked by peerCheck). */
  pins: string[];
  /** Checked once the session is encrypted, before AUTH or MAIL FROM: a failure ends it (DANE, pins). */
  peerCheck?(socket: TLSSocket): Failure | undefined;
  /** dane: the TLSA record (text) the presented chain matched, for the encryption receipt. */
  daneMatch?(socket: TLSSocket): string | undefined;
  /** Shadow mode: the audited policy's verdict on an established session (never a refusal). */
  audit?(socket: TLSSocket | undefined, version: string | undefined): AuditVerdict;
}

function digest(x: unknown): string {
  return createHash("sha256").update(JSON.stringify(x)).digest("hex").slice(0, 32);
}

/** The connection plan for one hop under a resolved decision (tls-policy.ts). */
export function planTransport(
  decision: TlsDecision,
  minVersion: TlsVersion,
  hop: Hop,
  material: Material,
  ehloName: string,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
  now: () => Date = () => new Date(),
  audit?: { decision: TlsResolution; minVersion: TlsVersion },
): Result<TransportPlan> {
  const { level } = decision;
  const auth = decision.auth ? material.auth : undefined;
  if (auth && level === "none")
    return fail(
      "AUTH_REQUIRES_TLS",
      true,
      "policy has an AUTH credential but TLS level none: AUTH is never sent in clear",
    );
  const verify = level === "verify";
  const pins = decision.pins;
  const requireSecure =
    level === "encrypt" ||
    level === "verify" ||
    level === "dane" ||
    level === "fingerprint" ||
    pins.length > 0;
  const expectedNames = verify ? decision.names : [];
  const servername = isIP(hop.name) ? undefined : hop.name;
  const tls: NonNullable<SMTPConnectionOptions["tls"]> = {
    minVersion,
    // mandatory TLS: AEAD suites with forward secrecy only (cipher-suites.ts); the level is in the pool key
    ...(requireSecure ? { ciphers: MANDATORY_CIPHERS, minDHSize: MIN_DH_BITS } : {}),
    rejectUnauthorized: verify,
    ...(servername ? { servername } : {}),
    // verify refuses a chain outside it; other levels only read the verdict (MTA-STS testing reports it)
    ...(material.ca ? { ca: material.ca } : {}),
    ...(verify ? { checkServerIdentity: serverNameChecker(expectedNames) } : {}),
    ...(material.clientCert ? { cert: material.clientCert.cert, key: material.clientCert.key } : {}),
  };
  const options: SMTPConnectionOptions = {
    host: hop.address,
    port: hop.port,
    ...(servername ? { servername } : {}),
    name: ehloName,
    secure: false,
    ignoreTLS: level === "none",
    requireTLS: requireSecure,
    opportunisticTLS: false,
    connectionTimeout: timeouts.connectionMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
    tls,
  };
  const records = level === "dane" ? decision.tlsa : [];
  const daneNames = level === "dane" ? decision.names : [];
  const poolKey = digest({
    a: hop.address,
    p: hop.port,
    n: hop.name,
    level,
    min: minVersion,
    names: expectedNames,
    tlsa: records.map(tlsaText),
    daneNames,
    pins,
    audit: audit ? JSON.stringify(audit.decision) + audit.minVersion : null,
    auditCa: material.auditCa ? digest(material.auditCa.toString("base64")) : null,
    ca: material.ca ? digest(material.ca.toString("base64")) : null,
    cc: material.clientCert ? digest(material.clientCert.cert.toString("base64")) : null,
    auth: auth ? digest([auth.user, auth.pass]) : null,
    ehloName,
  });
  return ok({
    level,
    minVersion,
    options,
    requireSecure,
    verify,
    expectedNames,
    ...(auth ? { auth } : {}),
    poolKey,
    pins,
    ...(level === "dane" || pins.length
      ? {
          peerCheck(socket: TLSSocket): Failure | undefined {
            const chain = peerChain(socket);
            if (pins.length) {
              const f = checkPins(chain, pins, hop.name);
              if (f) return f;
            }
            if (level !== "dane") return undefined;
            const m = matchChain(chain, records, daneNames, now());
            return m.ok ? undefined : fail("DANE_TLSA_MISMATCH", true, `DANE: ${m.reason} (${hop.name})`);
          },
          daneMatch(socket: TLSSocket): string | undefined {
            const m = matchChain(peerChain(socket), records, daneNames, now());
            return m.ok ? tlsaText(m.record) : undefined;
          },
        }
      : {}),
    ...(audit
      ? {
          audit(socket: TLSSocket | undefined, version: string | undefined): AuditVerdict {
            const d = audit.decision;
            const target: AuditTarget = {
              ...audit,
              ...(material.auditCa ? { ca: material.auditCa } : {}),
              ...(d.ok && d.level === "dane"
                ? {
                    daneCheck: (chain: readonly Buffer[], at: Date) => {
                      const m = matchChain(chain, d.tlsa, d.names, at);
                      return m.ok ? undefined : m.reason;
                    },
                  }
                : {}),
            };
            return auditSession(
              target,
              {
                tls: socket !== undefined,
                ...(version ? { version } : {}),
                ...(socket?.getCipher()?.name ? { cipher: socket.getCipher().name } : {}),
                chain: socket ? peerChain(socket) : [],
              },
              hop.name,
              rootCertificates,
              now(),
            );
          },
        }
      : {}),
  });
}
