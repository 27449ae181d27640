// A policy's OpenPGP section (api/v1alpha1/openpgp.ts) compiled into the relay's
// outbound.openpgp: its keyring Secret or ConfigMap and signing key become file paths (a missing
// one is a problem that leaves the policy out, so its mail defers rather than leaving unencrypted).
// Pure.
import type { Policy } from "../../relay/contract/config.js";
import { OPENPGP_KEYRING_SUFFIX, type Openpgp } from "../../api/v1alpha1/openpgp.js";
import type { Refs } from "./references.js";

export function compileOpenpgp(o: Openpgp, refs: Refs): Policy["outbound"]["openpgp"] | undefined {
  const rk = o.recipientKeys;
  const suffixes = [OPENPGP_KEYRING_SUFFIX];
  const files = rk.secretRef
    ? refs.keysEnding("Secret", rk.secretRef.name, suffixes)
    : rk.configMapRef
      ? refs.keysEnding("ConfigMap", rk.configMapRef.name, suffixes)
      : [];
  const signingKeyFile = o.signingKeyRef
    ? refs.secretKey(o.signingKeyRef.name, o.signingKeyRef.key)
    : undefined;
  if (!files || (o.signingKeyRef && !signingKeyFile)) return undefined;
  return {
    keyringFiles: files,
    webKeyDirectory: rk.webKeyDirectory,
    missingKey: o.missingKey,
    ...(signingKeyFile ? { signingKeyFile } : {}),
  };
}
