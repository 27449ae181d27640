// Inbound SMTP listeners (smtp-server): 25 with STARTTLS, 465 implicit TLS, 587 submission with AUTH
// required. Every decision comes from the config loaded at that moment (a reload applies to the
// next command of an open session, without dropping it): the host's requirement is checked at
// MAIL FROM, relaying at RCPT TO, and the whole envelope again at DATA (one transaction is never
// judged by two configs); AUTH is neither advertised nor accepted before TLS. DATA is
// written to the durable queue and acknowledged only once it is on disk. New mail may not take the
// queue volume's reserve (relay/queue/space-reserve.ts): 452 4.3.1 at MAIL FROM (SIZE= counted) and
// at the end of DATA, so deliveries and DSNs can still write when a client floods the volume.
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from "smtp-server";
import type { Socket } from "node:net";
import { finished } from "node:stream/promises";
import type { TLSSocket } from "node:tls";
import type { LoadedConfig } from "../config/load.js";
import { canonicalAddress, domainOf } from "../contract/domains.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import { fleetKeyOf as fleetKey, FLEET_USER, handoverVerdict, isFleetPassword } from "../queue/handover.js";
import type { Envelope } from "../queue/envelope.js";
import { newQueueId, type Spool } from "../queue/spool.js";
import { configuredReserve } from "../queue/space-reserve.js";
import { authenticate, type InboundAccount } from "./auth.js";
import {
  accountKey,
  allowedAccounts,
  bareRecipient,
  checkLocalRecipient,
  checkSender,
  currentGrant,
  entitledToSign,
  FLEET_GRANT,
  mayRelay,
  ownSender,
  REVOKED,
  REVOKED_AT_DATA,
  type CompiledAuthority,
  type Grant,
} from "./authority.js";
import {
  checkAddressCharset,
  checkParams,
  ConnectionLimiter,
  declaredSize,
  installProtocolLimits,
  MAX_COMMAND_LENGTH,
  SESSION_LIMITS_OPTION,
} from "./limits.js";
import { BodyAdmission, type Admission } from "./body-admission.js";
import { DataChecks } from "./data-checks.js";
import { KeyCounts } from "./key-counts.js";
import { installFastDataScan } from "./data-scan.js";
import { GREET_WAIT_OPTION, greetWaitMs, installGreetWait } from "./greet-wait.js";
import { ProxyFronts } from "./proxy-protocol.js";
import { resetOnClose } from "./socket-reset.js";
import { installReplyCodes, smtpError } from "./replies.js";
import { receivedHeader } from "./trace.js";
import { REQUIRETLS_SERVER_OPTIONS, requireTlsOf, requireTlsRecipientRefusal } from "./requiretls.js";
import { encryptionSizeRefusal } from "./encrypt-size.js";
import {
  checkMailFrom,
  checkRecipient,
  decideInbound,
  inRelayFrom,
  requirementOf,
  type CompiledInbound,
  type InboundDecision,
  type ListenerKind,
  type Reply,
} from "./rules.js";
import { normalizeIp } from "../contract/cidr.js";
import { BoundedList, type SessionLimits } from "./session-limits.js";
import { AuthThrottle, clientKeys, sameAccount, throttleLimits } from "./throttle.js";
import type { TlsRptReceiver } from "../own-domains/tlsrpt-receiver.js";
import { isReportTransaction, receiveReportMail, reportRecipientRefusal } from "./tlsrpt-recipient.js";

export interface InboundState {
  loaded: LoadedConfig;
  inbound: CompiledInbound;
  accounts: InboundAccount[];
  authority: CompiledAuthority;
}

export interface InboundDeps {
  current(): InboundState;
  spool: Spool;
  onQueued(env: Envelope): void;
  metrics: Metrics;
  log: Logger;
  /** Reads mail to the TLS-RPT report addresses (tlsrpt-recipient.ts); absent: none. */
  tlsRpt?: TlsRptReceiver;
  /** The body admission's window and bounds (tests; body-admission.ts has the defaults). */
  bodyAdmission?: { window?: number; maxWaitMs?: number; lapseMs?: number };
}

interface SessionLog {
  listener: ListenerKind;
  peer: string;
  /** The load balancer a PROXY-protocol session came through (`peer` is then the real client). */
  proxiedBy?: string;
  started: number;
  tlsVersion?: string;
  cipher?: string;
  sni?: string;
  clientCertSubject?: string;
  authMechanism?: string;
  authOutcome?: "ok" | "failed";
  authUser?: string;
  /** accountKey() of the login, to notice a revoked or changed credential after a reload. */
  authKey?: string;
  /** Authenticated as a fleet peer handing its queue over (relay/queue/handover.ts). */
  fleet?: boolean;
  requirement?: string;
  policies?: string[];
  /** Counted, and only the first few kept: a session's log line has a bounded size (issue 22). */
  queued: BoundedList<string>;
  requireTls?: boolean;
  rejected: BoundedList<{ stage: string; reply: string }>;
  /** The transaction's place among the bodies being taken (body-admission.ts), from its first RCPT TO. */
  admission?: Admission;
}

/** Entries of `queued` and `rejected` a session log line names (the counts are complete). */
const LOGGED_ENTRIES = 10;

const KINDS: ListenerKind[] = ["smtp", "smtps", "submission"];

/**
 * What a fleet peer's handover may carry beyond this relay's limits. The pod that first took the
 * message judged its size and hops; every pod it is handed over to since adds its own Received:
 * line (a trace, as RFC 5321 wants), one hop and a few hundred bytes each. Held to maxMessageSize
 * and hopLimit exactly, a message taken just under either could never be handed over, and a drain
 * left it on the volume (fleet review, round 7); a fixed one hop still stranded it at the second
 * handover (the review of that fix). So a fleet session's hops are not counted again (a handover is
 * an explicit drain, not routing: it cannot loop) and its size may exceed maxMessageSize by 64 KiB
 * (some hundred handovers' trace lines), which keeps the fleet credential from being a way around
 * the limit. Only a session logged in with the fleet credential gets it; the handover's MAC ties
 * the message to what the sending pod took (its handover header is removed before the spool counts).
 */
const HANDOVER_ALLOWANCE = { bytes: 64 * 1024, hops: Infinity };

/**
 * How long an implicit-TLS connection may take from its accept to its session (the handshake, and a
 * PROXY header before it), whatever the idle timeout: a client that means to talk does it in far less.
 */
const HANDSHAKE_MS = 10_000;

/**
 * The socket to close for an accepted connection not yet a session: the TLS socket smtp-server has
 * wrapped around it by now (its `_pendingSockets`, as its own close() does), never the TCP socket
 * under a handshake in progress: destroying that from below crashed the process (a segfault, on
 * Node 20 and 26). Not in that map (its handshake is done; its session starts within the greeting
 * pause), or without that map (another smtp-server version): nothing (the idle timeout still ends
 * the connection, as before).
 */
function topSocket(server: SMTPServer, socket: Socket): { destroy(): void } {
  const pending = (server as unknown as { _pendingSockets?: unknown })._pendingSockets;
  const top = pending instanceof Map ? (pending.get(socket) as { destroy(): void } | undefined) : undefined;
  return top ?? { destroy: () => undefined };
}

/**
 * The limiter's id of a connection counted before it is a session: its listener, client address and
 * port (a port-25 session from the same address and port is another connection: the review of the
 * fix, round 7, took a 465 connection's count over from port 25 and so kept any number open).
 */
const pendingId = (kind: ListenerKind, client: string, port: number | undefined): string =>
  `tcp:${kind}|${normalizeIp(client)}|${port ?? 0}`;

function errFor(r: Reply): Error {
  return smtpError(r.code, r.text);
}

/** A transaction's accepted recipients (InboundListeners recipientsOf). */
interface AcceptedRecipients {
  /** By lower-cased address (smtp-server's key for its list): each one's canonical form. */
  byLower: Map<string, string>;
  /**
   * The TLS-RPT report addresses the recipients' kinds were last checked under (undefined: not yet,
   * or none configured): after a reload every one is compared again.
   */
  checkedUnder?: unknown;
}

export class InboundListeners {
  private servers = new Map<ListenerKind, SMTPServer>();
  private proxies = new ProxyFronts();
  private sessions = new Map<string, SessionLog>();
  /**
   * The sessions smtp-server has closed. A callback can still run for one after its onClose (a cut
   * DATA that goes to a file is answered once the spool has discarded it): it gets a log of its own
   * that is not kept, since nothing would delete it (attack review, session 11: each such hang-up
   * left an entry behind).
   */
  private closed = new WeakSet<SMTPServerSession>();
  /**
   * Sessions whose DATA is being written to the queue, with how many DATAs each (a pipelined next
   * transaction's DATA can begin before the previous one's bookkeeping ends).
   */
  private busy = new KeyCounts<string>();
  private closing = false;
  private limiter = new ConnectionLimiter();
  /** Implicit-TLS connections counted at their accept, not yet sessions: the limiter's id by pendingId. */
  private pending = new Map<string, string>();
  private accepted = 0;
  private throttle = new AuthThrottle();
  private sessionTimers = new Map<string, NodeJS.Timeout>();
  private admission: BodyAdmission;
  /** Per transaction (its envelope object): recipientsOf. */
  private rcptIndex = new WeakMap<object, AcceptedRecipients>();

  constructor(private d: InboundDeps) {
    const a = d.bodyAdmission;
    this.admission = new BodyAdmission(a?.window, a?.maxWaitMs, a?.lapseMs);
    d.metrics.bindAdmission(this.admission);
    installReplyCodes();
    installProtocolLimits();
    installFastDataScan();
    installGreetWait();
  }

  /** Ports actually bound (after start), by listener. */
  readonly bound = new Map<ListenerKind, number>();

  async start(): Promise<void> {
    const { loaded } = this.d.current();
    const c = loaded.config;
    for (const kind of KINDS) {
      const l = c.listeners[kind];
      if (!l.enabled) continue;
      const server = this.create(kind);
      // every accepted connection (a PROXY front hands its own over through the same event)
      server.server.prependListener("connection", resetOnClose);
      if (server.options.secure) this.countBeforeHandshake(kind, server);
      this.servers.set(kind, server);
      const socket = l.proxyProtocol?.enabled
        ? this.proxies.front(server, {
            listener: kind,
            trustedCidrs: l.proxyProtocol.trustedCidrs,
            hostname: c.hostname,
            log: this.d.log,
            onRefused: () => this.d.metrics.rejected.inc({ reason: "PROXY:421" }),
          })
        : server.server;
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error): void => reject(e);
        socket.once("error", onError);
        socket.listen(l.port, l.host, () => {
          socket.off("error", onError);
          const a = socket.address();
          this.bound.set(kind, typeof a === "object" && a ? a.port : l.port);
          resolve();
        });
      });
      server.on("error", (e: Error) =>
        this.d.log.warn({ event: "listener-error", listener: kind, err: e.message }, "listener error"),
      );
    }
  }

  /**
   * An implicit-TLS listener's connections are counted (per client and in total) from their TCP
   * accept: smtp-server calls onConnect only after the handshake, and until then nothing counted
   * them, so one address held as many half-open handshakes as it opened, each for the idle timeout
   * (inbound review, round 7). A connection past a limit is closed at once (nothing can be written
   * before TLS), and one whose handshake has not made it a session within HANDSHAKE_MS is closed;
   * onConnect takes the admission over. smtp-server's own accept handler runs after this one, only
   * for the connections admitted.
   */
  private countBeforeHandshake(kind: ListenerKind, server: SMTPServer): void {
    const net = server.server;
    const accept = net.listeners("connection") as ((socket: Socket) => void)[];
    net.removeAllListeners("connection");
    net.on("connection", (socket: Socket) => {
      const from = this.proxies.clientOf(socket) ?? {
        client: socket.remoteAddress ?? "",
        clientPort: socket.remotePort ?? 0,
      };
      // each connection its own admission (released only by its own close), found by its session
      // through `key`; the same client address and port at this listener while one is still
      // pending (two local addresses, two balancer frontends) is refused: its session could not
      // tell which count is its own
      const key = pendingId(kind, from.client, from.clientPort);
      const id = `${key}#${++this.accepted}`;
      const limits = this.d.current().loaded.config.inbound.limits;
      const refused = this.pending.has(key)
        ? { code: 421 }
        : this.limiter.admit(id, clientKeys(limits)(normalizeIp(from.client)), limits);
      if (refused) {
        this.d.metrics.rejected.inc({ reason: `CONNECT:${refused.code}` });
        socket.on("error", () => undefined);
        socket.destroy();
        return;
      }
      this.pending.set(key, id);
      const timer = setTimeout(() => {
        if (this.pending.get(key) === id) topSocket(server, socket).destroy();
      }, HANDSHAKE_MS);
      timer.unref();
      socket.once("close", () => {
        clearTimeout(timer);
        if (this.pending.get(key) === id) this.pending.delete(key);
        this.limiter.release(id); // nothing when its session took the count over
      });
      for (const a of accept) a.call(net, socket);
    });
  }

  /** New sessions get the new certificate; open sessions keep theirs. */
  updateCertificate(cert: Buffer, key: Buffer): void {
    for (const s of this.servers.values()) s.updateSecureContext({ cert, key });
  }

  /**
   * Stops accepting; a session in the middle of a transaction gets up to graceMs to finish it, an
   * idle one (or one that has finished) is told 421 and closed. (smtp-server's own close() would
   * answer every further command with 421 at once, cutting transactions in flight.)
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.admission.releaseWaiters();
    const servers = [...this.servers.values()];
    this.servers.clear();
    const listening = servers.map((s) => new Promise<void>((resolve) => s.server.close(() => resolve())));
    listening.push(...this.proxies.close());
    const deadline = Date.now() + graceMs;
    for (;;) {
      let open = 0;
      for (const s of servers) {
        for (const c of s.connections) {
          // a connection not yet greeted has no envelope yet (smtp-server sets it when ready): idle
          const inTransaction = (c.session.envelope?.mailFrom ?? false) !== false;
          const busy = inTransaction || Boolean(c._dataStream) || this.busy.has(c.session.id);
          if (busy && Date.now() < deadline) {
            open++;
            continue;
          }
          c.send(SHUTTING_DOWN.code, SHUTTING_DOWN.text);
          c.close();
        }
      }
      if (!open) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(listening);
  }

  private create(kind: ListenerKind): SMTPServer {
    const { loaded } = this.d.current();
    const c = loaded.config;
    const files = loaded.files;
    return new SMTPServer({
      secure: kind === "smtps",
      name: c.hostname,
      banner: "Sealpost",
      key: files.get(c.tls.keyFile),
      cert: files.get(c.tls.certFile),
      // never below TLS 1.2, said here rather than left to OpenSSL's security level (smtp-server's own
      // default is TLSv1); the suites are Node's default list, as a sending MTA that cannot agree on
      // one sends in clear (docs/architecture.md)
      minVersion: "TLSv1.2",
      size: c.inbound.maxMessageSize,
      authMethods: ["PLAIN", "LOGIN"],
      authOptional: true,
      disableReverseLookup: true,
      socketTimeout: c.inbound.limits.idleTimeoutSeconds * 1000,
      ...{ maxCommandLength: MAX_COMMAND_LENGTH },
      ...{ [SESSION_LIMITS_OPTION]: (): SessionLimits => this.d.current().loaded.config.inbound.limits },
      ...{
        [GREET_WAIT_OPTION]: (ip: string): number =>
          greetWaitMs(inRelayFrom(this.d.current().inbound, normalizeIp(ip))),
      },
      ...REQUIRETLS_SERVER_OPTIONS,
      ...(c.listeners[kind].proxyProtocol?.enabled ? { useProxy: true } : {}),
      logger: false,
      onConnect: (session, cb) => this.onConnect(kind, session, cb),
      onSecure: (socket, session, cb) => this.onSecure(socket, session, cb),
      onAuth: (auth, session, cb) => this.onAuth(auth, session, cb),
      onMailFrom: (addr, session, cb) => this.onMailFrom(session, cb, addr),
      onRcptTo: (addr, session, cb) => this.onRcptTo(addr, session, cb),
      onData: (stream, session, cb) => void this.onData(kind, stream, session, cb),
      onClose: (session) => this.onClose(session),
    });
  }

  private state(session: SMTPServerSession, kind: ListenerKind = "smtp"): SessionLog {
    let s = this.sessions.get(session.id);
    if (!s) {
      s = {
        listener: kind,
        peer: normalizeIp(session.remoteAddress),
        proxiedBy: this.proxies.proxiedBy(session.remoteAddress, session.remotePort),
        started: Date.now(),
        queued: new BoundedList(LOGGED_ENTRIES),
        rejected: new BoundedList(LOGGED_ENTRIES),
      };
      if (!this.closed.has(session)) this.sessions.set(session.id, s);
    }
    return s;
  }

  private reject(session: SMTPServerSession, stage: string, r: Reply): Error {
    this.state(session).rejected.push({ stage, reply: `${r.code} ${r.text}` });
    this.d.metrics.rejected.inc({ reason: `${stage}:${r.code}` });
    return errFor(r);
  }

  private decision(session: SMTPServerSession) {
    const s = this.state(session);
    const cur = this.d.current();
    const d = decideInbound(cur.inbound, s.peer, s.listener);
    s.requirement = requirementOf(d.need);
    s.policies = d.policies;
    return { d, cur };
  }

  /**
   * The config stops inbound (inbound.stopped: the MailRelay is being deleted) and no message is
   * still being received: whatever enters the queue from now on was refused.
   */
  stopped(): boolean {
    return this.d.current().loaded.config.inbound.stopped === true && this.busy.size === 0;
  }

  /** No new mail: the listeners are closing, or the config stops inbound. */
  private refusing(): boolean {
    return this.closing || this.d.current().loaded.config.inbound.stopped === true;
  }

  private onConnect(kind: ListenerKind, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    if (this.refusing()) return cb(this.reject(session, "CONNECT", SHUTTING_DOWN));
    const limits = this.d.current().loaded.config.inbound.limits;
    const key = clientKeys(limits)(this.state(session, kind).peer);
    // an implicit-TLS connection was counted at its accept (countBeforeHandshake): its session takes
    // that count over, a session of another listener never (its own connection is another one)
    const accepted =
      this.servers.get(kind)?.options.secure === true
        ? pendingId(kind, session.remoteAddress, session.remotePort)
        : undefined;
    const early = accepted !== undefined ? this.pending.get(accepted) : undefined;
    if (accepted !== undefined && early !== undefined) this.pending.delete(accepted);
    const counted = early !== undefined && this.limiter.adopt(early, session.id);
    const refused = counted ? undefined : this.limiter.admit(session.id, key, limits);
    if (refused) return cb(this.reject(session, "CONNECT", refused));
    this.armSessionTimer(kind, session, limits.sessionTimeoutSeconds);
    // AUTH is not advertised nor accepted in a cleartext session (onSecure lifts this).
    if (!session.secure) session.disabledCommands = ["AUTH"];
    this.decision(session);
    cb();
  }

  private onSecure(
    socket: Socket | TLSSocket,
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): void {
    session.disabledCommands = [];
    const s = this.state(session);
    const t = socket as TLSSocket;
    if (typeof t.getProtocol === "function") {
      s.tlsVersion = t.getProtocol() ?? undefined;
      s.cipher = t.getCipher()?.name;
      s.sni = typeof t.servername === "string" ? t.servername : undefined;
      const peer = t.getPeerCertificate();
      if (peer?.subject)
        s.clientCertSubject = Object.entries(peer.subject)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(",");
      this.d.metrics.tls.inc({ direction: "inbound", version: s.tlsVersion ?? "unknown" });
    }
    cb();
  }

  private onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    cb: (err: Error | null | undefined, response?: { user?: unknown }) => void,
  ): void {
    const s = this.state(session);
    s.authMechanism = auth.method;
    if (!session.secure)
      return cb(
        this.reject(session, "AUTH", {
          code: 538,
          text: "5.7.11 Encryption required for requested authentication mechanism",
        }),
      );
    // RFC 4954 section 4: not during a mail transaction. The MAIL FROM checks (sender domains of the
    // account) ran before this login and would not run again, yet RCPT TO would relay on it.
    if (session.envelope.mailFrom)
      return cb(
        this.reject(session, "AUTH", {
          code: 503,
          text: "5.5.1 AUTH is not permitted during a mail transaction (RSET first)",
        }),
      );
    // RFC 4616 section 2: an authorization identity other than the login itself must fail, as no
    // login may act as another (smtp-server passes the authzid on and logs in as the authcid: a
    // partner asking to act as a relay-wide account was told 235, attack review:
    // test/mail/attack-auth-plain-authzid.test.ts). The authzid alone is the login (some clients put
    // the username there). Refused before any password is compared: nothing is learnt or counted.
    if (auth.method === "PLAIN" && auth.authzid && auth.authcid && auth.authzid !== auth.authcid) {
      s.authOutcome = "failed";
      return cb(
        this.reject(session, "AUTH", { code: 535, text: "5.7.8 Authentication credentials invalid" }),
      );
    }
    const { d, cur } = this.decision(session);
    const limits = cur.loaded.config.inbound.limits;
    const tl = throttleLimits(limits);
    const client = clientKeys(limits)(s.peer);
    const password = auth.method === "PLAIN" || auth.method === "LOGIN" ? (auth.password ?? "") : undefined;
    // the fleet credential (a draining peer): reserved user name, its own key, never an account.
    // The right one logs in whatever the throttle says: a 256-bit derived key needs no failure count
    // to protect it, and other clients' failures must not stop a scale-down's handover (attack
    // review, session 12); a wrong one is counted like any other failure
    const fleet = auth.username === FLEET_USER;
    const fleetOk = fleet && password !== undefined && isFleetPassword(fleetKey(cur.loaded), password);
    const allowed = allowedAccounts(cur.authority, d);
    // a login this host may use is counted as that account; any other name (made up, or an account
    // of other hosts: from here it can never log in, and its failures would only lock its owner out)
    // among the strangers, which lock alike, so the replies tell no one which usernames exist
    const loginHere = (u: string): boolean =>
      cur.accounts.some((a) => allowed.includes(a.name) && sameAccount(a.username, u));
    const verdict = fleetOk
      ? ({ ok: true } as const)
      : this.throttle.check(client, auth.username ?? "", tl, loginHere);
    if (!verdict.ok) {
      s.authOutcome = "failed";
      return cb(this.reject(session, "AUTH", verdict));
    }
    const user =
      password === undefined
        ? undefined
        : fleet
          ? fleetOk
            ? FLEET_USER
            : undefined
          : authenticate(cur.accounts, auth.username ?? "", password, allowed);
    if (!user) {
      s.authOutcome = "failed";
      this.d.metrics.authFailures.inc();
      this.throttle.failed(client, auth.username ?? "", tl, loginHere);
      return cb(
        this.reject(session, "AUTH", { code: 535, text: "5.7.8 Authentication credentials invalid" }),
      );
    }
    s.authOutcome = "ok";
    s.authUser = user;
    if (fleet) s.fleet = true;
    const account = fleet ? undefined : cur.accounts.find((a) => a.name === user);
    s.authKey = account ? accountKey(account) : undefined;
    cb(null, { user });
  }

  private onMailFrom(
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
    addr?: SMTPServerAddress,
  ): void {
    if (this.refusing()) return cb(this.reject(session, "MAIL", SHUTTING_DOWN));
    // a new transaction: the last one ended without its DATA (RSET, or its recipients were refused)
    this.endAdmission(session);
    // smtp-server hands over xn-- domains as U-labels: the charset rule applies to the address as it
    // crosses the wire in canonical form (an A-label needs no SMTPUTF8)
    const sender = addr?.address ?? "";
    const bad =
      checkParams("MAIL", addr?.args) ??
      checkAddressCharset(canonicalAddress(sender) ?? sender, Boolean(session.envelope.smtpUtf8));
    if (bad) return cb(this.reject(session, "MAIL", bad));
    const { d, cur } = this.decision(session);
    const g = this.grant(session, d, cur);
    if (g === "revoked") return cb(this.reject(session, "MAIL", REVOKED));
    const r =
      checkMailFrom(d, { secure: session.secure, authenticated: Boolean(session.user) }) ??
      (g ? checkSender(cur.authority, g, canonicalAddress(sender) ?? sender) : undefined);
    if (r) return cb(this.reject(session, "MAIL", r));
    // the queue volume's reserve (relay/queue/space-reserve.ts), with the size SIZE= declares
    const declared = declaredSize(addr?.args);
    if (!this.roomForNewMail(Number.isFinite(declared) ? declared : 0))
      return cb(this.storageRefusal(session, "MAIL"));
    cb(null);
  }

  /** Whether new mail of `size` bytes leaves the queue volume's reserve free (a cached reading). */
  private roomForNewMail(size: number): boolean {
    return this.d.spool.roomForNewMail(configuredReserve(this.d.current().loaded.config), size);
  }

  private storageRefusal(session: SMTPServerSession, stage: "MAIL" | "DATA"): Error {
    this.d.metrics.storageRefusals.inc({ stage });
    return this.reject(session, stage, INSUFFICIENT_STORAGE);
  }

  private onRcptTo(
    addr: SMTPServerAddress,
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): void {
    const { d, cur } = this.decision(session);
    // <Postmaster> without a domain is a local domain's postmaster (RFC 5321 4.5.1): smtp-server keeps
    // `addr` in the envelope's recipients as it is when accepted, so the transaction carries that one
    addr.address = bareRecipient(cur.authority, addr.address) ?? addr.address;
    const { address, args } = addr;
    const bad =
      checkParams("RCPT", args) ??
      checkAddressCharset(canonicalAddress(address) ?? address, Boolean(session.envelope.smtpUtf8));
    if (bad) return cb(this.reject(session, "RCPT", bad));
    if (session.envelope.rcptTo.length >= cur.loaded.config.inbound.maxRecipients)
      return cb(this.reject(session, "RCPT", { code: 452, text: "4.5.3 Too many recipients" }));
    const g = this.grant(session, d, cur);
    if (g === "revoked") return cb(this.reject(session, "RCPT", REVOKED));
    // MAIL FROM's checks again: a reload since may have changed the host rule or the sender domains
    const again = envelopeRefusal(session, d, cur, g);
    if (again) return cb(this.reject(session, "RCPT", again));
    // one canonical form for every spelling (relay/contract/domains.ts); none: refused, never routed
    const canonical = canonicalAddress(address);
    if (canonical === undefined)
      return cb(
        this.reject(session, "RCPT", {
          code: 553,
          text: "5.1.3 Recipient domain is not a valid domain name (IDNA2008/UTS #46, no address literals)",
        }),
      );
    // smtp-server keeps one entry per address compared in lower case: a later spelling replaces the
    // earlier one after both were answered 250. A local part that differs only in case is another
    // mailbox (RFC 5321 2.4), so it waits for a transaction of its own instead of being dropped.
    const accepted = this.recipientsOf(session);
    const known = accepted.byLower;
    const lower = address.toLowerCase();
    const prior = known.get(lower);
    if (prior !== undefined && prior !== canonical) return cb(this.reject(session, "RCPT", CASE_VARIANT));
    // the recipients accepted so far are all report addresses or none is (each was checked against
    // those before it): the first one stands for them all, as long as the report addresses are the
    // ones they were checked under; after a reload since, every one is compared again (a first
    // recipient that became a report address does not stand for an ordinary one after it)
    const reports = this.d.tlsRpt?.settings()?.addresses;
    const first = known.values().next().value;
    const compared =
      accepted.checkedUnder === reports ? (first === undefined ? [] : [first]) : [...known.values()];
    const r =
      envelopeRefusal(session, d, cur, g, canonical) ??
      reportRecipientRefusal(this.d.tlsRpt, compared, canonical);
    if (r) return cb(this.reject(session, "RCPT", r));
    const accept = (): void => {
      known.set(lower, canonical);
      accepted.checkedUnder = reports;
      cb(null);
    };
    // a fleet peer handing its queue over is not held (its drain has a deadline; it is authenticated)
    if (session.envelope.rcptTo.length || this.state(session).fleet) return accept();
    // stopped since MAIL FROM: told now, not after a wait in line
    if (this.refusing()) return cb(this.reject(session, "RCPT", SHUTTING_DOWN));
    // the transaction's first recipient: it waits here for its place among the bodies being taken;
    // a client gone meanwhile gets no answer (nor a session entry made again by reject())
    void this.admit(session).then(
      (here) => {
        if (here) {
          if (this.refusing()) cb(this.reject(session, "RCPT", SHUTTING_DOWN));
          else accept();
        }
      },
      () => {
        if (this.sessions.has(session.id))
          cb(this.reject(session, "RCPT", { code: 451, text: "4.3.0 Local error, try again later" }));
      },
    );
  }

  /**
   * The transaction's accepted recipients by lower-cased address (smtp-server's own key for its list),
   * each with its canonical form; smtp-server makes a new envelope for each transaction, so this is
   * per transaction. RCPT TO looks up one entry here instead of going over every recipient accepted
   * before it: each went through an IDNA mapping again at every RCPT TO, n recipients cost n²/2 of
   * them (attack review: test/mail/attack-rcpt-quadratic.test.ts). Rebuilt from smtp-server's list
   * should the two ever disagree.
   */
  private recipientsOf(session: SMTPServerSession): AcceptedRecipients {
    const env = session.envelope;
    let a = this.rcptIndex.get(env);
    if (!a || a.byLower.size !== env.rcptTo.length) {
      const byLower = new Map(
        env.rcptTo.map((x) => [x.address.toLowerCase(), canonicalAddress(x.address) ?? x.address]),
      );
      a = { byLower };
      this.rcptIndex.set(env, a);
    }
    return a;
  }

  /**
   * Waits for the transaction's place (body-admission.ts). False when the session is gone: its wait
   * was cancelled, or a place granted meanwhile is given back.
   */
  private async admit(session: SMTPServerSession): Promise<boolean> {
    this.endAdmission(session);
    const declared = declaredSize(session.envelope.mailFrom ? session.envelope.mailFrom.args : undefined);
    const s0 = this.state(session);
    const limits = this.d.current().loaded.config.inbound.limits;
    const a = await this.admission.admit(
      this.admission.estimate(Number.isNaN(declared) ? undefined : declared),
      { id: session.id, client: clientKeys(limits)(s0.peer) },
    );
    if (!a) return false;
    if (a.released) return this.sessions.has(session.id); // stopping: refused by the caller
    this.d.metrics.admissionWait.observe({ outcome: a.overdue ? "overdue" : "admitted" }, a.waitedMs / 1000);
    const s = this.sessions.get(session.id);
    if (!s) {
      a.release();
      return false;
    }
    s.admission = a;
    if (a.overdue && !this.closing)
      this.d.log.warn(
        { event: "admission-overdue", sessionId: session.id, peer: s.peer, waitedMs: Math.round(a.waitedMs) },
        "admitted past the wait's bound: the bodies ahead are still being taken (a slow or stalling client?)",
      );
    return true;
  }

  /** The config stopped inbound: nobody waits for a place any more (each is then refused 421). */
  inboundStopped(): void {
    this.admission.releaseWaiters();
  }

  private endAdmission(session: SMTPServerSession): void {
    const s = this.sessions.get(session.id);
    s?.admission?.release();
    if (s) s.admission = undefined;
  }

  /**
   * The session's login under the current config (authority.ts): undefined when it did not log in,
   * "revoked" when that login no longer holds (it is then dropped: the client may log in again).
   */
  private grant(
    session: SMTPServerSession,
    d: ReturnType<InboundListeners["decision"]>["d"],
    cur: InboundState,
  ): Grant | undefined | "revoked" {
    const s = this.state(session);
    if (!session.user) return undefined;
    // a draining peer of the fleet: its key, not an account, vouches for it (relay/queue/handover.ts)
    if (s.fleet) return FLEET_GRANT;
    const g =
      s.authUser && s.authKey
        ? currentGrant(cur.authority, cur.accounts, d, s.authUser, s.authKey)
        : undefined;
    if (g) return g;
    session.user = undefined;
    s.authKey = undefined;
    return "revoked";
  }

  private async onData(
    kind: ListenerKind,
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    cb: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    this.busy.add(session.id);
    // this DATA's place, and only it, ends with it: the answer may run a pipelined next transaction
    // (MAIL, RCPT) before the finally below, and that one's place is its own
    const mine = this.sessions.get(session.id)?.admission;
    mine?.started();
    // one answer per DATA, whatever happens in between: an error thrown on the way (a fault of the
    // queue, a bug) is a 451 for this client, never an unhandled rejection, which ends the process
    // and every other session with it. A message already durable when it threw is delivered (it is
    // found again at the next start) and the client's retry makes a duplicate, never a loss.
    let answered = false;
    const answer = (err?: Error | null, message?: string): void => {
      if (answered) return;
      answered = true;
      cb(err, message);
    };
    try {
      await this.receive(kind, stream, session, answer);
    } catch (e) {
      this.d.log.error(
        { event: "data-error", session: session.id, err: e instanceof Error ? e.message : String(e) },
        "taking the message failed",
      );
      if (stream.readable) stream.resume();
      if (!answered)
        answer(this.reject(session, "DATA", { code: 451, text: "4.3.0 Local error, try again later" }));
    } finally {
      this.busy.remove(session.id);
      mine?.release();
      const s = this.sessions.get(session.id);
      if (s && s.admission === mine) s.admission = undefined;
    }
  }

  private async receive(
    kind: ListenerKind,
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    cb: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    const s = this.state(session);
    const { d, cur } = this.decision(session);
    const c = cur.loaded.config;
    const id = newQueueId();
    // recipients are queued, routed and logged with their domain in canonical form, once each
    const rcpts = [...new Set(session.envelope.rcptTo.map((r) => canonicalAddress(r.address) ?? r.address))];
    const tls = session.secure ? ` (${s.tlsVersion ?? "TLS"}${s.cipher ? ` ${s.cipher}` : ""})` : "";
    const proto = `ESMTP${session.secure ? "S" : ""}${session.user ? "A" : ""}`;
    const received = receivedHeader({
      helo: session.hostNameAppearsAs || undefined,
      peer: s.peer,
      by: c.hostname,
      proto,
      tls,
      id,
      ...(rcpts.length === 1 ? { rcpt: rcpts[0]! } : {}),
      date: new Date(),
    });
    const mailFrom = session.envelope.mailFrom;
    const from = mailFrom ? (canonicalAddress(mailFrom.address) ?? mailFrom.address) : "";
    const g = this.grant(session, d, cur);
    if (g === "revoked") {
      // the login the recipients were accepted under no longer holds (revoked or its password
      // changed since RCPT TO): nothing is queued on it; 4xx, so a client whose password was rotated
      // sends again after logging in anew, and nothing bounces
      await finished(stream.resume()).catch(() => undefined);
      return cb(this.reject(session, "DATA", REVOKED_AT_DATA));
    }
    // the whole transaction judged against the config of now: a reload since MAIL FROM or RCPT TO may
    // have narrowed the sender domains, withdrawn relaying or removed a recipient; 4xx, so the client
    // sends again and gets the current answer at MAIL FROM / RCPT TO, and nothing bounces
    // inbound stopped since MAIL FROM (the MailRelay is being deleted): nothing more is queued; this
    // check runs while the session counts as busy, so /status says `stopped` only after it
    if (c.inbound.stopped) {
      await finished(stream.resume()).catch(() => undefined);
      return cb(this.reject(session, "DATA", SHUTTING_DOWN));
    }
    if (rcpts.some((rcpt) => envelopeRefusal(session, d, cur, g, rcpt))) {
      await finished(stream.resume()).catch(() => undefined);
      return cb(this.reject(session, "DATA", CHANGED_AT_DATA));
    }
    // a TLS-RPT report: read and counted, never queued
    if (this.d.tlsRpt && isReportTransaction(this.d.tlsRpt, rcpts)) {
      const client = clientKeys(c.inbound.limits)(s.peer);
      const out = await receiveReportMail(this.d.tlsRpt, stream, from, client);
      return out.ok ? cb(null, out.text) : cb(this.reject(session, "DATA", out.reply));
    }
    const signable = entitledToSign(cur.authority, d, g, from);
    // handover headers are removed before queueing (they never leave the fleet) and decide below
    // (only a fleet peer's message is hashed: the digest is read for a fleet session's MAC alone)
    // with the content checks and the hop count, in one pass (data-checks.ts)
    const allowance = s.fleet ? HANDOVER_ALLOWANCE : { bytes: 0, hops: 0 };
    const checks = DataChecks.over(stream, s.fleet === true, c.inbound.hopLimit + allowance.hops);
    // a fleet session's size is the spool's to judge (with the allowance), not smtp-server's fixed one
    const sizeExceeded = (): boolean => !s.fleet && stream.sizeExceeded;
    // the handover verdict is taken once the data is read and before the message is committed, and
    // what it grants is written with the message: a message refused after its record was written
    // would come back from the journal after a restart if its done record failed (a full volume),
    // and an envelope rewritten after the commit could fail after the message was durable (a 451
    // to the sending pod, which hands it over again: two pods would deliver it)
    let verdict: ReturnType<typeof handoverVerdict> | undefined;
    const admit = (env: Envelope): boolean => {
      if (sizeExceeded() || checks.violation) return false;
      verdict = handoverVerdict({
        fleetSession: s.fleet === true,
        key: fleetKey(cur.loaded),
        found: checks.found,
        from: env.from,
        to: rcpts,
        requireTls: env.requireTls === true,
        digest: checks.digest.hex(),
        now: Date.now(),
      });
      if (!verdict.ok) return false;
      // a fleet peer's handover: the trust the sending pod gave the message, under the MAC
      if (verdict.signable) env.signable = true;
      if (verdict.tlsRequiredNoTrusted) env.tlsRequiredNoTrusted = true;
      // the MTA-STS policies the sending pod enforced for it, kept with the message (crash-safe)
      if (verdict.sts) env.mtaSts = verdict.sts;
      // the maxAge clock (and the DSN's arrival date) keeps the original time
      if (verdict.queuedAt !== undefined && verdict.queuedAt < env.receivedAt)
        env.receivedAt = verdict.queuedAt;
      return true;
    };
    // the reserve again, as the message is written (SIZE= is optional, and a client may lie): a body
    // going to a temp file before each write, the rest once admitted (spool.ts enqueue); a refusal
    // fails the enqueue with QUEUE_RESERVE
    const r = await this.d.spool.enqueue(
      {
        id,
        from,
        recipients: rcpts.map((address) => ({ address, state: "pending" as const })),
        receivedAt: Date.now(),
        peer: s.peer,
        ...(requireTlsOf(session) ? { requireTls: true } : {}),
        // a fleet peer's message gets only the trust its handover header vouches for (below)
        ...(signable && !s.fleet ? { signable: true } : {}),
        // only a trusted sender's TLS-Required: No may relax anything (issue 22 finding 6)
        ...((session.user || d.relayFrom) && !s.fleet ? { tlsRequiredNoTrusted: true } : {}),
        // only the organisation's own senders' DSNs name the next hops (relay/dsn.ts); a fleet
        // peer's handover does not carry it: such a message's DSN gives the status and code only
        ...(ownSender(d, g) && !s.fleet ? { ownSender: true } : {}),
      },
      received,
      checks,
      c.inbound.maxMessageSize + allowance.bytes,
      admit,
      (bytes) => this.roomForNewMail(bytes),
    );
    if (stream.readable) stream.resume(); // drain whatever an early failure left unread
    const violation = checks.violation;
    if (verdict && !verdict.ok && !r.ok && r.code === "MESSAGE_REFUSED") {
      this.d.log.warn(
        { event: "handover-refused", queueId: id, peer: s.peer, reason: verdict.reason },
        "handover refused",
      );
      return cb(this.reject(session, "DATA", { code: 550, text: `5.7.1 ${verdict.reason}` }));
    }
    // the message received would take the queue volume's reserve: 452, nothing written
    if (!r.ok && r.code === "QUEUE_RESERVE") return cb(this.storageRefusal(session, "DATA"));
    if (!r.ok || sizeExceeded() || violation) {
      const reply: Reply =
        violation && !sizeExceeded()
          ? violation.reply
          : r.ok || r.code === "MESSAGE_TOO_BIG" || sizeExceeded()
            ? { code: 552, text: "5.3.4 Message too big" }
            : /\b(ENOSPC|EDQUOT)\b|short write/.test(r.message) // queue volume full (RFC 3463 4.3.1)
              ? INSUFFICIENT_STORAGE
              : { code: 451, text: "4.3.0 Queue write failed, try again later" };
      if (r.ok) await this.d.spool.remove(id);
      // a client gone in the middle of DATA is no queue error (nothing was queued, nobody to answer)
      if (!r.ok && !violation && !checks.cut && r.code !== "MESSAGE_REFUSED")
        this.d.log.error(
          { event: "queue-error", queueId: id, code: r.code, err: r.message },
          "enqueue failed",
        );
      return cb(this.reject(session, "DATA", reply));
    }
    if (!verdict?.ok) {
      // never: a committed message passed `admit`, which took an ok verdict (fail closed anyway)
      await this.d.spool.remove(id);
      return cb(
        this.reject(session, "DATA", { code: 451, text: "4.3.0 Queue write failed, try again later" }),
      );
    }
    if (verdict.queuedAt !== undefined && verdict.queuedAt === r.value.receivedAt)
      this.d.log.info(
        { event: "queued-at", queueId: id, receivedAt: new Date(verdict.queuedAt).toISOString() },
        "handed over by a fleet peer: original queue time kept",
      );
    // the 250's time, for the delivery log's "before queue" delay (relay/delivery-log.ts); in memory
    // until the first state update writes it; not for a handover, whose clock kept the first queue time
    if (verdict.queuedAt === undefined) r.value.acceptedAt = Date.now();
    this.admission.learn(r.value.size);
    s.queued.push(id);
    if (r.value.requireTls) s.requireTls = true;
    // the record is durable: the 250 goes out first, the bookkeeping after it in the same tick (and
    // whatever happens to the reply: a queued message is always scheduled)
    try {
      cb(null, `2.0.0 Ok: queued as ${id}`);
    } finally {
      this.d.metrics.accepted.inc({ listener: kind });
      this.d.onQueued(r.value);
    }
  }

  /** A whole session, however busy, is closed with 421 after `seconds`. */
  private armSessionTimer(kind: ListenerKind, session: SMTPServerSession, seconds: number): void {
    const timer = setTimeout(() => {
      const conn = [...(this.servers.get(kind)?.connections ?? [])].find((c) => c.session.id === session.id);
      const r = { code: 421, text: "4.4.2 Session time limit reached, closing connection" };
      this.reject(session, "SESSION", r);
      conn?.send(r.code, r.text);
    }, seconds * 1000);
    timer.unref();
    this.sessionTimers.set(session.id, timer);
  }

  private onClose(session: SMTPServerSession): void {
    this.closed.add(session);
    this.admission.cancel(session.id);
    this.endAdmission(session);
    this.limiter.release(session.id);
    clearTimeout(this.sessionTimers.get(session.id));
    this.sessionTimers.delete(session.id);
    const s = this.sessions.get(session.id);
    if (!s) return;
    this.sessions.delete(session.id);
    this.d.log.info(
      {
        event: "session",
        sessionId: session.id,
        listener: s.listener,
        peer: s.peer,
        ...(s.proxiedBy ? { proxiedBy: s.proxiedBy } : {}),
        helo: session.hostNameAppearsAs || undefined,
        tls: s.tlsVersion
          ? { version: s.tlsVersion, cipher: s.cipher, sni: s.sni, clientCert: s.clientCertSubject ?? null }
          : null,
        auth: s.authMechanism
          ? { mechanism: s.authMechanism, outcome: s.authOutcome, user: s.authUser }
          : null,
        requirement: s.requirement,
        policies: s.policies,
        queued: s.queued.items,
        ...(s.queued.count > s.queued.items.length ? { queuedCount: s.queued.count } : {}),
        ...(s.requireTls ? { requireTls: true } : {}),
        rejected: s.rejected.items,
        ...(s.rejected.count > s.rejected.items.length ? { rejectedCount: s.rejected.count } : {}),
        result: s.queued.count ? "queued" : s.rejected.count ? "rejected" : "no-mail",
        durationMs: Date.now() - s.started,
      },
      "inbound session",
    );
  }
}

/** A recipient already given in this transaction in another case (see onRcptTo). */
const CASE_VARIANT: Reply = {
  code: 452,
  text: "4.5.3 A recipient differing only in case is already in this transaction; send to it in another",
};

/**
 * The queue volume is full, or its free space is within the reserve new mail may not take
 * (relay/queue/space-reserve.ts): RFC 3463 4.3.1, a temporary failure the client retries.
 */
const INSUFFICIENT_STORAGE: Reply = { code: 452, text: "4.3.1 Insufficient system storage, try again later" };

/** No new mail: the listeners are closing (drain, stop) or the config stops inbound (deletion). */
const SHUTTING_DOWN: Reply = { code: 421, text: "4.3.2 Service shutting down" };

/** At DATA, for a transaction the current config no longer allows as a whole. */
const CHANGED_AT_DATA: Reply = {
  code: 451,
  text: "4.7.0 The relay's policy changed during this transaction; send it again",
};

/**
 * What the current config refuses of the session's transaction: the host's requirement and the
 * login's sender domains (MAIL FROM's checks), and with `rcpt` (canonical) whether it may go there
 * (RCPT TO's). Run at RCPT TO and again at DATA, so that one transaction is never judged by two
 * configs. undefined: allowed.
 */
function envelopeRefusal(
  session: SMTPServerSession,
  d: InboundDecision,
  cur: InboundState,
  g: Grant | undefined,
  rcpt?: string,
): Reply | undefined {
  const mailFrom = session.envelope.mailFrom;
  const from = mailFrom ? (canonicalAddress(mailFrom.address) ?? mailFrom.address) : "";
  const sender =
    checkMailFrom(d, { secure: session.secure, authenticated: Boolean(session.user) }) ??
    (g ? checkSender(cur.authority, g, from) : undefined);
  if (sender || rcpt === undefined) return sender;
  const relay = mayRelay(d, g);
  return (
    checkRecipient(cur.inbound, { mayRelay: relay }, domainOf(rcpt)) ??
    checkLocalRecipient(cur.authority, relay, rcpt) ??
    requireTlsRecipientRefusal(session, rcpt, cur.loaded.config) ??
    encryptionSizeRefusal(session, rcpt, cur.loaded.config)
  );
}
