// A MailRelay's spec.mtaSts and spec.tlsRptReceiver compiled into the relay config's ownDomains
// (relay/contract/own-domains.ts), and the DNS records its status prints. Pure.
// The MTA-STS endpoint is compiled in only once cert-manager has issued its certificate (the Secret
// is in the cache): a pod never waits for it, and mail is never held up by a missing web certificate.
// And only from the Secret the operator created for it (its uid in status.issuedSecretUIDs.mtaSts,
// references.ts relayIssuedSecretRefusal): one a tenant created first is never served.
import {
  MTA_STS_CONTAINER_PORT,
  mtaStsPolicyId,
  mtaStsPolicyText,
  ownDomainRecords,
  type DnsRecord,
  type OwnDomains,
} from "../../relay/contract/own-domains.js";
import { canonicalPattern } from "../../relay/contract/domains.js";
import type { MailRelay } from "../api.js";
import { durationSeconds, quantityBytes } from "../api.js";
import { names } from "../render/meta.js";
import { relayIssuedSecretRefusal, secretPath, type ClusterView } from "./references.js";

/** Decompressed reports may be this many times their sent size (gzip of JSON compresses about 10:1). */
const DECOMPRESSION_FACTOR = 16;

export interface CompiledOwnDomains {
  ownDomains?: OwnDomains;
  /** The certificate Secret's keys the config names (name, key, path). */
  mounts: { secret: string; key: string; path: string }[];
  /** The report addresses (for localRecipients: they exist). */
  reportAddresses: string[];
  /** What the status prints. */
  records: DnsRecord[];
  policyId?: string;
  /** The mta-sts.<domain> names of the certificate (empty: no MTA-STS). */
  certificateNames: string[];
  /** The endpoint is compiled in (its certificate is issued). */
  endpoint: boolean;
}

const exactLocal = (relay: MailRelay): string[] =>
  (relay.spec.inbound.localDomains ?? [])
    .map((d) => canonicalPattern(d) ?? d)
    .filter((d) => !d.startsWith("*."));

export function compileOwnDomains(relay: MailRelay, view: ClusterView): CompiledOwnDomains {
  const spec = relay.spec;
  const sts = spec.mtaSts;
  const rx = spec.tlsRptReceiver;
  const empty: CompiledOwnDomains = {
    mounts: [],
    reportAddresses: [],
    records: [],
    certificateNames: [],
    endpoint: false,
  };
  if (!sts && !rx) return empty;
  const publication = sts
    ? {
        mode: sts.mode,
        mx: (sts.mx ?? [spec.hostname]).map((m) => canonicalPattern(m) ?? m),
        maxAgeSeconds: Math.round(durationSeconds(sts.maxAge)),
        domains: [...new Set((sts.domains ?? exactLocal(relay)).map((d) => canonicalPattern(d) ?? d))].sort(),
      }
    : undefined;
  const reportAddresses = rx ? exactLocal(relay).map((d) => `${rx.localPart}@${d}`) : [];
  const https = Boolean(rx?.https && publication);
  const secret = names.mtaStsCertificate(relay.metadata.name ?? "");
  const found = publication ? view.secrets.get(secret) : undefined;
  const refusal = relayIssuedSecretRefusal(
    relay.metadata.namespace ?? "",
    relay.metadata.name ?? "",
    "mtaSts",
    secret,
    relay.status?.issuedSecretUIDs,
    found,
  );
  // served only from the operator's own Secret once cert-manager filled it (a Secret refused here is
  // reported by the relay's reconcile, which applies no Certificate over it: mailrelay/reconcile.ts)
  const endpoint = Boolean(!refusal && found?.certificate && found.keys.has("tls.key"));
  const mounts = endpoint
    ? (["tls.crt", "tls.key"] as const).map((key) => ({ secret, key, path: secretPath(secret, key) }))
    : [];
  const maxReportBytes = rx ? quantityBytes(rx.maxReportSize) : 0;
  const ownDomains: OwnDomains = {
    ...(publication && endpoint
      ? {
          mtaSts: {
            port: MTA_STS_CONTAINER_PORT,
            host: "0.0.0.0",
            certFile: mounts[0]!.path,
            keyFile: mounts[1]!.path,
            ...publication,
          },
        }
      : {}),
    ...(rx
      ? {
          tlsRpt: {
            addresses: reportAddresses,
            https: https && endpoint,
            maxReportBytes,
            maxDecompressedBytes: maxReportBytes * DECOMPRESSION_FACTOR,
          },
        }
      : {}),
  };
  return {
    ownDomains,
    mounts,
    reportAddresses,
    records: ownDomainRecords({
      hostname: spec.hostname,
      ...(publication ? { mtaSts: publication } : {}),
      ...(rx ? { tlsRpt: { addresses: reportAddresses, https } } : {}),
    }),
    ...(publication ? { policyId: mtaStsPolicyId(mtaStsPolicyText(publication)) } : {}),
    certificateNames: publication ? publication.domains.map((d) => `mta-sts.${d}`) : [],
    endpoint,
  };
}
