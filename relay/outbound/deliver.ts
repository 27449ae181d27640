// One delivery attempt for one route group of one message: resolve the next hops, and for each
// (in order) connect with the policy's transport plan, enforce it (encrypted? verified?), AUTH only
// inside TLS, send, and map the replies to per-recipient results. A connection, TLS or AUTH
// failure moves on to the next hop; when none is left the recipients are deferred with the last
// reason. Never a downgrade: nothing is sent on a session that does not meet the policy.
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import { statusFromReply } from "../dsn.js";
import { filterHops, type DestinationFilter } from "../net/address-class.js";
import { bufferBody, type MessageBody } from "../queue/message-body.js";
import { clipped } from "../printable.js";
import { REPLY_READ_MAX, replyText } from "../reply-text.js";
import type { AuditTls, TlsVersion } from "../contract/config.js";
import { errorMessage, fail, ok, type Failure, type Result } from "../contract/failure.js";
import { PARTNER_ISSUER_MAX } from "../contract/status.js";
import type { Dns } from "./mx.js";
import { MAIL_LOOPS, withoutSelf } from "./loop.js";
import { resolveHops } from "./mx.js";
import {
  AttemptBudget,
  DEFAULT_ATTEMPT_LIMITS,
  limitHops,
  Slots,
  untilAborted,
  type AttemptLimits,
} from "./attempt-limits.js";
import { fastDotStuffing } from "./dot-stuff.js";
import { daneTlsRptPolicy, resolveDane, type HostDane } from "./dane.js";
import { DEFAULT_DESTINATION_CONCURRENCY, DestinationSlots, destinationOf } from "./destination-slots.js";
import { certificateProblemOf } from "./certificate-problem.js";
import { makeSecureDns, type SecureDns } from "./dnssec.js";
import type { ConnectionPool, Pooled, SessionInfo } from "./pool.js";
import { carriedPolicy, mxAllowed, type CachedPolicy, type StsLookup, type StsPolicy } from "./mta-sts.js";
import { spkiPin } from "./pins.js";
import { isTlsFailure, requireTlsStatus } from "./requiretls.js";
import { watchSourceAddress } from "./source-address.js";
import { stsTestingVerdict } from "./sts-testing.js";
import {
  admits,
  authAllowed,
  lookupKind,
  resolveTlsPolicy,
  stsApplies,
  type Observed,
  type RoutePolicyInput,
  type TlsResolution,
} from "./tls-policy.js";
import type { AttemptRecord, PeerFacts } from "./attempt-record.js";
import type { TlsRptPolicy } from "./tlsrpt-policy.js";
import { asFallbackSession } from "./tlsrpt-fallback.js";
import { DEFAULT_POLICY, type Route } from "./route.js";
import {
  chooseCertificates,
  planSmime,
  protectMessage,
  type RecipientCertificate,
  type Signer,
} from "./smime.js";
import type { Hop } from "./hop.js";
import { decideFallback, type FallbackNote } from "./fallback.js";
import { withFallback, type FallbackDeps, type FallbackRecord } from "./fallback-delivery.js";
import type { KeyObject } from "node:crypto";
import type { DkimSigning } from "../contract/dkim-config.js";
import { dkimDecision, type DkimDecision } from "./dkim-decision.js";
import { vouchOf } from "./signing-entitlement.js";
import { disclosureGroupsOf } from "./disclosure-groups.js";
import { signDkim } from "./dkim.js";
import { runTransforms, type Batch, type MessageSteps, type StepOutcome } from "./message-transforms.js";
import { deliverOpenpgp, type OpenpgpDeps, type OpenpgpRecord } from "./openpgp-delivery.js";
import { planTransport, type Material, type Timeouts, type TransportPlan } from "./transport-options.js";

export interface RecipientResult {
  address: string;
  outcome: "delivered" | "deferred" | "failed";
  code: string;
  message: string;
  /** Enhanced status code (for the DSN). */
  status: string;
  remoteMta?: string;
  /** The attempt that gave this result; absent when none was made (held, unreadable). */
  attempt?: AttemptTrace;
  /** Sent S/MIME-encrypted: the content algorithm and the recipient's certificate (SHA-256). */
  smime?: { algorithm: string; signed: boolean; certificate?: string };
  /** Sent DKIM-signed (d= and s=). */
  dkim?: { domain: string; selector: string };
  /** Sent OpenPGP-encrypted (PGP/MIME): signed or not, the recipient's key and where it came from. */
  openpgp?: { signed: boolean; fingerprint: string; source: "keyring" | "wkd" };
  /** The failure of each hop the attempt tried (fallback.ts reads them); absent: none was tried. */
  hopCodes?: string[];
  /** Went through the policy's TLS fallback (fallback.ts): which, and the failure that triggered it. */
  fallback?: FallbackNote;
}

/** One attempt's end for a group of recipients of one domain (DelivererDeps.onTransmitted). */
export interface Transmitted {
  policy: string;
  domain: string;
  last: AttemptRecord | undefined;
  results: readonly RecipientResult[];
}

/**
 * The policy input shadow mode judges a session by: the enforced one with the audited mode, names and
 * pins. It is judged as written: a policy exception relaxes only what is enforced, never the evidence
 * an administrator reads before tightening the policy (so `exceptions` and `now` are left out).
 */
export function auditedPolicyInput(enforced: RoutePolicyInput, a: AuditTls): RoutePolicyInput {
  const { matchNames: _m, pins: _p, sts: _s, exceptions: _e, now: _n, ...rest } = enforced;
  return {
    ...rest,
    mode: a.mode,
    ...(a.matchNames ? { matchNames: a.matchNames } : {}),
    ...(a.pins ? { pins: a.pins } : {}),
  };
}

/** When an attempt ran (epoch ms) and its last log record: hop, TLS session, transmission time. */
export interface AttemptTrace {
  startedAt: number;
  endedAt: number;
  record?: AttemptRecord;
}

/** The TLS-RPT policy of an attempt: the MTA-STS policy when one applied, else no-policy-found. */
function tlsRptPolicy(sts: StsLookup | undefined): TlsRptPolicy {
  const p = sts?.policy;
  if (!p) return { type: "no-policy-found", strings: [] };
  return {
    type: "sts",
    strings: [
      `version: ${p.version}`,
      `mode: ${p.mode}`,
      ...p.mx.map((m) => `mx: ${m}`),
      `max_age: ${p.maxAge}`,
    ],
    mxHosts: p.mx,
  };
}

export interface DeliveryRequest {
  queueId: string;
  from: string;
  recipients: string[];
  /** In memory or streamed from its file per transaction (message-body.ts). */
  message: MessageBody;
  route: Route;
  /** REQUIRETLS (RFC 8689): verified TLS and a next hop offering REQUIRETLS, else bounce. */
  requireTls?: boolean;
  /** MTA-STS policies a fleet peer handed the message over with (Envelope.mtaSts; mta-sts.ts). */
  carriedSts?: readonly unknown[];
  /** The sender may have the relay sign it (Envelope.signable; signing-entitlement.ts reads it). */
  signable?: boolean;
  /** `TLS-Required: No` (RFC 8689 section 5), as the inbound side recorded it for a trusted sender. */
  tlsRequiredNo?: boolean;
  /**
   * queue.memoryBytes: a smime TLS fallback that applies defers TOO_LARGE_FOR_MEMORY a message whose
   * encryption would hold more than twice it (memory-budget.ts tooLargeToHold). Absent: no limit.
   */
  memoryBytes?: number;
}

/** What S/MIME needs for a route: the recipient certificates and, when signing, the signer. */
export interface SmimeMaterial {
  certs: RecipientCertificate[];
  signer?: Signer;
}

/** One S/MIME decision (log line + metric), never with key material. */
export interface SmimeRecord {
  queueId: string;
  policy: string;
  result: "encrypted" | "signed-encrypted" | "sent-clear" | "deferred" | "bounced" | "failed";
  recipients: string[];
  code?: string;
  reason?: string;
  /** Why a policy that signs left this message unsigned (signing-entitlement.ts). */
  notSigned?: string;
  /** Content encryption (encrypted, signed-encrypted). */
  algorithm?: string;
  /** Certificates encrypted to (subject and sha256 fingerprint). */
  certificates?: { subject: string; fingerprint: string }[];
}

/** One DKIM decision for a listed domain (log line + metric), never with key material. */
export interface DkimRecord {
  queueId: string;
  result: "signed" | "deferred";
  domain: string;
  selector: string;
  recipients: string[];
  code?: string;
  reason?: string;
}

/** One MTA-STS decision (log line + metric; TLS-RPT result types where they apply). */
export interface MtaStsRecord {
  queueId: string;
  policy: string;
  domain: string;
  source: StsLookup["source"];
  stsMode: string;
  result: string;
  reason?: string;
}

export interface DelivererDeps extends OpenpgpDeps {
  /** MTA-STS policy of a recipient domain (mode mta-sts). */
  /** `carried`: the policy a fleet peer handed the message over with (mta-sts.ts CarriedPolicy). */
  mtaSts?(domain: string, carried?: CachedPolicy): Promise<StsLookup>;
  onMtaSts?(r: MtaStsRecord): void;
  /** S/MIME material of a route whose policy has outbound.smime. */
  smime?(route: Route): Promise<SmimeMaterial | Failure>;
  onSmime?(r: SmimeRecord): void;
  /** A TLS fallback's outcome (fallback-delivery.ts). */
  onFallback?(r: FallbackRecord): void;
  /** The DKIM signing domains (config.dkim) and a listed domain's key (parsed once per config). */
  dkim?(): readonly DkimSigning[];
  dkimKey?(entry: DkimSigning & { keyFile: string }): Result<KeyObject>;
  onDkim?(r: DkimRecord): void;
  now?(): Date;
  /** The clock policy exceptions are judged by (tls-exception.ts); absent: now(). */
  exceptionClock?(): Date;
  pool: ConnectionPool;
  dns(): Dns | undefined;
  /** DNSSEC-aware lookups (mode dane): the configured resolver, AD bit read. */
  secureDns?(): SecureDns;
  material(route: Route): Material | Failure;
  ehloName(): string;
  timeouts: Timeouts;
  mxPort: number;
  /** Is this hop one of the relay's own listeners (loop.ts)? */
  isSelf?: (hop: Hop) => boolean;
  onAttempt(r: AttemptRecord): void;
  /** One attempt's end (all hops tried for a group of recipients): the transport security report. */
  onTransmitted?(t: Transmitted): void;
  /** Bounds of one attempt (attempt-limits.ts); absent: the defaults. */
  limits?(): AttemptLimits;
  /** Attempts at once over all messages (the queue's workers); absent: unbounded. */
  maxConcurrent?(): number;
  /** Where next hops that DNS chose may be (relay/net/address-class.ts); absent: anywhere. */
  destinations?(): DestinationFilter;
}

type Errorish = Error & {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  recipient?: string;
  rejectedErrors?: Errorish[];
};

const STARTTLS_NOT_OFFERED = "STARTTLS not offered by the server";

function isVerifyError(msg: string): boolean {
  return /certificate|altname|does not match|self[- ]signed|unable to (get|verify)|CERT_|issuer/i.test(msg);
}

/** TLS_VERIFY_FAILED with the certificate check that failed (certificate-problem.ts), for TLS-RPT. */
function verifyFailed(message: string, tlsError = message): Failure {
  const certificate = certificateProblemOf(tlsError);
  return { ...fail("TLS_VERIFY_FAILED", true, message), ...(certificate ? { certificate } : {}) };
}

/**
 * The message of an SMTP client error as a failure keeps it: one bounded line (reply-text.ts). It
 * carries the next hop's reply when there was one (a refused greeting, EHLO, STARTTLS or AUTH, in
 * full, twice: "Invalid greeting. response=<reply>: <reply>"), up to REPLY_READ_MAX and its line
 * breaks, into every attempt's log line, every recipient's and /status (test/mail/
 * attack-greeting-reason-status.test.ts).
 */
const clientErrorText = (e: unknown): string => replyText(errorMessage(e));

/** Maps an SMTP client error during connect/STARTTLS/EHLO to a reason. */
export function classifyConnectError(
  e: Errorish,
  plan: Pick<TransportPlan, "verify">,
  upgrading = false,
): Failure {
  const raw = errorMessage(e);
  const msg = clientErrorText(e);
  if (raw.includes(STARTTLS_NOT_OFFERED)) return fail("TLS_NOT_OFFERED", true, STARTTLS_NOT_OFFERED);
  if (plan.verify && isVerifyError(raw)) return verifyFailed(msg, raw);
  if (e.code === "ETLS" || upgrading) {
    if (e.command === "STARTTLS" && e.responseCode) return fail("TLS_STARTTLS_REFUSED", true, msg);
    if (plan.verify && isVerifyError(raw)) return verifyFailed(msg, raw);
    return fail("TLS_HANDSHAKE_FAILED", true, msg);
  }
  if (e.code === "EAUTH") return fail("AUTH_FAILED", true, msg);
  if (e.responseCode) return fail("CONNECT_REJECTED", true, msg);
  return fail("CONNECT_FAILED", true, msg);
}

function sessionInfo(conn: SMTPConnection): SessionInfo {
  const s = conn._socket as TLSSocket | false | null;
  if (!conn.secure || !s || typeof s.getProtocol !== "function") return {};
  const cert = s.getPeerCertificate();
  const cipher = s.getCipher();
  return {
    tlsVersion: s.getProtocol() ?? undefined,
    cipher: cipher?.name,
    peerSubject: cert?.subject ? subjectText(cert.subject) : undefined,
    ...(cert?.fingerprint256 ? { peerFingerprint: cert.fingerprint256 } : {}),
    ...peerFacts(cert?.raw),
    peerVerified: s.authorized,
    ...(s.authorizationError ? { verifyError: String(s.authorizationError) } : {}),
  };
}

/** The most of a next hop's certificate subject a delivery's log line carries. */
export const PEER_SUBJECT_MAX = 512;

/**
 * A next hop's certificate subject as the delivery's log line carries it: `k=v` pairs, at most
 * PEER_SUBJECT_MAX characters, marked when cut. The next hop chooses it (a leaf of up to 100 KB is
 * about 100 KB of subject, logged per attempt: attack review, session 18). Pure.
 */
export function subjectText(subject: Record<string, unknown>): string {
  const text = Object.entries(subject)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(",");
  return clipped(text, PEER_SUBJECT_MAX);
}

/** The partner certificate watch's facts of a leaf (DER): its key as a pin, notAfter, issuer. */
function peerFacts(raw: Buffer | undefined): Pick<SessionInfo, "peerSpki" | "peerNotAfter" | "peerIssuer"> {
  if (!raw?.length) return {};
  try {
    const x = new X509Certificate(raw);
    const spki = spkiPin(raw);
    return {
      ...(spki ? { peerSpki: spki } : {}),
      peerNotAfter: new Date(x.validTo).toISOString(),
      // the next hop's text (its CA's subject), as long as it likes: the attempt's log line carries
      // the session (test/mail/attack-peer-issuer-log.test.ts); the book keeps as much
      peerIssuer: clipped(x.issuer.replace(/\n/g, ","), PARTNER_ISSUER_MAX),
    };
  } catch {
    return {};
  }
}

/** Makes the client fail (instead of trying STARTTLS anyway) when TLS is required but not offered. */
function refuseMissingStartTls(conn: SMTPConnection): void {
  const c = conn as unknown as {
    _actionEHLO?: (str: string) => void;
    _onError?: (err: Error, type: string, data: string, command: string) => void;
    secure: boolean;
  };
  const original = c._actionEHLO;
  if (typeof original !== "function" || typeof c._onError !== "function") return; // nodemailer still fails closed
  c._actionEHLO = function (this: typeof c, str: string) {
    if (!this.secure && str.startsWith("2") && !/[ -]STARTTLS\b/im.test(str)) {
      this._onError!(new Error(STARTTLS_NOT_OFFERED), "ETLS", "", "EHLO");
      return;
    }
    original.call(this, str);
  };
}

function settle<T>(run: (done: (v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve) => {
    let settled = false;
    run((v) => {
      if (!settled) {
        settled = true;
        resolve(v);
      }
    });
  });
}

/**
 * TLS client contexts (CA store, client certificate, minimum version, cipher suites), built once per
 * transport plan key rather than per connection: the pool key covers everything a context holds (CA
 * and client certificate digests, minimum version, the level that picks the suites), so a changed
 * policy or material gets a new one.
 */
const secureContexts = new Map<string, SecureContext>();

function withSecureContext(plan: TransportPlan): TransportPlan["options"] {
  const tls = plan.options.tls;
  if (!tls || plan.options.ignoreTLS || tls.secureContext) return plan.options;
  let ctx = secureContexts.get(plan.poolKey);
  if (!ctx) {
    if (secureContexts.size >= 256) secureContexts.clear();
    ctx = createSecureContext({
      ...(tls.minVersion ? { minVersion: tls.minVersion } : {}),
      ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert ? { cert: tls.cert } : {}),
      ...(tls.key ? { key: tls.key } : {}),
    });
    secureContexts.set(plan.poolKey, ctx);
  }
  return { ...plan.options, tls: { ...tls, secureContext: ctx } };
}

async function open(plan: TransportPlan, signal?: AbortSignal): Promise<Pooled | OpenFailure> {
  // OpenSSL refuses some material the load accepts (relay/config/load.ts clientCertificateProblem
  // skips its security level on purpose: an RSA-1024 key that only signs S/MIME stays usable): in
  // TLS that is this attempt's deferral with its reason, never an error thrown out of the delivery
  // (which ended the message's whole attempt unlogged: test/unit/attack-client-cert-tls-refused)
  let options: TransportPlan["options"];
  try {
    options = withSecureContext(plan);
  } catch (e) {
    return fail(
      "CREDENTIAL_INVALID",
      true,
      `TLS refuses the policy's TLS material, its client certificate or key most likely (${errorMessage(e)}): fix its Secret (e.g. RSA of at least 2048 bits)`,
    );
  }
  // a next hop's reply is read up to REPLY_READ_MAX (nodemailer's default is 1 MB); longer: lost session
  const conn = new SMTPConnection({ ...options, maxResponseSize: REPLY_READ_MAX });
  fastDotStuffing(conn); // the same bytes on the wire, found with indexOf (dot-stuff.ts)
  const source = watchSourceAddress(conn); // TLS-RPT's sending-mta-ip
  const abort = (): void => conn.close(); // the attempt's deadline passed
  signal?.addEventListener("abort", abort, { once: true });
  try {
    const r = await openConn(conn, plan);
    const at = source();
    if (!at) return r;
    if ("ok" in r) return { ...r, source: at };
    r.info.localAddress = at;
    return r;
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

/** A session refused after the handshake: the failure, and what the peer's certificate was. */
type OpenFailure = Failure & { peer?: PeerFacts; source?: string };

function peerOf(info: SessionInfo): PeerFacts {
  return {
    ...(info.peerSpki ? { spki: info.peerSpki } : {}),
    ...(info.peerNotAfter ? { notAfter: info.peerNotAfter } : {}),
    ...(info.peerIssuer ? { issuer: info.peerIssuer } : {}),
  };
}

async function openConn(conn: SMTPConnection, plan: TransportPlan): Promise<Pooled | OpenFailure> {
  let lastError: Errorish | undefined;
  conn.on("error", (e: Errorish) => {
    lastError = e;
  });
  if (plan.requireSecure) refuseMissingStartTls(conn);
  const failure = await settle<Failure | undefined>((done) => {
    // A socket error while the STARTTLS handshake runs is a TLS failure, not a connection one.
    const classify = (e: Errorish): Failure => classifyConnectError(e, plan, conn.upgrading === true);
    conn.once("error", (e: Errorish) => done(classify(e)));
    conn.once("end", () =>
      done(lastError ? classify(lastError) : fail("CONNECT_FAILED", true, "connection closed")),
    );
    conn.connect((err) => done(err ? classify(err) : undefined));
  });
  if (failure) {
    conn.close();
    return failure;
  }
  const info = sessionInfo(conn);
  const bail = (f: Failure): OpenFailure => {
    conn.close();
    // the certificate watch sees a refused peer's certificate too (a key that changed under a pin)
    return info.peerSpki ? { ...f, peer: peerOf(info) } : f;
  };
  // Belt and braces over the client options: never go on with a session below the resolved level.
  const peerFailure = plan.peerCheck && conn.secure ? plan.peerCheck(conn._socket as TLSSocket) : undefined;
  if (peerFailure) return bail(peerFailure);
  const daneRecord = plan.daneMatch && conn.secure ? plan.daneMatch(conn._socket as TLSSocket) : undefined;
  if (daneRecord) info.daneRecord = daneRecord;
  const observed: Observed = {
    tls: conn.secure,
    ...(info.tlsVersion ? { version: info.tlsVersion } : {}),
    verified: plan.verify && info.peerVerified === true,
    // the TLSA check ran above (peerCheck) and passed
    tlsaMatched: plan.level === "dane" && conn.secure && plan.peerCheck !== undefined,
    // the pin check ran above (peerCheck) and passed
    pinMatched: plan.pins.length > 0 && conn.secure && plan.peerCheck !== undefined,
  };
  if (observed.pinMatched) info.pinMatched = true;
  // shadow mode: the audited policy's verdict on the session the enforced one admitted below
  if (plan.audit)
    info.audit = plan.audit(conn.secure ? (conn._socket as TLSSocket) : undefined, info.tlsVersion);
  const below = admits(plan, observed, plan.minVersion);
  if (below)
    return bail(
      !observed.tls
        ? fail("TLS_REQUIRED", true, below)
        : plan.verify && !observed.verified
          ? verifyFailed(
              `peer certificate not verified: ${info.verifyError ?? "unknown"}`,
              info.verifyError ?? "",
            )
          : fail("TLS_HANDSHAKE_FAILED", true, below),
    );
  if (plan.auth) {
    if (!authAllowed({ auth: true, level: plan.level }, observed)) {
      info.authOutcome = "skipped";
      return bail(
        fail("AUTH_REQUIRES_TLS", true, "AUTH credential configured but the session is not encrypted"),
      );
    }
    if (!conn.allowsAuth) return bail(fail("AUTH_NOT_OFFERED", true, "server does not offer AUTH"));
    const auth = plan.auth;
    const authErr = await settle<Errorish | undefined>((done) => {
      conn.once("end", () => done(lastError ?? new Error("connection closed during AUTH")));
      conn.login({ user: auth.user, pass: auth.pass }, (err) => done(err ?? undefined));
    });
    const mech = (conn as unknown as { _authMethod?: string })._authMethod;
    if (mech) info.authMechanism = mech;
    info.authOutcome = authErr ? "failed" : "ok";
    if (authErr)
      return bail(
        fail("AUTH_FAILED", true, `AUTH failed: ${replyText(authErr.response ?? errorMessage(authErr))}`),
      );
  }
  return { conn, info, key: plan.poolKey };
}

type Sent =
  | { kind: "sent"; accepted: string[]; rejected: Errorish[]; response: string }
  | { kind: "error"; err: Errorish };

function send(
  conn: SMTPConnection,
  from: string,
  to: string[],
  message: MessageBody,
  requireTls = false,
): Promise<Sent> {
  const body = message.open();
  // a stream's file is closed however the transaction ends
  const close = (): void => void (Buffer.isBuffer(body) || body.destroy());
  return settle<Sent>((done) => {
    const onEnd = (): void => {
      close();
      done({ kind: "error", err: Object.assign(new Error("connection closed"), { code: "ECONNECTION" }) });
    };
    conn.once("end", onEnd);
    // nodemailer adds REQUIRETLS to MAIL FROM, or fails (EREQUIRETLS) when the server lacks it
    const envelope = { from, to, ...(requireTls ? { requireTLSExtensionEnabled: true } : {}) };
    conn.send(envelope, body, (err, info) => {
      conn.off("end", onEnd);
      close();
      if (err) done({ kind: "error", err: withRcptRefusals(conn, err) });
      else
        done({
          kind: "sent",
          accepted: info?.accepted ?? [],
          rejected: info?.rejectedErrors ?? [],
          response: info?.response ?? "",
        });
    });
  });
}

/**
 * A failed send's error with the recipients the next hop refused at RCPT attached. A reply at the end
 * of DATA (or to DATA itself) is the server's answer for the recipients it took; one refused at RCPT
 * keeps its own reply (a 450 there is retried, not bounced by another recipient's 554: Postfix's smtp
 * client does the same). nodemailer keeps those refusals on its transaction (`_envelope`) and attaches
 * them to a success, not to a DATA error, so they are read from there
 * (test/mail/attack-rcpt-deferred-data-refused.test.ts fails if a nodemailer release moves them).
 */
function withRcptRefusals(conn: SMTPConnection, err: Errorish): Errorish {
  if (err.rejectedErrors?.length || err.command !== "DATA") return err;
  const kept = (conn as unknown as { _envelope?: { rejectedErrors?: Errorish[] } })._envelope?.rejectedErrors;
  return kept?.length ? Object.assign(err, { rejectedErrors: [...kept] }) : err;
}

/** The facts of an established session that MTA-STS testing mode judges (sts-testing.ts). */
function testedSession(p: Pooled): { tls: boolean; verified?: boolean; verifyError?: string } {
  return {
    tls: p.conn.secure === true,
    ...(p.info.peerVerified !== undefined ? { verified: p.info.peerVerified } : {}),
    ...(p.info.verifyError ? { verifyError: p.info.verifyError } : {}),
  };
}

function replyResult(address: string, e: Errorish, hop: Hop): RecipientResult {
  // the remote side's text, bounded and cleaned before it is copied per recipient (issue 22.3)
  const response = replyText(e.response ?? errorMessage(e));
  const permanent = (e.responseCode ?? 0) >= 500;
  return {
    address,
    outcome: permanent ? "failed" : "deferred",
    code: permanent ? "REJECTED" : e.responseCode ? "TEMPORARY_REJECT" : "CONNECTION_LOST",
    message: response,
    status: statusFromReply(response, permanent),
    remoteMta: hop.name,
  };
}

type AttemptBase =
  | "queueId"
  | "policy"
  | "mode"
  | "recipients"
  | "domain"
  | "tlsPolicy"
  | "level"
  | "why"
  | "evidence"
  | "exception";

/** The MTA-STS log line / metric of a delivery, from the lookup and the engine's route decision. */
function stsRecord(req: DeliveryRequest, sts: StsLookup, intent: TlsResolution): MtaStsRecord {
  const relaxed = intent.ok && intent.relaxed;
  return {
    queueId: req.queueId,
    policy: req.route.policy,
    domain: req.route.domain,
    source: sts.source,
    stsMode: sts.policy?.mode ?? "no-policy",
    result: relaxed
      ? "tls-required-no"
      : sts.failure
        ? sts.failure.type
        : sts.policy?.mode === "enforce"
          ? "enforced"
          : "not-enforced",
    ...(sts.failure ? { reason: sts.failure.reason } : {}),
  };
}

/**
 * Whether TLS-RPT counts this route's sessions for the recipient domain: RFC 8460 reports are about
 * the domain's own servers, the ones its DNS names. Not a fallback's alternate next hop, and not a
 * next hop the relay was told to use: a smarthost or gateway named by a policy (the catch-all's, or
 * one covering `*.partner.test`) serves domains whose owners may be anyone able to make the relay
 * send them mail (a bounce to a forged sender), and their reports named our egress host, its
 * internal address and ours (attack reviews, session 12). The internal next hop of a local domain
 * is reported: that report goes to our own domain's rua.
 */
function reportsOn(route: Route): boolean {
  return !route.alternate && (!route.nextHop || route.internal === true);
}

export class Deliverer {
  private readonly slots: Slots;

  private readonly perDestination: DestinationSlots;

  constructor(private d: DelivererDeps) {
    this.slots = new Slots(() => d.maxConcurrent?.() ?? Infinity);
    this.perDestination = new DestinationSlots(
      () => d.limits?.().destinationConcurrencyLimit ?? DEFAULT_DESTINATION_CONCURRENCY,
    );
  }

  private clock(): number {
    return (this.d.now?.() ?? new Date()).getTime();
  }

  /** Within the destination's limit (destination-slots.ts), then the overall one. */
  deliver(req: DeliveryRequest): Promise<RecipientResult[]> {
    return this.perDestination.run(destinationOf(req.route), () =>
      this.slots.run(() => this.deliverSteps(req)),
    );
  }

  /** The message transforms (message-transforms.ts: encryption, then DKIM), then each batch is sent. */
  private async deliverSteps(req: DeliveryRequest): Promise<RecipientResult[]> {
    const steps: MessageSteps<RecipientResult> = {
      ...(req.route.outbound.smime ? { smime: (b) => this.smimeStep(req, b) } : {}),
      ...(req.route.outbound.openpgp ? { openpgp: (b) => this.openpgpStep(req, b) } : {}),
      ...(this.d.dkim?.().length ? { dkim: (b) => this.dkimStep(req, b) } : {}),
    };
    if (!steps.smime && !steps.openpgp && !steps.dkim) return this.transmit(req);
    // an encrypted message shows every recipient it is encrypted to: a Bcc gets one of its own
    // (disclosure-groups.ts)
    const groups =
      steps.smime || steps.openpgp ? disclosureGroupsOf(req.recipients, req.message) : [req.recipients];
    const batches: Batch<RecipientResult>[] = [];
    const results: RecipientResult[] = [];
    for (const recipients of groups) {
      const o = await runTransforms({ recipients, message: req.message }, steps);
      batches.push(...o.batches);
      results.push(...o.results);
    }
    for (const b of batches) {
      // the TLS fallback's S/MIME re-encrypts the bytes before the signature and signs again: the
      // same signature of the same delivery, already logged and counted once (dkimStep's `again`)
      const resign =
        b.unsigned && steps.dkim
          ? { unsigned: b.unsigned, dkim: (x: Batch<RecipientResult>) => this.dkimStep(req, x, true) }
          : undefined;
      const sent = await this.transmit({ ...req, recipients: b.recipients, message: b.message }, resign);
      results.push(...(b.annotate ? sent.map(b.annotate) : sent));
    }
    return results;
  }

  /**
   * OpenPGP encryption (openpgp-delivery.ts) as a message step: what it would send (encrypted, or
   * clear where the policy's missingKey says so) goes on to the next step (DKIM), what it refuses is
   * settled here.
   */
  private async openpgpStep(
    req: DeliveryRequest,
    b: Batch<RecipientResult>,
  ): Promise<StepOutcome<RecipientResult>> {
    const batches: Batch<RecipientResult>[] = [];
    // the keys encrypted to, as openpgp-delivery.ts reports them before it hands the message on
    const sealed = new Map<string, NonNullable<RecipientResult["openpgp"]>>();
    const onOpenpgp = (r: OpenpgpRecord): void => {
      for (const k of r.keys ?? [])
        sealed.set(k.address, {
          signed: r.result === "signed-encrypted",
          fingerprint: k.fingerprint,
          source: k.source,
        });
      this.d.onOpenpgp?.(r);
    };
    const results = await deliverOpenpgp(
      { ...req, recipients: b.recipients, message: b.message },
      { ...this.d, onOpenpgp },
      (r): Promise<RecipientResult[]> => {
        const encrypted = r.message !== b.message;
        batches.push({
          recipients: r.recipients,
          message: r.message,
          ...(encrypted
            ? {
                annotate: (res: RecipientResult): RecipientResult => {
                  const k = sealed.get(res.address);
                  return k ? { ...res, openpgp: k } : res;
                },
              }
            : {}),
        });
        return Promise.resolve([]);
      },
    );
    return { batches, results };
  }

  /**
   * DKIM over the bytes this batch is sent with (dkim-decision.ts says whether and for which domain):
   * signed, or passed on unsigned when the relay does not sign it, or deferred when it would sign but
   * cannot (never sent unsigned instead). `again`: the TLS fallback signing its re-encryption of
   * recipients this step already signed (and recorded) for the same delivery: not recorded twice.
   */
  private async dkimStep(
    req: DeliveryRequest,
    b: Batch<RecipientResult>,
    again = false,
  ): Promise<StepOutcome<RecipientResult>> {
    const decision = dkimDecision(this.d.dkim?.() ?? [], {
      ...(req.signable !== undefined ? { signable: req.signable } : {}),
      from: req.from,
      head: b.message.head,
      size: b.message.size,
    });
    if (decision.kind === "unsigned") return { batches: [b], results: [] };
    const { entry } = decision;
    const signed = await this.dkimSign(decision, b.message);
    const base = {
      queueId: req.queueId,
      recipients: b.recipients,
      domain: entry.domain,
      selector: entry.selector,
    };
    if (!signed.ok) {
      this.d.onDkim?.({ ...base, result: "deferred", code: signed.code, reason: signed.message });
      return {
        batches: [],
        results: b.recipients.map((address) => ({
          address,
          outcome: "deferred",
          code: signed.code,
          message: signed.message,
          // RFC 3463 X.3.5: system incorrectly configured (the key the relay signs with)
          status: "4.3.5",
        })),
      };
    }
    if (!again) this.d.onDkim?.({ ...base, result: "signed" });
    const dkim = { domain: entry.domain, selector: entry.selector };
    return {
      batches: [{ ...b, message: bufferBody(signed.value), annotate: (r) => ({ ...r, dkim }) }],
      results: [],
    };
  }

  private async dkimSign(
    decision: Exclude<DkimDecision, { kind: "unsigned" }>,
    message: MessageBody,
  ): Promise<Result<Buffer>> {
    if (decision.kind === "defer") return decision.failure;
    const key = this.d.dkimKey
      ? this.d.dkimKey(decision.entry)
      : fail("DKIM_KEY_UNAVAILABLE", true, "no DKIM keys wired");
    return key.ok ? signDkim(await message.load(), decision.entry, key.value) : key;
  }

  /**
   * S/MIME: recipients with a usable certificate (one disclosure group) get one message encrypted to all of their
   * certificates; the others get the policy's choice (defer, bounce, or the clear message).
   */
  private async smimeStep(
    req: DeliveryRequest,
    batch: Batch<RecipientResult>,
  ): Promise<StepOutcome<RecipientResult>> {
    const smime = req.route.outbound.smime!;
    const base = { queueId: req.queueId, policy: req.route.policy };
    const refuse = (addresses: string[], code: string, reason: string, temporary: boolean) =>
      addresses.map((address): RecipientResult => ({
        address,
        outcome: temporary ? "deferred" : "failed",
        code,
        message: reason,
        // RFC 3463 X.7.5: a key needed for the cryptographic operation is not available
        status: temporary ? "4.7.5" : "5.7.5",
      }));
    const material = this.d.smime
      ? await this.d.smime(req.route)
      : fail("SMIME_UNAVAILABLE", true, "no S/MIME support wired");
    if ("ok" in material) {
      this.d.onSmime?.({
        ...base,
        result: "deferred",
        recipients: batch.recipients,
        code: material.code,
        reason: material.message,
      });
      return { batches: [], results: refuse(batch.recipients, material.code, material.message, true) };
    }
    const now = this.d.now?.() ?? new Date();
    const plan = planSmime(
      chooseCertificates(material.certs, batch.recipients, now),
      smime.missingCertificate,
    );
    const results: RecipientResult[] = [];
    const batches: Batch<RecipientResult>[] = [];
    for (const r of plan.refused) {
      this.d.onSmime?.({
        ...base,
        result: r.temporary ? "deferred" : "bounced",
        recipients: [r.address],
        code: "SMIME_NO_CERTIFICATE",
        reason: r.reason,
      });
      results.push(...refuse([r.address], "SMIME_NO_CERTIFICATE", `S/MIME: ${r.reason}`, r.temporary));
    }
    if (plan.encrypt.length) {
      const to = plan.encrypt.map((e) => e.address);
      // signing only what the relay vouches for (its own senders' mail from their own From: domain)
      const vouch = vouchOf(req);
      const sign = smime.sign && vouch.ok;
      const signer = sign ? material.signer : undefined;
      const certs = plan.encrypt.map((e) => e.cert);
      const sealed =
        sign && !signer
          ? fail("SMIME_SIGNER_MISSING", true, "policy signs but no signing certificate is loaded")
          : await protectMessage(await batch.message.load(), certs, signer, now, smime.contentEncryption);
      if (!sealed.ok) {
        this.d.onSmime?.({
          ...base,
          result: "failed",
          recipients: to,
          code: sealed.code,
          reason: sealed.message,
        });
        results.push(...refuse(to, sealed.code, sealed.message, sealed.temporary));
      } else {
        this.d.onSmime?.({
          ...base,
          result: signer ? "signed-encrypted" : "encrypted",
          recipients: to,
          ...(smime.sign && !vouch.ok ? { notSigned: vouch.why } : {}),
          algorithm: smime.contentEncryption,
          certificates: certs.map((c) => ({ subject: c.subject, fingerprint: c.fingerprint })),
        });
        const certOf = new Map(plan.encrypt.map((e) => [e.address, e.cert.fingerprint]));
        const s = { algorithm: smime.contentEncryption, signed: signer !== undefined };
        batches.push({
          recipients: to,
          message: bufferBody(sealed.value),
          annotate: (r) => {
            const certificate = certOf.get(r.address);
            return { ...r, smime: certificate ? { ...s, certificate } : s };
          },
        });
      }
    }
    if (plan.clear.length) {
      const to = plan.clear.map((c) => c.address);
      this.d.onSmime?.({
        ...base,
        result: "sent-clear",
        recipients: to,
        code: "SMIME_NO_CERTIFICATE",
        reason: plan.clear.map((c) => `${c.address}: ${c.reason}`).join("; "),
      });
      batches.push({ ...batch, recipients: to });
    }
    return { batches, results };
  }

  /** An attempt, then the policy's TLS fallback where its requirement was not met (fallback.ts). */
  private async transmit(
    req: DeliveryRequest,
    resign?: FallbackDeps<DeliveryRequest, RecipientResult>["resign"],
  ): Promise<RecipientResult[]> {
    const primary: AttemptRecord[] = [];
    const results = await this.attempt(req, { seen: primary });
    return withFallback(
      req,
      results,
      decideFallback(req.route.outbound.tlsFallback, results, req.requireTls === true),
      {
        // its sessions count in TLS-RPT under the policy the primary attempt applied (tlsrpt-fallback.ts)
        transmit: (r) => this.attempt(r, { fallbackOf: primary }),
        smime: (route) =>
          this.d.smime?.(route) ??
          Promise.resolve(fail("SMIME_UNAVAILABLE", true, "no S/MIME support wired")),
        onFallback: (r) => this.d.onFallback?.(r),
        now: () => this.d.now?.() ?? new Date(),
        ...(resign ? { resign } : {}),
      },
    );
  }

  /** One SMTP transaction per next hop tried, within the attempt's bounds (attempt-limits.ts). */
  private async attempt(
    req: DeliveryRequest,
    trace: { seen?: AttemptRecord[]; fallbackOf?: readonly AttemptRecord[] } = {},
  ): Promise<RecipientResult[]> {
    const budget = new AttemptBudget(this.d.limits?.() ?? DEFAULT_ATTEMPT_LIMITS);
    const startedAt = this.clock();
    // the attempt's last log record (its hop, session and timing) goes with each recipient's result:
    // the per-recipient delivery line (relay/delivery-line.ts) is built from it
    let last: AttemptRecord | undefined;
    const emit = (record: AttemptRecord): void => {
      const r = trace.fallbackOf ? asFallbackSession(record, trace.fallbackOf) : record;
      last = r;
      trace.seen?.push(r);
      this.d.onAttempt(r);
    };
    try {
      const results = await this.transmitWithin(req, budget, emit);
      const attempt: AttemptTrace = { startedAt, endedAt: this.clock(), ...(last ? { record: last } : {}) };
      this.d.onTransmitted?.({ policy: req.route.policy, domain: req.route.domain, last, results });
      return results.map((r) => ({ ...r, attempt }));
    } finally {
      budget.dispose();
    }
  }

  private async transmitWithin(
    req: DeliveryRequest,
    budget: AttemptBudget,
    emit: (r: AttemptRecord) => void,
  ): Promise<RecipientResult[]> {
    const { route } = req;
    // each hop's failure, for the TLS fallback's decision (fallback.ts)
    const tried: string[] = [];
    const all = (f: Failure, hop?: Hop): RecipientResult[] =>
      req.recipients.map((address) => ({
        ...(tried.length ? { hopCodes: [...tried] } : {}),
        address,
        outcome: f.temporary ? "deferred" : "failed",
        code: f.code,
        message: f.message,
        status:
          (req.requireTls ? requireTlsStatus(f.code) : undefined) ??
          (f.temporary
            ? "4.4.0"
            : f.code === "NULL_MX"
              ? "5.1.10"
              : f.code === MAIL_LOOPS
                ? "5.4.6"
                : "5.1.2"),
        ...(hop ? { remoteMta: hop.name } : {}),
      }));
    const base: Pick<AttemptRecord, AttemptBase> = {
      queueId: req.queueId,
      policy: route.policy,
      mode: route.outbound.tls.mode,
      recipients: req.recipients.length,
      domain: route.domain,
    };
    const input: RoutePolicyInput = {
      mode: route.outbound.tls.mode,
      domain: route.domain,
      ...(route.outbound.tls.matchNames ? { matchNames: route.outbound.tls.matchNames } : {}),
      ...(route.outbound.tls.pins ? { pins: route.outbound.tls.pins } : {}),
      minVersion: route.outbound.tls.minVersion,
      // time-limited exceptions, judged by this attempt's clock (tls-exception.ts)
      ...(route.outbound.tls.exceptions?.length
        ? {
            exceptions: route.outbound.tls.exceptions,
            now: this.d.exceptionClock?.().getTime() ?? this.clock(),
          }
        : {}),
      ...(route.nextHop ? { nextHop: route.nextHop.host } : {}),
      ...(route.internal ? { internal: true } : {}),
      // a catch-all MailDomainPolicy is a policy too (its mode is the administrator's)
      policyOwned: route.policy !== DEFAULT_POLICY || route.catchAll !== undefined,
      auth: route.outbound.authCredential !== undefined,
      ...(route.outbound.authUnauthenticatedPeer ? { authUnauthenticatedPeer: true } : {}),
      ...(req.requireTls ? { requireTls: true } : {}),
      ...(req.tlsRequiredNo ? { tlsRequiredNo: true } : {}),
    };
    // MTA-STS: the recipient's published policy is one of the engine's inputs
    let sts: StsLookup | undefined;
    if (stsApplies(input)) {
      const carried = req.carriedSts?.map(carriedPolicy).find((c) => c?.domain === route.domain);
      sts = await this.stsLookup(route.domain, budget.signal, carried);
      input.sts = sts;
    }
    if (reportsOn(route)) base.tlsPolicy = tlsRptPolicy(sts);
    const intent = resolveTlsPolicy(input);
    if (sts) this.d.onMtaSts?.(stsRecord(req, sts, intent));
    if (!intent.ok) {
      const f = intent.failure;
      emit({
        ...base,
        ...(intent.level ? { level: intent.level } : {}),
        ...(intent.exception ? { exception: intent.exception } : {}),
        why: intent.why,
        result: f.temporary ? "deferred" : "failed",
        code: f.code,
        reason: f.message,
      });
      return all(f);
    }
    base.level = intent.level;
    base.why = intent.why;
    if (intent.exception) base.exception = intent.exception;
    const material = this.d.material(route);
    if ("ok" in material) {
      emit({ ...base, result: "deferred", code: material.code, reason: material.message });
      return all(material);
    }
    // DANE (RFC 7672, dane.ts): validated MX and TLSA lookups give the per-host facts; the lookups
    // are inside the attempt's deadline (attempt-limits.ts)
    const dane = new Map<Hop, HostDane>();
    let found: Result<Hop[]>;
    if (lookupKind(input) === "dane") {
      if (reportsOn(route)) base.tlsPolicy = { type: "no-policy-found", strings: [] };
      const facts = await resolveDane(
        route.domain,
        route.nextHop,
        this.d.secureDns?.() ?? makeSecureDns(undefined),
        this.d.mxPort,
        budget.signal,
      );
      if (facts.ok) input.dnssec = facts.value.secure ? "secure" : "insecure";
      found = facts.ok ? ok(facts.value.hops.map((h) => (dane.set(h.hop, h.dane), h.hop))) : facts;
    } else found = await resolveHops(route.domain, route.nextHop, this.d.dns(), this.d.mxPort, budget.signal);
    // the deadline passed while resolving: whatever was found is not tried
    if (budget.expired) found = budget.timeout();
    // a hop that is one of this relay's own listeners: mail that loops back to myself (loop.ts)
    const isSelf = this.d.isSelf;
    const resolved = found.ok && isSelf ? withoutSelf(route.domain, found.value, isSelf) : found;
    if (!resolved.ok) {
      emit({
        ...base,
        result: resolved.temporary ? "deferred" : "failed",
        code: resolved.code,
        reason: resolved.message,
      });
      return all(resolved);
    }
    // what DNSSEC said about the MX answer may refuse the whole route (dane: not validated)
    const checked = input.dnssec ? resolveTlsPolicy(input) : intent;
    if (!checked.ok) {
      tried.push(checked.failure.code);
      emit({
        ...base,
        ...(checked.exception ? { exception: checked.exception } : {}),
        why: checked.why,
        result: "deferred",
        code: checked.failure.code,
        reason: checked.failure.message,
      });
      return all(checked.failure);
    }
    // next hops from DNS only where DNS may send the relay; configured next hops are trusted
    const usable = route.nextHop
      ? resolved
      : filterHops(resolved.value, this.d.destinations?.(), route.domain);
    if (!usable.ok) {
      emit({ ...base, result: "deferred", code: usable.code, reason: usable.message });
      return all(usable);
    }
    const hops = limitHops(usable.value, budget.l.mxAddressLimit);
    const stsPolicy = sts?.policy;
    if (stsPolicy && stsPolicy.mode !== "none") {
      const outside = [...new Set(hops.filter((h) => !mxAllowed(stsPolicy, h.name)).map((h) => h.name))];
      if (outside.length)
        this.d.onMtaSts?.({
          queueId: req.queueId,
          policy: route.policy,
          domain: route.domain,
          source: sts!.source,
          stsMode: stsPolicy.mode,
          result: intent.stsEnforced ? "mx-mismatch" : "testing-mx-mismatch",
          reason: `MX ${outside.join(", ")} not in the policy's mx ${stsPolicy.mx.join(", ")}`,
        });
    }
    const audited = await this.auditInput(route, input, sts, budget.signal);
    const testing = stsPolicy?.mode === "testing" ? stsPolicy : undefined;
    let last: Failure = fail("NO_NEXT_HOP", true, "no next hop");
    // a hop that failed for a passing reason (unreachable, a 4xx, a lost connection) may carry the
    // message at the next attempt: a REQUIRETLS message waits for it instead of bouncing because a
    // later hop cannot carry it
    let passing: Failure | undefined;
    const refused: Failure[] = [];
    for (const hop of hops) {
      if (!budget.more()) break;
      const d = dane.get(hop);
      const decision = resolveTlsPolicy(input, { name: hop.name, ...(d ? { dane: d } : {}) });
      const { exception: _routeException, ...rest } = base;
      const at = {
        ...rest,
        ...(decision.exception ? { exception: decision.exception } : {}),
        nextHop: hop.name,
        address: hop.address,
        port: hop.port,
      };
      if (!decision.ok) {
        // this host cannot meet the policy: the next one may (never a weaker session instead)
        if (decision.failure.code !== "MTA_STS_MX_MISMATCH")
          emit({
            ...at,
            ...(decision.level ? { level: decision.level } : {}),
            why: decision.why,
            result: "deferred",
            code: decision.failure.code,
            reason: decision.failure.message,
          });
        refused.push(decision.failure);
        tried.push(decision.failure.code);
        last = decision.failure;
        continue;
      }
      const plan = planTransport(
        decision,
        decision.minVersion ?? route.outbound.tls.minVersion,
        hop,
        material,
        this.d.ehloName(),
        this.d.timeouts,
        () => this.d.now?.() ?? new Date(),
        audited && {
          decision: resolveTlsPolicy(audited.input, {
            name: hop.name,
            ...(audited.dane.has(hop.name) ? { dane: audited.dane.get(hop.name)! } : {}),
          }),
          minVersion: audited.minVersion,
        },
      );
      if (!plan.ok) {
        emit({
          ...at,
          level: decision.level,
          why: decision.why,
          result: "deferred",
          code: plan.code,
          reason: plan.message,
        });
        return all(plan);
      }
      const r = await this.viaHop(
        req,
        plan.value,
        hop,
        {
          ...rest,
          ...(decision.exception ? { exception: decision.exception } : {}),
          level: decision.level,
          why: decision.why,
          ...(d ? { tlsPolicy: daneTlsRptPolicy(d) } : {}),
          evidence: {
            names: decision.names,
            stsEnforced: decision.stsEnforced,
            ...(decision.stsEnforced && sts?.id ? { stsId: sts.id } : {}),
          },
        },
        emit,
        budget,
        testing,
      );
      if (Array.isArray(r)) return r;
      tried.push(r.code);
      // a host without REQUIRETLS ends its session at the EHLO after STARTTLS: not one of the sessions
      // mxSessionLimit bounds (RFC 8689 4.2.1 asks for every MX host; limitHops and the attempt's
      // deadline still bound them), else two such hosts returned the message untried at the third
      if (r.code !== "REQUIRETLS_NOT_SUPPORTED") budget.failed(r);
      if (r.temporary && !isTlsFailure(r.code)) passing = r;
      last = r;
    }
    if (refused.length === hops.length && last.code === "MTA_STS_MX_MISMATCH") {
      const f = fail(
        "MTA_STS_MX_MISMATCH",
        true,
        `no MX of ${route.domain} matches its MTA-STS policy (mx: ${stsPolicy?.mx.join(", ") ?? ""})`,
      );
      emit({ ...base, level: "verify", result: "deferred", code: f.code, reason: f.message });
      return all(f);
    }
    if (budget.expired) last = budget.timeout();
    // REQUIRETLS: a hop that only failed for now is tried again later (RFC 8689 4.2.1 tries every
    // MX host); when none did, no hop gave verified TLS: a bounce (5.7.10), not a deferral until expiry
    if (req.requireTls && passing && !budget.expired) return all(passing);
    if (req.requireTls && isTlsFailure(last.code)) return all({ ...last, temporary: false });
    return all(last);
  }

  /**
   * The recipient domain's MTA-STS policy (mta-sts.ts: its own fetch deadline), within the attempt's
   * deadline too: past it, a fetch error (the attempt then ends as ATTEMPT_TIMEOUT before any hop).
   */
  private async stsLookup(domain: string, signal: AbortSignal, carried?: CachedPolicy): Promise<StsLookup> {
    if (!this.d.mtaSts)
      return { source: "none", failure: { type: "sts-policy-fetch-error", reason: "MTA-STS not wired" } };
    return untilAborted(this.d.mtaSts(domain, carried), signal, {
      source: "none",
      failure: { type: "sts-policy-fetch-error", reason: "delivery attempt deadline passed" },
    });
  }

  /**
   * Shadow mode: the engine's input for the audited policy (tls-audit.ts), with what it needs that the
   * enforced one did not look up (the MTA-STS policy, DNSSEC and TLSA facts). Undefined: no audit.
   */
  private async auditInput(
    route: Route,
    enforced: RoutePolicyInput,
    sts: StsLookup | undefined,
    signal: AbortSignal,
  ): Promise<{ input: RoutePolicyInput; dane: Map<string, HostDane>; minVersion: TlsVersion } | undefined> {
    const a = route.outbound.tls.audit;
    if (!a) return undefined;
    const input = auditedPolicyInput(enforced, a);
    if (stsApplies(input)) input.sts = sts ?? (await this.stsLookup(route.domain, signal));
    const dane = new Map<string, HostDane>();
    if (lookupKind(input) === "dane") {
      // within the attempt's deadline like the enforced lookups (second review, round 7: the
      // audit's lookups of a hostile domain held the worker for minutes)
      const facts = await resolveDane(
        route.domain,
        route.nextHop,
        this.d.secureDns?.() ?? makeSecureDns(undefined),
        this.d.mxPort,
        signal,
      );
      if (facts.ok) {
        input.dnssec = facts.value.secure ? "secure" : "insecure";
        for (const h of facts.value.hops) dane.set(h.hop.name, h.dane);
      }
    }
    return { input, dane, minVersion: a.minVersion };
  }

  private async viaHop(
    req: DeliveryRequest,
    plan: TransportPlan,
    hop: Hop,
    base: Pick<AttemptRecord, AttemptBase>,
    emit: (r: AttemptRecord) => void,
    budget?: AttemptBudget,
    testing?: StsPolicy,
  ): Promise<RecipientResult[] | Failure> {
    const at = { ...base, nextHop: hop.name, address: hop.address, port: hop.port };
    for (let tryNo = 0; tryNo < 2; tryNo++) {
      if (budget?.expired) return budget.timeout();
      const pooled = this.d.pool.take(plan.poolKey);
      const reused = pooled !== undefined;
      const p = pooled ?? (await open(plan, budget?.signal));
      if ("ok" in p) {
        const { peer, source, ...f } = p;
        emit({
          ...at,
          reused: false,
          result: "deferred",
          code: f.code,
          reason: f.message,
          ...(f.certificate ? { certificate: f.certificate } : {}),
          ...(peer ? { peer } : {}),
          ...(source ? { source } : {}),
        });
        return f;
      }
      // MTA-STS testing: delivered as the policy allows, what enforce would refuse is reported
      const tested = testing && stsTestingVerdict(testing, hop.name, testedSession(p));
      const here = tested ? { ...at, stsTesting: tested } : at;
      const abort = (): void => p.conn.close();
      budget?.signal.addEventListener("abort", abort, { once: true });
      const sending = this.clock();
      const sent = await send(p.conn, req.from, req.recipients, req.message, req.requireTls).finally(() =>
        budget?.signal.removeEventListener("abort", abort),
      );
      const transmitMs = this.clock() - sending;
      if (sent.kind === "error") {
        const e = sent.err;
        p.conn.close();
        const deferred = (f: Failure): Failure => {
          emit({
            ...here,
            reused,
            session: p.info,
            transmitMs,
            result: "deferred",
            code: f.code,
            reason: f.message,
          });
          return f;
        };
        // the attempt's deadline closed the connection (a next hop trickling its reply never trips
        // the idle timeout): the failure is the deadline's, not a lost connection
        if (budget?.expired) return deferred(budget.timeout());
        if (e.code === "EREQUIRETLS") {
          const f = fail("REQUIRETLS_NOT_SUPPORTED", false, `next hop ${hop.name} does not offer REQUIRETLS`);
          emit({
            ...here,
            reused,
            session: p.info,
            transmitMs,
            result: "failed",
            code: f.code,
            reason: f.message,
          });
          // RFC 8689 4.2.1: QUIT and try the domain's next MX host; only when none carries it is the
          // message returned (5.7.30, the attempt's last failure)
          return f;
        }
        if (reused && !e.responseCode && tryNo === 0) continue; // stale pooled connection: once more, fresh
        if (!e.responseCode) return deferred(fail("CONNECTION_LOST", true, clientErrorText(e)));
        // A reply: per recipient (RCPT) or for all of them (MAIL FROM, DATA).
        const byRcpt = new Map((e.rejectedErrors ?? []).map((x) => [x.recipient ?? "", x]));
        const results = req.recipients.map((a) => replyResult(a, byRcpt.get(a) ?? e, hop));
        emit({
          ...here,
          reused,
          session: p.info,
          transmitMs,
          result: results.every((x) => x.outcome === "failed") ? "failed" : "deferred",
          code: results[0]?.code,
          ...(e.response !== undefined ? { response: replyText(e.response) } : {}),
        });
        return results;
      }
      const rejected = new Map(sent.rejected.map((x) => [x.recipient ?? "", x]));
      const results = req.recipients.map((a): RecipientResult => {
        const r = rejected.get(a);
        if (r) return replyResult(a, r, hop);
        return {
          address: a,
          outcome: "delivered",
          code: "DELIVERED",
          message: replyText(sent.response),
          status: "2.0.0",
          remoteMta: hop.name,
        };
      });
      emit({
        ...here,
        reused,
        session: p.info,
        transmitMs,
        result: rejected.size ? "partial" : "delivered",
        response: replyText(sent.response),
      });
      // the transaction ended with DATA's reply, so the session is ready for the next MAIL FROM: no
      // RSET round trip (nodemailer's own pool does the same); a server that dropped it meanwhile is
      // caught by the retry above
      this.d.pool.put(p);
      return results;
    }
    return fail("CONNECTION_LOST", true, "connection lost");
  }
}
