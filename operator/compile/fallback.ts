// A MailDomainPolicy's spec.outbound.tls.fallback compiled into the relay config's
// outbound.tlsFallback (relay/outbound/fallback.ts decides when it applies). Its references (the
// smime fallback's recipient certificates, the alternate next hop's CA bundle) resolve like any other
// (references.ts). What the CEL rules refuse is refused here too, for an object written past them
// (an apiserver without the current CRD): a fallback never gets weaker than the API allows. defer
// compiles to nothing, so a policy that says defer enforces exactly what one without a fallback does.
// Pure.
import type { TlsFallback } from "../../relay/contract/config.js";
import type { MailDomainPolicy } from "../api.js";
import type { Refs } from "./references.js";

type Outbound = MailDomainPolicy["spec"]["outbound"];
const FIELD = "spec.outbound.tls.fallback";

/** Why the fallback cannot be compiled as written (the CEL rules' verdicts); empty when fine. Pure. */
export function fallbackProblems(o: Outbound): string[] {
  const f = o.tls.fallback;
  if (!f || f.action === "defer") return [];
  const out: string[] = [];
  if (o.tls.mode === "none" || o.tls.mode === "opportunistic")
    out.push(`${FIELD}: mode ${o.tls.mode} never refuses a server, so a fallback never applies: remove it`);
  if (f.action === "smime" && !f.smime) out.push(`${FIELD}.smime: action smime needs it`);
  if (f.action === "route" && !f.route) out.push(`${FIELD}.route: action route needs it`);
  if (f.action === "smime" && o.messageEncryption)
    out.push(`${FIELD}.action: messageEncryption.smime already encrypts every message: use route or defer`);
  const t = f.route?.tls;
  if (f.action === "route" && t?.mode === "verify" && !t.caBundle && !t.trustSystemRoots)
    out.push(`${FIELD}.route.tls.caBundle: mode verify needs caBundle or trustSystemRoots: true`);
  if (f.action === "route" && t?.mode === "pinned" && !t.pins?.length)
    out.push(`${FIELD}.route.tls.pins: mode pinned needs pins`);
  return out;
}

export function compileFallback(o: Outbound, refs: Refs): TlsFallback | undefined {
  const f = o.tls.fallback;
  if (!f || f.action === "defer") return undefined;
  const problems = fallbackProblems(o);
  if (problems.length) {
    for (const message of problems) refs.problems.push({ reason: "InvalidSpec", message });
    return undefined;
  }
  if (f.action === "smime" && f.smime) {
    const rc = f.smime.recipientCertificates;
    const files = rc.secretRef
      ? refs.pemKeys("Secret", rc.secretRef.name)
      : rc.configMapRef
        ? refs.pemKeys("ConfigMap", rc.configMapRef.name)
        : undefined;
    if (!files?.length) return undefined; // pemKeys reported why
    return {
      action: "smime",
      session: f.smime.session,
      smime: { certificateFiles: files, sign: f.smime.sign, contentEncryption: f.smime.contentEncryption },
    };
  }
  const r = f.route!;
  const ca = r.tls.caBundle;
  const caFile = ca?.configMapRef
    ? refs.configMapKey(ca.configMapRef.name, ca.configMapRef.key)
    : ca?.secretRef
      ? refs.secretKey(ca.secretRef.name, ca.secretRef.key)
      : undefined;
  if (ca && !caFile) return undefined; // the reference's problem is reported
  return {
    action: "route",
    nextHop: { host: r.host, port: r.port },
    tls: {
      mode: r.tls.mode,
      minVersion: r.tls.minVersion ?? "TLSv1.2",
      ...(caFile ? { caFile } : {}),
      ...(r.tls.matchNames?.length ? { matchNames: [...r.tls.matchNames] } : {}),
      ...(r.tls.pins?.length ? { pins: [...r.tls.pins] } : {}),
    },
  };
}
