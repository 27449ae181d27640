// cert-manager Certificates: the relay's server certificate for spec.hostname, and client
// certificates of RelayCredentials that ask an issuer for one. Pure.
import type * as cm from "../../api/cert-manager/v1.js";
import type { IssuerRef } from "../api.js";
import type { KubeObject } from "../runtime/kube.js";
import {
  names,
  objectMeta,
  relayLabels,
  CREDENTIAL_LABEL,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  type Owner,
} from "./meta.js";

/** A Certificate as the operator applies it: the generated cert-manager type with the metadata we set. */
export type CertificateObject = Omit<cm.Certificate, "metadata"> & KubeObject & { spec: cm.CertificateSpec };

/** The issuerRef of the Certificates the operator applies (kind and group defaulted). */
export function issuer(ref: IssuerRef): cm.CertificateSpec["issuerRef"] {
  return { name: ref.name, kind: ref.kind ?? "Issuer", group: ref.group ?? "cert-manager.io" };
}

/** A server certificate of the relay pods, in a Secret of the same name. */
function relayServerCertificate(
  owner: Owner,
  name: string,
  dnsNames: string[],
  ref: IssuerRef,
): CertificateObject {
  const labels = relayLabels(owner.name);
  return {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: objectMeta(owner, name, labels),
    spec: {
      secretName: name,
      dnsNames: [...dnsNames],
      issuerRef: issuer(ref),
      usages: ["server auth", "digital signature", "key encipherment"],
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
      secretTemplate: { labels },
    },
  };
}

export function renderServerCertificate(owner: Owner, hostname: string, ref: IssuerRef): CertificateObject {
  return relayServerCertificate(owner, names.serverCertificate(owner.name), [hostname], ref);
}

/** The certificate of the MTA-STS endpoint: every mta-sts.<domain> it serves (spec.mtaSts). */
export function renderMtaStsCertificate(owner: Owner, dnsNames: string[], ref: IssuerRef): CertificateObject {
  return relayServerCertificate(owner, names.mtaStsCertificate(owner.name), dnsNames, ref);
}

export function renderClientCertificate(
  owner: Owner,
  secretName: string,
  dnsNames: string[],
  ref: IssuerRef,
): CertificateObject {
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY, [CREDENTIAL_LABEL]: owner.name };
  return {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: objectMeta(owner, secretName, labels),
    spec: {
      secretName,
      dnsNames: [...dnsNames],
      issuerRef: issuer(ref),
      usages: ["client auth", "digital signature", "key encipherment"],
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
      secretTemplate: { labels },
    },
  };
}

/** cert-manager's Ready condition and notAfter of a Certificate (undefined when missing). */
export function certificateState(
  c: KubeObject | undefined,
): { ready: boolean; notAfter?: string; message?: string } | undefined {
  if (!c) return undefined;
  const st = c.status as cm.CertificateStatus | undefined;
  const ready = st?.conditions?.find((x) => x.type === "Ready");
  return { ready: ready?.status === "True", notAfter: st?.notAfter, message: ready?.message };
}
