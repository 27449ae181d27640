// References to other objects: by name in the same namespace, a key in a Secret or ConfigMap, and
// the cert-manager issuer that signs a certificate.
import { z } from "zod";
import { FQDN, LABEL } from "./dns-names.js";

/** Name of a Kubernetes object (RFC 1123 subdomain). */
export const OBJECT_NAME_PATTERN = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
/** Key inside a Secret or ConfigMap. */
export const DATA_KEY_PATTERN = /^[-._a-zA-Z0-9]+$/;

export const objectName = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(OBJECT_NAME_PATTERN, "must be a Kubernetes object name")
    .describe(description);

const dataKey = (description: string) =>
  z.string().min(1).max(253).regex(DATA_KEY_PATTERN, "must be a Secret/ConfigMap key").describe(description);

/** A reference to an object in the same namespace, by name. */
export const localRef = (description: string, nameDescription: string) =>
  z.object({ name: objectName(nameDescription) }).describe(description);

/** A key in a Secret or ConfigMap of the same namespace. */
export const keyRef = (description: string, what: "Secret" | "ConfigMap", defaultKey: string) =>
  z
    .object({
      name: objectName(`Name of the ${what} in the same namespace.`),
      key: dataKey(`Key inside the ${what}.`).default(defaultKey),
    })
    .describe(description);

/**
 * A PEM CA bundle from a ConfigMap or a Secret (key ca.crt): the object each caBundle field describes
 * and constrains (exactly one of the two) in its own words.
 */
export const pemBundleRefs = () =>
  z.object({
    configMapRef: keyRef("ConfigMap holding the PEM bundle.", "ConfigMap", "ca.crt").optional(),
    secretRef: keyRef("Secret holding the PEM bundle.", "Secret", "ca.crt").optional(),
  });

export const IssuerRef = z
  .object({
    name: objectName("Name of the cert-manager Issuer or ClusterIssuer."),
    kind: z
      .string()
      .max(63)
      .regex(/^[A-Z][A-Za-z0-9]*$/)
      .default("Issuer")
      .describe(
        "Issuer (same namespace) or ClusterIssuer (cluster-wide); an external issuer's kind when group is not cert-manager.io.",
      ),
    group: z
      .string()
      .max(253)
      .regex(new RegExp(`^${FQDN}$`))
      .default("cert-manager.io")
      .describe("API group of the issuer; cert-manager.io unless you use an external issuer."),
  })
  .describe(
    "The cert-manager issuer that signs the certificate. cert-manager must be installed; the operator creates a cert-manager Certificate and reports in status whether it was issued.",
  );
export type IssuerRef = z.infer<typeof IssuerRef>;
