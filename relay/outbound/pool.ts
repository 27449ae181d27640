// Idle SMTP client connections, reused for the next message to the same next hop under the same
// transport plan (the key covers address, TLS mode, names, CA, client certificate and credential,
// so a policy change never reuses a connection set up under the old one).
import type SMTPConnection from "nodemailer/lib/smtp-connection";

export interface SessionInfo {
  tlsVersion?: string;
  cipher?: string;
  peerSubject?: string;
  peerVerified?: boolean;
  /** SHA-256 of the peer certificate (DER), colon-separated hex as `openssl x509 -fingerprint`. */
  peerFingerprint?: string;
  /** dane: the TLSA record that matched the chain (dane.ts tlsaText). */
  daneRecord?: string;
  verifyError?: string;
  /**
   * SHA-256 of the leaf's SubjectPublicKeyInfo as an RFC 7469 pin (base64, pins.ts; the receipt shows
   * it in the fingerprint's hex notation), its notAfter (ISO) and issuer: the partner certificate watch.
   */
  peerSpki?: string;
  peerNotAfter?: string;
  peerIssuer?: string;
  /** The leaf's key was checked against the policy's pins and is one of them. */
  pinMatched?: boolean;
  /** Shadow mode: what the audited policy says of this session (tls-audit.ts). */
  audit?: { ok: true } | { ok: false; code: string; reason: string };
  /** The relay's own address on the connection (source-address.ts): TLS-RPT sending-mta-ip. */
  localAddress?: string;
  authMechanism?: string;
  authOutcome?: "ok" | "failed" | "skipped";
}

export interface Pooled {
  conn: SMTPConnection;
  info: SessionInfo;
  key: string;
}

interface Idle extends Pooled {
  timer: NodeJS.Timeout;
  gone: boolean;
  drop: () => void;
}

export class ConnectionPool {
  private idle = new Map<string, Idle[]>();

  /**
   * `maxIdlePerKey`: idle connections kept per key, a number or read at each use (the relay passes
   * queue.workers, so every worker can find an idle connection instead of a new handshake).
   */
  constructor(
    private idleMs = 5000,
    private maxIdlePerKey: number | (() => number) = 4,
  ) {}

  take(key: string): Pooled | undefined {
    const list = this.idle.get(key);
    try {
      while (list?.length) {
        const c = list.pop()!;
        clearTimeout(c.timer);
        c.conn.off("end", c.drop);
        if (!c.gone && !c.conn.destroyed) return { conn: c.conn, info: c.info, key };
      }
      return undefined;
    } finally {
      this.forgetIfEmpty(key, list);
    }
  }

  /**
   * A key whose list is empty is dropped: every destination ever pooled (an MX host name a sender
   * or a DNS answer chose) kept an empty entry until the next reload (state review, round 7).
   */
  private forgetIfEmpty(key: string, list: Idle[] | undefined): void {
    if (list && !list.length && this.idle.get(key) === list) this.idle.delete(key);
  }

  put(p: Pooled): void {
    const list = this.idle.get(p.key) ?? [];
    const max = typeof this.maxIdlePerKey === "function" ? this.maxIdlePerKey() : this.maxIdlePerKey;
    if (list.length >= max) {
      quit(p.conn);
      return;
    }
    const entry: Idle = {
      ...p,
      gone: false,
      drop: () => {
        entry.gone = true;
        clearTimeout(entry.timer);
        remove(list, entry);
        this.forgetIfEmpty(p.key, list);
      },
      timer: setTimeout(() => {
        entry.gone = true;
        remove(list, entry);
        this.forgetIfEmpty(p.key, list);
        quit(p.conn);
      }, this.idleMs),
    };
    entry.timer.unref();
    p.conn.once("end", entry.drop);
    list.push(entry);
    this.idle.set(p.key, list);
  }

  /** Closes every idle connection (config reload, shutdown). */
  clear(): void {
    for (const list of this.idle.values()) {
      for (const c of list) {
        clearTimeout(c.timer);
        quit(c.conn);
      }
    }
    this.idle.clear();
  }
}

function remove(list: Idle[], e: Idle): void {
  const i = list.indexOf(e);
  if (i >= 0) list.splice(i, 1);
}

function quit(conn: SMTPConnection): void {
  try {
    conn.quit();
  } catch {
    conn.close();
  }
}
