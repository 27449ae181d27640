// The partner certificate watch: per policy and next-hop host, the last leaf certificate the relay
// saw (notAfter, issuer, key as pin-sha256, first and last seen), whether its key is outside the
// policy's pins (enforced or audited), and the key before it when it changed. /status lists them
// (`partnerCertificates`); the operator turns an expiry within its window or an unpinned key into a
// Warning on the policy; the metric gives alerting the seconds left. Kept on the queue volume
// (state-file.ts). The clock is injected.
import { PARTNER_ISSUER_MAX, type PartnerCertificate } from "./contract/status.js";
import { clipped } from "./printable.js";
import { StateFile } from "./state-file.js";

/** Hosts kept per policy. */
const MAX_HOSTS = 50;
/** A host not seen for this long is forgotten (its certificate says nothing about today). */
const FORGET_MS = 30 * 86_400_000;

export interface SeenCertificate {
  spki: string;
  notAfter: string;
  issuer?: string;
}

type Book = Record<string, Record<string, PartnerCertificate>>;

/**
 * An issuer as the book keeps it: at most PARTNER_ISSUER_MAX characters, marked when cut. The next
 * hop chooses it (a 90 KB leaf's is 90,000 characters), and the default route's hosts are whoever the
 * relay delivered to: 50 such made /status too large for the operator to read (attack review,
 * session 18). Pure.
 */
export function issuerKept(issuer: string): string {
  return clipped(issuer, PARTNER_ISSUER_MAX);
}

export class PartnerCertificates {
  private book: Book = {};
  private readonly file: StateFile | undefined;

  constructor(
    path: string | undefined,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.file = path ? new StateFile(path, () => this.book) : undefined;
    const stored = this.file?.read();
    if (stored && typeof stored === "object") this.book = stored as Book;
    // a book an older relay kept, issuers uncut
    for (const hosts of Object.values(this.book))
      for (const c of Object.values(hosts ?? {}))
        if (typeof c?.issuer === "string") c.issuer = issuerKept(c.issuer);
  }

  /** A session with `host` under `policy` showed `cert`; `pins`: the policy's pinned keys (any). */
  record(policy: string, host: string, cert: SeenCertificate, pins: readonly string[]): PartnerCertificate {
    const t = this.now().toISOString();
    const hosts = (this.book[policy] ??= {});
    const before = hosts[host];
    if (!before && Object.keys(hosts).length >= MAX_HOSTS) this.forget(hosts);
    const same = before?.spki === cert.spki && before.notAfter === cert.notAfter;
    const entry: PartnerCertificate = {
      host,
      notAfter: cert.notAfter,
      ...(cert.issuer ? { issuer: issuerKept(cert.issuer) } : {}),
      spki: cert.spki,
      firstSeen: same ? before.firstSeen : t,
      lastSeen: t,
      ...(pins.length && !pins.includes(cert.spki) ? { unpinned: true } : {}),
      ...(before && before.spki !== cert.spki
        ? { previousSpki: before.spki }
        : before?.previousSpki
          ? { previousSpki: before.previousSpki }
          : {}),
    };
    hosts[host] = entry;
    this.file?.changed();
    return entry;
  }

  private forget(hosts: Record<string, PartnerCertificate>): void {
    const oldest = Object.values(hosts).sort((a, b) => a.lastSeen.localeCompare(b.lastSeen))[0];
    if (oldest) delete hosts[oldest.host];
  }

  snapshot(): Record<string, PartnerCertificate[]> {
    const cut = new Date(this.now().getTime() - FORGET_MS).toISOString();
    const out: Record<string, PartnerCertificate[]> = {};
    for (const [policy, hosts] of Object.entries(this.book)) {
      const list = Object.values(hosts).filter((c) => c.lastSeen >= cut);
      if (list.length) out[policy] = list.sort((a, b) => a.host.localeCompare(b.host));
    }
    return out;
  }

  flush(): Promise<void> {
    return this.file?.flush() ?? Promise.resolve();
  }
}
