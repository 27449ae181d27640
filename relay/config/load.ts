// Loads the relay's configuration directory: config.json (validated with the zod schema) and every
// file it references (server certificate and key, passwords, CA bundles, client certificates).
// Reads go through the `..data` symlink that kubelet swaps atomically, resolved once, so one load
// never mixes files of two generations. The config is config.json.gz (what the operator writes:
// contract/config-encoding.ts) or a plain config.json (tests, hand-written directories), never both.
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { lstat, readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { createSecureContext } from "node:tls";
import { checkReferences } from "../contract/config-checks.js";
import { errorCode, errorMessage, fail, ok, type Result } from "../contract/failure.js";
import {
  CONFIG_FILE,
  RelayConfig,
  type DeferredPolicy,
  type Outbound,
  type Policy,
} from "../contract/config.js";
import { CONFIG_GZ_FILE, decodeConfig } from "../contract/config-encoding.js";

export interface LoadedConfig {
  /** The directory as given (the mount point). */
  dir: string;
  config: RelayConfig;
  /** sha256 (hex) of the config.json bytes (decompressed): reported on /status, compared by the operator. */
  hash: string;
  /** sha256 (hex) of the config file as stored (compressed or not): a poll compares it without inflating. */
  storedHash: string;
  /** sha256 over config.json and every referenced file: changes on a certificate renewal too. */
  fingerprint: string;
  /** Every referenced file's bytes, by its path relative to the config directory. */
  files: ReadonlyMap<string, Buffer>;
  /**
   * Credentials whose material is unusable, with why: a client certificate or key that does not
   * load, a password that is empty. The policies using one defer their mail (key-material.ts,
   * CREDENTIAL_INVALID), an inbound account with an empty password logs nobody in; the rest of the
   * config is enforced. Their material comes from a namespace user's Secret, which the apiserver
   * does not check: refusing the whole config for one of them would freeze every other change (a
   * revocation, a stricter policy) on the last good config (attack review, session 6).
   */
  unusableCredentials: ReadonlyMap<string, string>;
  /**
   * The kubelet generation directory it was read from (the target of `..data`), when the directory
   * has one: kubelet never changes a file inside a generation, it writes a new one and swaps
   * `..data`, so a poll that finds the same one need not read anything again.
   */
  generation?: string;
  /**
   * Policies held because this pod lacks their material (withoutUnmounted): name → the missing
   * files. Their mail waits until the pod runs a template that mounts it.
   */
  heldForMaterial?: ReadonlyMap<string, string[]>;
  loadedAt: Date;
}

export interface LoadOutcome {
  result: Result<LoadedConfig>;
  /** Fingerprint of what was read, also for an invalid config (so a watcher reports it once). */
  fingerprint: string;
  /** With a refusal that reading the same input again would repeat: what it depends on (refusalStands). */
  refusal?: Refusal;
}

/**
 * What a refused config's answer depends on, so that a poll can tell it stands without reading,
 * decoding and validating the config again: at 10,000 policies that is 50-120 ms of the event loop
 * (docs/benchmarks.md, session 23), every second, on every pod, for as long as the refused config stays mounted (an
 * operator newer than the relay writes one until the image is upgraded). A refusal for a read that
 * failed (EMFILE, EIO) has none: the next poll reads again.
 */
export interface Refusal {
  /** The kubelet generation it was read from (swapped layout only): the same one holds the same files. */
  generation?: string;
  /** sha256 of the stored config, when its bytes alone refused it (decoding, JSON, the schema). */
  storedHash?: string;
}

/** Whether `dir` still shows what `r` was refused for (the same generation, or the same stored bytes). */
export async function refusalStands(dir: string, r: Refusal): Promise<boolean> {
  const root = await generationRoot(dir);
  if (r.generation !== undefined && root === r.generation) return true;
  if (r.storedHash === undefined) return false;
  const stored = await readStored(root);
  return stored.ok && sha256(stored.value.bytes) === r.storedHash;
}

/** Paths (relative to the config directory) the config references. Pure. */
export function referencedFiles(c: RelayConfig): string[] {
  const out = new Set<string>([c.tls.certFile, c.tls.keyFile]);
  if (c.fleet) out.add(c.fleet.keyFile);
  for (const cred of Object.values(c.credentials)) {
    if (cred.type === "password") out.add(cred.passwordFile);
    else {
      out.add(cred.certFile);
      out.add(cred.keyFile);
    }
  }
  if (c.mtaSts.caFile) out.add(c.mtaSts.caFile);
  const sts = c.ownDomains?.mtaSts;
  if (sts) for (const f of [sts.certFile, sts.keyFile]) out.add(f);
  if (c.wkd.caFile) out.add(c.wkd.caFile);
  for (const f of c.inbound.localRecipients?.files ?? []) out.add(f);
  for (const d of c.dkim) if (d.keyFile) out.add(d.keyFile);
  for (const o of [c.defaultOutbound, ...c.policies.map((p) => p.outbound)])
    for (const f of outboundFiles(o)) out.add(f);
  return [...out];
}

/** The files a policy's outbound section reads (its material, besides its credentials'). Pure. */
function outboundFiles(o: Outbound): string[] {
  const out: string[] = [];
  if (o.tls.caFile) out.push(o.tls.caFile);
  if (o.tls.audit?.caFile) out.push(o.tls.audit.caFile);
  out.push(...(o.smime?.certificateFiles ?? []));
  const fb = o.tlsFallback;
  if (fb?.action === "smime") out.push(...fb.smime.certificateFiles);
  if (fb?.action === "route" && fb.tls.caFile) out.push(fb.tls.caFile);
  out.push(...(o.openpgp?.keyringFiles ?? []));
  if (o.openpgp?.signingKeyFile) out.push(o.openpgp.signingKeyFile);
  return out;
}

/**
 * The config as a pod that lacks some policy material runs it, or undefined when a file the relay as
 * a whole needs is missing (its certificates, fleet key, local recipients, DKIM keys). The operator
 * applies the pod template that mounts a policy's new Secret or ConfigMap and, in the same reconcile,
 * the config that names it; the pods not replaced yet (a roll goes one pod at a time, and stops at a
 * pod that never gets Ready) see the new config without the file. Refusing the whole generation there
 * kept every other change (a partner's tightening, a revoked login) off those pods for the whole roll
 * (test/unit/attack-remount-old-pods-freeze.test.ts). So a policy whose material is missing is held
 * here as the operator holds one left out (a deferred policy: its mail waits, its partner's hosts keep
 * their rule, its login is refused), a credential whose file is missing is unusable (load's
 * unusableCredentials), and the rest of the generation applies. Pure.
 */
export function withoutUnmounted(
  c: RelayConfig,
  missing: ReadonlySet<string>,
): { config: RelayConfig; held: Map<string, string[]> } | undefined {
  const credentialFiles = new Set<string>();
  for (const k of Object.values(c.credentials))
    for (const f of k.type === "password" ? [k.passwordFile] : [k.certFile, k.keyFile])
      credentialFiles.add(f);
  const held = new Map<string, string[]>();
  const lacking = (o: Outbound) => outboundFiles(o).filter((f) => missing.has(f));
  const kept: Policy[] = [];
  const deferred: DeferredPolicy[] = [];
  const heldLogins = new Set(c.heldCredentials);
  const reason = (files: readonly string[]) =>
    `MountPending: this pod does not mount ${files.join(", ")} yet (it runs the pod template before the one that mounts it): the policy's mail waits until the pod is replaced`;
  for (const p of c.policies) {
    const files = lacking(p.outbound);
    if (!files.length) {
      kept.push(p);
      continue;
    }
    held.set(p.name, files);
    deferred.push({
      name: p.name,
      domains: [...p.domains],
      reason: reason(files),
      ...(p.inbound && p.inbound.require !== "none"
        ? { inbound: { hosts: [...p.inbound.hosts], require: p.inbound.require } }
        : {}),
    });
    for (const n of p.inbound?.credentials ?? []) heldLogins.add(n);
  }
  const defaultFiles = lacking(c.defaultOutbound);
  if (defaultFiles.length) {
    const name = c.defaultOutboundPolicy ?? "default";
    held.set(name, defaultFiles);
    deferred.push({ name, domains: ["*"], reason: reason(defaultFiles) });
  }
  const heldFiles = new Set([...held.values()].flat());
  if ([...missing].some((f) => !credentialFiles.has(f) && !heldFiles.has(f))) return undefined;
  return {
    config: {
      ...c,
      policies: kept,
      deferredPolicies: [...c.deferredPolicies, ...deferred],
      heldCredentials: [...heldLogins].sort(),
    },
    held,
  };
}

function sha256(...parts: Buffer[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

async function generationRoot(dir: string): Promise<string> {
  // kubelet layout: <dir>/..data -> ..2024_01_01_00_00_00.123 (atomic swap); read through the target
  try {
    return await realpath(join(dir, "..data"));
  } catch {
    return dir;
  }
}

/**
 * Whether `dir` is kubelet's layout, whose `..data` is a symlink swapped to each new generation: only
 * then does an unchanged target mean unchanged files (a `..data` that is a plain directory, a copied
 * volume say, is edited in place: the session's review).
 */
async function swappedGeneration(dir: string): Promise<boolean> {
  try {
    return (await lstat(join(dir, "..data"))).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Strips one trailing newline (files created with `echo`/kubectl from-file often carry one). */
/** The longest password the relay sends or accepts (SMTP AUTH passwords are far shorter). */
export const MAX_PASSWORD_BYTES = 512;

/**
 * Why a password file is not a password, or undefined. Empty: anyone who knew the username would get
 * in (attack review, session 6). More than one line or over MAX_PASSWORD_BYTES: a key or a token
 * (PEM, armored OpenPGP, a service-account JWT), which a credential whose author could not read it
 * would otherwise send to a server of theirs as AUTH (attack review, session 9; the operator refuses
 * the relay's own Secrets by name, this is the floor for every other key). Starting with REPLACE-ME:
 * a placeholder of examples/, a password everyone knows.
 */
export function passwordProblem(password: string): string | undefined {
  if (password.trim() === "") return "the password is empty or white space only";
  if (/[\r\n]/.test(password) || Buffer.byteLength(password) > MAX_PASSWORD_BYTES)
    return `the password is more than one line or over ${MAX_PASSWORD_BYTES} bytes: a key or a token, never sent or accepted as a password`;
  // bytes that are not UTF-8 read as U+FFFD (secretText), and smtp-server decodes a client's AUTH
  // password the same lossy way: any other invalid bytes in their place logged the account in
  // (attack review: test/mail/attack-auth-password-not-utf8.test.ts). A U+FFFD in the file itself
  // is the same mark, which a client's invalid bytes would match too.
  if (password.includes("\uFFFD"))
    return "the password is not UTF-8 text (raw random bytes?): its bytes cannot be compared; use printable text (e.g. base64 of the random bytes)";
  // examples/' marked placeholders are published with this repository: a forgotten one would be a
  // login anyone may use (an account with allowRelay: an open relay). Out-of-the-box review.
  if (/^\s*REPLACE-ME/i.test(password))
    return "the password is a placeholder of the examples (REPLACE-ME...), published with them: put a long random password in its Secret";
  return undefined;
}

export function secretText(b: Buffer): string {
  return b.toString("utf8").replace(/\r?\n$/, "");
}

/** The config file of a generation as stored: config.json.gz or config.json (both: refused). */
async function readStored(root: string): Promise<Result<{ name: string; bytes: Buffer }>> {
  const read = (name: string) =>
    readFile(join(root, name)).then(
      (bytes) => ({ name, bytes }),
      (e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return undefined;
        throw e;
      },
    );
  try {
    const [gz, plain] = await Promise.all([read(CONFIG_GZ_FILE), read(CONFIG_FILE)]);
    if (gz && plain)
      return fail(
        "CONFIG_INVALID",
        false,
        `both ${CONFIG_GZ_FILE} and ${CONFIG_FILE}: which one applies is unclear`,
      );
    const found = gz ?? plain;
    if (!found)
      return fail("CONFIG_UNREADABLE", true, `${CONFIG_FILE}: no ${CONFIG_GZ_FILE} or ${CONFIG_FILE}`);
    return ok(found);
  } catch (e) {
    return fail("CONFIG_UNREADABLE", true, `${CONFIG_FILE}: ${errorMessage(e)}`);
  }
}

/** Reads the files the config references; the fingerprint covers the stored config and all of them. */
async function readReferenced(
  root: string,
  raw: Buffer,
  referenced: string[],
): Promise<{
  files: Map<string, Buffer>;
  missing: Map<string, string>;
  unreadable: string[];
  fingerprint: string;
}> {
  const files = new Map<string, Buffer>();
  const parts: Buffer[] = [raw];
  const missing = new Map<string, string>();
  const unreadable: string[] = [];
  for (const rel of [...referenced].sort()) {
    try {
      const b = await readFile(join(root, rel));
      files.set(rel, b);
      parts.push(Buffer.from(`\0${rel}\0`), b);
    } catch (e) {
      // absent from the generation (a pod of the template before the one that mounts it) is what a
      // policy may be held for (withoutUnmounted); any other error (EMFILE, EIO, a directory) is
      // this read's, not the generation's: it refuses the generation and the next poll reads again
      // (the session's review: held for an EMFILE, the generation shortcut never read it again)
      if (errorCode(e) === "ENOENT") missing.set(rel, `${rel}: ${errorMessage(e)}`);
      else unreadable.push(`${rel}: ${errorMessage(e)}`);
      parts.push(Buffer.from(`\0${rel}\0missing`));
    }
  }
  return { files, missing, unreadable, fingerprint: sha256(...parts) };
}

/**
 * The directory's current fingerprint when its config.json is byte-identical to `known`'s (so it
 * references the same files), without parsing, validating or loading keys again: a poll that finds
 * nothing changed costs a few reads and a hash, not a stall of the event loop. undefined when
 * config.json changed or cannot be read: then loadConfig decides.
 */
export async function unchangedFingerprint(dir: string, known: LoadedConfig): Promise<string | undefined> {
  const root = await generationRoot(dir);
  // the same kubelet generation: the same bytes. Reading every referenced file again, every second,
  // cost each pod as much reading and hashing as the policies' material weighs, which their authors
  // size (Secrets of up to 1 MiB each; test/unit/attack-material-poll-cost.test.ts)
  if (known.generation !== undefined && root === known.generation) return known.fingerprint;
  const stored = await readStored(root);
  if (!stored.ok || sha256(stored.value.bytes) !== known.storedHash) return undefined;
  return (await readReferenced(root, stored.value.bytes, referencedFiles(known.config))).fingerprint;
}

export async function loadConfig(dir: string, retries = 3): Promise<LoadOutcome> {
  const root = await generationRoot(dir);
  const stored = await readStored(root);
  if (!stored.ok) {
    if (retries > 0 && (await generationRoot(dir)) !== root) return loadConfig(dir, retries - 1);
    return { result: stored, fingerprint: "" };
  }
  const storedHash = sha256(stored.value.bytes);
  const generation = (await swappedGeneration(dir)) ? root : undefined;
  // refused for these bytes, or for this generation's files (refusalStands)
  const byBytes: Refusal = { storedHash, ...(generation !== undefined ? { generation } : {}) };
  const byGeneration: Refusal | undefined = generation !== undefined ? { generation } : undefined;
  // a corrupt or oversized config.json.gz is refused like invalid JSON: the last good config stays
  const decoded =
    stored.value.name === CONFIG_GZ_FILE ? decodeConfig(stored.value.bytes) : ok(stored.value.bytes);
  if (!decoded.ok) return { result: decoded, fingerprint: storedHash, refusal: byBytes };
  const raw = decoded.value;
  const hash = sha256(raw);
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch (e) {
    return {
      result: fail("CONFIG_INVALID", false, `${stored.value.name}: ${errorMessage(e)}`),
      fingerprint: storedHash,
      refusal: byBytes,
    };
  }
  const parsed = RelayConfig.safeParse(json);
  if (!parsed.success) {
    // a key this relay does not know is a newer operator's (or a typo): never dropped, since it may
    // be what makes a partner's mail safe
    const msg = parsed.error.issues
      .map(
        (i) =>
          `${i.path.join(".")}: ${i.message}` +
          (i.code === "unrecognized_keys" ? " (written for a newer relay: upgrade the relay's image)" : ""),
      )
      .join("; ");
    return { result: fail("CONFIG_INVALID", false, msg), fingerprint: storedHash, refusal: byBytes };
  }
  let config = parsed.data;
  const { files, missing, unreadable, fingerprint } = await readReferenced(
    root,
    stored.value.bytes,
    referencedFiles(config),
  );
  // kubelet removes the old generation right after swapping `..data`: a read that started in it is
  // not a broken config; read the new generation instead (bounded)
  if ((missing.size || unreadable.length) && retries > 0 && (await generationRoot(dir)) !== root)
    return loadConfig(dir, retries - 1);
  if (unreadable.length)
    return { result: fail("CONFIG_FILES_MISSING", true, unreadable.join("; ")), fingerprint };
  // policy material this pod does not mount yet holds those policies only (withoutUnmounted)
  const partial = missing.size ? withoutUnmounted(config, new Set(missing.keys())) : undefined;
  if (missing.size && !partial)
    return {
      result: fail("CONFIG_FILES_MISSING", true, [...missing.values()].join("; ")),
      fingerprint,
      ...(byGeneration ? { refusal: byGeneration } : {}),
    };
  if (partial) config = partial.config;
  const problems = checkReferences(config);
  // The server certificate must load; a broken renewal keeps the last good one.
  try {
    createSecureContext({ cert: files.get(config.tls.certFile), key: files.get(config.tls.keyFile) });
  } catch (e) {
    problems.push(`server certificate/key: ${errorMessage(e)}`);
  }
  const sts = config.ownDomains?.mtaSts;
  if (sts)
    try {
      createSecureContext({ cert: files.get(sts.certFile), key: files.get(sts.keyFile) });
    } catch (e) {
      problems.push(`ownDomains.mtaSts certificate/key: ${errorMessage(e)}`);
    }
  const unusableCredentials = new Map<string, string>();
  for (const [name, k] of Object.entries(config.credentials)) {
    const own = k.type === "clientCertificate" ? [k.certFile, k.keyFile] : [k.passwordFile];
    const unmounted = own.filter((f) => missing.has(f));
    const why = unmounted.length
      ? `this pod does not mount ${unmounted.join(", ")} yet (it runs the pod template before the one that mounts it)`
      : k.type === "clientCertificate"
        ? clientCertificateProblem(files.get(k.certFile), files.get(k.keyFile))
        : passwordProblem(secretText(files.get(k.passwordFile) ?? Buffer.alloc(0)));
    if (why) unusableCredentials.set(name, why);
  }
  if (problems.length)
    return {
      result: fail("CONFIG_INVALID", false, problems.join("; ")),
      fingerprint,
      ...(byGeneration ? { refusal: byGeneration } : {}),
    };
  return {
    result: ok({
      dir,
      config,
      // holding policies, the pod does not run the config the operator compiled: not its hash, so
      // that no policy reads Enforced on it (the pod is "behind" until it is replaced)
      hash: partial ? sha256(raw, Buffer.from(`\0held:${[...partial.held.keys()].join(",")}`)) : hash,
      storedHash,
      fingerprint,
      files,
      unusableCredentials,
      ...(partial ? { heldForMaterial: partial.held } : {}),
      ...(generation !== undefined ? { generation } : {}),
      loadedAt: new Date(),
    }),
    fingerprint,
  };
}

/**
 * Why a client certificate and its key cannot be used (either does not parse, or the key is not the
 * certificate's), or undefined. Not OpenSSL's TLS security level (createSecureContext would refuse an
 * RSA-1024 key that signs S/MIME only; in TLS, a connection finds that out). Pure.
 */
export function clientCertificateProblem(
  cert: Buffer | undefined,
  key: Buffer | undefined,
): string | undefined {
  try {
    const c = new X509Certificate(cert ?? "");
    if (!c.checkPrivateKey(createPrivateKey(key ?? ""))) return "the key is not the certificate's";
    return undefined;
  } catch (e) {
    return errorMessage(e);
  }
}

/** Bytes of a referenced file (present after a successful load). */
export function fileOf(l: LoadedConfig, rel: string): Buffer {
  const b = l.files.get(rel);
  if (!b) throw new Error(`file ${rel} was not loaded`);
  return b;
}
