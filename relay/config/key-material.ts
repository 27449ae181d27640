// The key material a loaded config points at, read from its files once per loaded config: inbound
// accounts (passwords), a route's CA bundle, client certificate and AUTH password, a policy's S/MIME
// recipient certificates and signer, its OpenPGP keyrings and signing key, a DKIM domain's private
// key. Secrets never travel in the config itself, only their paths
// (relay/contract/config.ts).
import { fail, type Failure } from "../contract/failure.js";
import type { InboundAccount } from "../inbound/auth.js";
import { compileAuthority } from "../inbound/authority.js";
import { compileInbound } from "../inbound/rules.js";
import type { InboundState } from "../inbound/server.js";
import type { Logger } from "../log.js";
import type { SmimeMaterial } from "../outbound/deliver.js";
import { readKeyring, readSigningKey } from "../outbound/openpgp.js";
import type { OpenpgpMaterial } from "../outbound/openpgp-delivery.js";
import type { Route } from "../outbound/route.js";
import { loadCertificates, loadSigner } from "../outbound/smime.js";
import { loadDkimKey } from "../outbound/dkim.js";
import type { KeyObject } from "node:crypto";
import type { DkimSigning } from "../contract/dkim-config.js";
import type { Result } from "../contract/failure.js";
import type { Material } from "../outbound/transport-options.js";
import { fileOf, secretText, type LoadedConfig } from "./load.js";

function accountsOf(l: LoadedConfig): InboundAccount[] {
  const out: InboundAccount[] = [];
  for (const [name, k] of Object.entries(l.config.credentials)) {
    // an empty password would let anyone who knows the username in (attack review, session 6)
    if (k.type === "password" && k.usage === "inbound" && !l.unusableCredentials.has(name))
      out.push({ name, username: k.username, password: secretText(fileOf(l, k.passwordFile)) });
  }
  return out;
}

export function inboundState(l: LoadedConfig): InboundState {
  const ci = compileInbound(l.config);
  if (!ci.ok) throw new Error(ci.message); // validated by loadConfig
  return {
    loaded: l,
    inbound: ci.value,
    accounts: accountsOf(l),
    authority: compileAuthority(l.config, l.files),
  };
}

/**
 * A credential that loadConfig found unusable (a client certificate that does not load, an empty
 * password): the mail of the policies using it waits (deferred) for its Secret to be fixed, never
 * goes without it.
 */
function unusable(l: LoadedConfig, name: string, what: string): Failure | undefined {
  const why = l.unusableCredentials.get(name);
  return why === undefined
    ? undefined
    : fail(
        "CREDENTIAL_INVALID",
        true,
        `${what} ${name} is unusable (${why}): fix its Secret (a PEM certificate and its key in tls.crt and tls.key; a password that is not empty, nor an example's REPLACE-ME placeholder)`,
      );
}

export function materialFor(l: LoadedConfig, route: Route): Material | Failure {
  const o = route.outbound;
  const m: Material = {};
  if (o.tls.caFile) m.ca = fileOf(l, o.tls.caFile);
  if (o.tls.audit?.caFile) m.auditCa = fileOf(l, o.tls.audit.caFile);
  if (o.tls.clientCredential) {
    const k = l.config.credentials[o.tls.clientCredential];
    if (k?.type !== "clientCertificate")
      return fail("CREDENTIAL_MISSING", true, `client credential ${o.tls.clientCredential} missing`);
    const bad = unusable(l, o.tls.clientCredential, "client credential");
    if (bad) return bad;
    m.clientCert = { cert: fileOf(l, k.certFile), key: fileOf(l, k.keyFile) };
  }
  if (o.authCredential) {
    const k = l.config.credentials[o.authCredential];
    if (k?.type !== "password")
      return fail("CREDENTIAL_MISSING", true, `credential ${o.authCredential} missing`);
    const bad = unusable(l, o.authCredential, "credential");
    if (bad) return bad;
    m.auth = { user: k.username, pass: secretText(fileOf(l, k.passwordFile)) };
  }
  return m;
}

const smimeCache = new WeakMap<LoadedConfig, Map<string, Promise<SmimeMaterial | Failure>>>();

/** Recipient certificates and signer of a route's policy, parsed once per loaded config. */
export function smimeMaterialFor(
  l: LoadedConfig,
  route: Route,
  log?: Logger,
): Promise<SmimeMaterial | Failure> {
  let byPolicy = smimeCache.get(l);
  if (!byPolicy) smimeCache.set(l, (byPolicy = new Map<string, Promise<SmimeMaterial | Failure>>()));
  // a policy's own S/MIME and its TLS fallback's (fallback-delivery.ts) may name different sources
  const s0 = route.outbound.smime;
  const key = s0 ? `${route.policy}|${JSON.stringify(s0)}` : route.policy;
  const cached = byPolicy.get(key);
  if (cached) return cached;
  const p = (async (): Promise<SmimeMaterial | Failure> => {
    const s = route.outbound.smime;
    if (!s) return fail("SMIME_UNAVAILABLE", true, "policy has no smime section");
    const { certs, problems } = loadCertificates(s.certificateFiles.map((f) => fileOf(l, f)));
    if (problems.length)
      log?.warn(
        { event: "smime-certificates", policy: route.policy, problems },
        "unusable S/MIME certificates",
      );
    if (!s.sign) return { certs };
    let certFile = l.config.tls.certFile;
    let keyFile = l.config.tls.keyFile;
    if (s.signingCredential) {
      const k = l.config.credentials[s.signingCredential];
      if (k?.type !== "clientCertificate")
        return fail("CREDENTIAL_MISSING", true, `signing credential ${s.signingCredential} missing`);
      const bad = unusable(l, s.signingCredential, "signing credential");
      if (bad) return bad;
      ({ certFile, keyFile } = k);
    }
    const signer = await loadSigner(fileOf(l, certFile), fileOf(l, keyFile));
    if (!signer.ok) return signer;
    return { certs, signer: signer.value };
  })();
  byPolicy.set(key, p);
  return p;
}

const dkimCache = new WeakMap<LoadedConfig, Map<string, Result<KeyObject>>>();

/** A DKIM domain's private key (DKIM_KEY_INVALID when it does not load), parsed once per loaded config. */
export function dkimKeyFor(l: LoadedConfig, entry: DkimSigning & { keyFile: string }): Result<KeyObject> {
  let byFile = dkimCache.get(l);
  if (!byFile) dkimCache.set(l, (byFile = new Map<string, Result<KeyObject>>()));
  const id = `${entry.algorithm}\0${entry.keyFile}`;
  let key = byFile.get(id);
  if (!key) {
    const pem = l.files.get(entry.keyFile);
    key = pem
      ? loadDkimKey(pem, entry.algorithm)
      : fail("DKIM_KEY_UNAVAILABLE", true, `DKIM key file ${entry.keyFile} not loaded`);
    byFile.set(id, key);
  }
  return key;
}

const openpgpCache = new WeakMap<LoadedConfig, Map<string, Promise<OpenpgpMaterial | Failure>>>();

/** Keyring keys and signing key of a route's OpenPGP policy, parsed once per loaded config. */
export function openpgpMaterialFor(
  l: LoadedConfig,
  route: Route,
  log?: Logger,
): Promise<OpenpgpMaterial | Failure> {
  let byPolicy = openpgpCache.get(l);
  if (!byPolicy) openpgpCache.set(l, (byPolicy = new Map<string, Promise<OpenpgpMaterial | Failure>>()));
  const cached = byPolicy.get(route.policy);
  if (cached) return cached;
  const p = (async (): Promise<OpenpgpMaterial | Failure> => {
    const o = route.outbound.openpgp;
    if (!o) return fail("OPENPGP_UNAVAILABLE", true, "policy has no openpgp section");
    const keys = [];
    const problems: string[] = [];
    for (const f of o.keyringFiles) {
      const r = await readKeyring(fileOf(l, f));
      keys.push(...r.keys);
      problems.push(...r.problems.map((m) => `${f}: ${m}`));
    }
    if (problems.length)
      log?.warn({ event: "openpgp-keyring", policy: route.policy, problems }, "unusable OpenPGP keys");
    if (!o.signingKeyFile) return { keys };
    const signer = await readSigningKey(fileOf(l, o.signingKeyFile));
    if (!signer.ok) return signer;
    return { keys, signer: signer.value };
  })();
  byPolicy.set(route.policy, p);
  return p;
}
