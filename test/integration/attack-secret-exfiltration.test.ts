// Attack review (session 9): a namespace user who may write RelayCredentials and MailDomainPolicies
// (and ConfigMaps) in `mail`, but may NOT get or list Secrets there (RBAC), had the relay send the
// value of any Secret key of the namespace to a server of theirs as an SMTP AUTH password. The
// credential's passwordSecretRef names the victim Secret, its restrictTo.nextHops the tenant's own
// server; the tenant's policy for its own domain sends mail there by mode verify (the tenant's CA,
// from a ConfigMap of its own) with auth.credentialRef = that credential. The operator accepted both,
// the StatefulSet projected the Secret key into the pod, and the relay logged in with AUTH PLAIN
// carrying the victim's value: the relay's TLS key, its fleet key, its admin token.
// Two guards now: the chart's admission policy refuses a user any Secret they may not read
// (chart-admission-secrets.test.ts: another app's password, a partner's login); this file runs
// without the chart, and shows the operator's own floor (compile/password-secret.ts): the relay's own
// Secrets and key-holding Secret types are never a password, whoever names them.
// The relay here runs what the operator rendered: the StatefulSet's projected volume materialised
// as kubelet would (demo/materialise.ts, as operator-config-size.test.ts does) with only the laptop
// overrides (listener/admin ports, queue dir, DNS, allowedInternalCidrs), in this process.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- assertions walk the apiserver's JSON */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SMTPServer } from "smtp-server";
import {
  applyOverrides,
  fetchAndMaterialise,
  projectedSources,
  unmountedConfigFiles,
} from "../../demo/materialise.js";
import type { Operator } from "../../operator/operator.js";
import type { Condition } from "../../operator/runtime/conditions.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import { CONFIG_GZ_FILE, decodeConfig } from "../../relay/contract/config-encoding.js";
import type { Relay } from "../../relay/relay.js";
import { makeCa, makeLeaf, type Ca } from "../support/certs.js";
import type { ControlPlane } from "../support/controlplane.js";
import { controlPlaneFor, operatorIdentity, startOperator, stopAll } from "../support/operator.js";
import { relayManifest } from "../support/operator-fixtures.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/process.js";
import { startRelay, writeConfigDir, type LogCapture } from "../support/relay.js";
import { swaks } from "../support/swaks.js";
import { tenantClient } from "../support/tenant.js";

const NS = "mail";
type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

const cond = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
const b64 = (s: string | Buffer): string => Buffer.from(s).toString("base64");

/**
 * The Secrets the tenant may not read, the key of each it asks the relay for, and who refuses it: the
 * operator (a relay's own Secrets, the DKIM keys: compile/password-secret.ts) or, for a key it cannot
 * tell from a password by name or type, the relay (a password is one line: relay/config/load.ts).
 */
const VICTIMS = [
  {
    id: "tlskey",
    secret: "edge-tls",
    key: "tls.key",
    what: "the relay's own TLS private key",
    by: "operator",
  },
  {
    id: "fleet",
    secret: "edge-fleet",
    key: "key",
    what: "the relay's fleet (queue handover) key",
    by: "operator",
  },
  { id: "admin", secret: "edge-admin", key: "token", what: "the relay's admin API token", by: "operator" },
  {
    id: "dkim",
    secret: "dkim-corp",
    key: "private.key",
    what: "the organisation's DKIM key",
    by: "operator",
  },
  {
    id: "pgp",
    secret: "pgp-corp",
    key: "signing-key.asc",
    what: "an OpenPGP signing key (Opaque)",
    by: "relay",
  },
] as const;
const REFUSED_BY_OPERATOR = VICTIMS.filter((v) => v.by === "operator");

/** The tenant's SMTP server: STARTTLS with a certificate of the tenant's CA; keeps every AUTH it gets. */
async function tenantServer(cert: Buffer, key: Buffer) {
  const logins: { user: string; pass: string; secure: boolean }[] = [];
  const rcpts: string[] = [];
  const server = new SMTPServer({
    name: "mx.tenant.example",
    logger: false,
    disableReverseLookup: true,
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: true,
    cert,
    key,
    onAuth(auth, session, cb) {
      logins.push({ user: auth.username ?? "", pass: auth.password ?? "", secure: session.secure });
      cb(null, { user: auth.username });
    },
    onRcptTo(addr, _s, cb) {
      rcpts.push(addr.address);
      cb();
    },
    onData(stream, _s, cb) {
      stream.resume();
      stream.on("end", () => cb(null, "2.0.0 thanks"));
    },
  });
  server.on("error", () => undefined);
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { port, logins, rcpts, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("attack: a credential author without Secret access has the relay send the relay's own Secrets to their server", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let op: Operator;
  let work: string;
  let ca: Ca;
  let theirs: Awaited<ReturnType<typeof tenantServer>>;
  let relay: Relay | undefined;
  let logs: LogCapture | undefined;
  let smtpPort: number;
  const values = new Map<string, string>();

  const get = (r: (typeof R)[keyof typeof R], name: string) => admin.find<Obj>(r, NS, name);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "secret-exfil-"));
    ({ cp, admin } = await controlPlaneFor(NS));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);

    // --- what other people own in `mail` (the admin creates them) ---
    const relayCa = await makeCa(join(work, "relay-ca"), "Corp CA");
    const relayLeaf = await makeLeaf(relayCa, { cn: "relay.example.com", dnsNames: ["relay.example.com"] });
    const secret = (name: string, data: Record<string, string | Buffer>, type = "Opaque"): Obj => ({
      apiVersion: "v1",
      kind: "Secret",
      type,
      metadata: { name, namespace: NS },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    });
    await admin.create(secret("billing-db", { password: `billing-${randomBytes(12).toString("hex")}` }));
    await admin.create(secret("edge-admin", { token: `admin-${randomBytes(16).toString("hex")}` }));
    // the organisation's DKIM key (kubectl create secret generic, as docs/dkim.md) and its credential,
    // and an OpenPGP signing key in an Opaque Secret no credential names
    const dkimKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    });
    await admin.create(secret("dkim-corp", { "private.key": dkimKey }));
    await admin.create({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "RelayCredential",
      metadata: { name: "dkim-corp", namespace: NS },
      spec: {
        type: "dkim",
        usage: "outbound",
        dkim: { selector: "2026a", privateKeySecretRef: { name: "dkim-corp", key: "private.key" } },
      },
    });
    await admin.create(
      secret("pgp-corp", {
        "signing-key.asc": `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${randomBytes(600).toString("base64")}\n-----END PGP PRIVATE KEY BLOCK-----\n`,
      }),
    );
    await admin.apply(
      relayManifest({
        inbound: { relayFrom: ["127.0.0.1/32"] },
        admin: { tokenSecretRef: { name: "edge-admin", key: "token" } },
      }),
      { fieldManager: "relay-admin" },
    );
    // cert-manager does not run here: what it would write for the relay's Certificate edge-tls, into
    // the Secret the operator created for it (empty, its uid in status.issuedSecretUIDs.server)
    const edgeTls = await waitFor("edge-tls created by the operator", () => get(R.Secret, "edge-tls"));
    await admin.mergePatch(R.Secret, NS, "edge-tls", {
      data: {
        "tls.crt": b64(await readFile(relayLeaf.certFile)),
        "tls.key": b64(await readFile(relayLeaf.keyFile)),
      },
    });
    await waitFor("edge-tls recorded as the relay's", async () =>
      (await get(R.MailRelay, "edge"))?.status?.issuedSecretUIDs?.server === edgeTls.metadata.uid
        ? true
        : undefined,
    );
    // the operator's own fleet Secret (created for a relay with an admin token)
    await waitFor("edge-fleet", () => get(R.Secret, "edge-fleet"));
    for (const v of VICTIMS) {
      const s = await get(R.Secret, v.secret);
      values.set(
        v.id,
        Buffer.from(s!.data![v.key]!, "base64")
          .toString("utf8")
          .replace(/\r?\n$/, ""),
      );
    }

    // --- the tenant: credentials, policies, ConfigMaps; no Secrets ---
    tenant = await tenantClient(cp, admin, NS, "team-t", [
      {
        apiGroups: ["sealpost.dev"],
        resources: ["relaycredentials", "maildomainpolicies"],
        verbs: ["create", "get", "list", "watch"],
      },
      { apiGroups: [""], resources: ["configmaps"], verbs: ["create", "get"] },
    ]);
    await assert.rejects(
      tenant.request("GET", `/api/v1/namespaces/${NS}/secrets/billing-db`),
      (e: { code?: number }) => e.code === 403,
      "RBAC: the tenant may not read Secrets",
    );
    await assert.rejects(
      tenant.request("GET", `/api/v1/namespaces/${NS}/secrets`),
      (e: { code?: number }) => e.code === 403,
      "RBAC: the tenant may not list Secrets",
    );
    // the tenant's own server (its CA, its certificate)
    ca = await makeCa(join(work, "tenant-ca"), "Tenant CA");
    const leaf = await makeLeaf(ca, { cn: "mx.tenant.example", dnsNames: ["mx.tenant.example"] });
    theirs = await tenantServer(await readFile(leaf.certFile), await readFile(leaf.keyFile));
    await tenant.create<Obj>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "tenant-ca", namespace: NS },
      data: { "ca.crt": await readFile(ca.certFile, "utf8") },
    });
    for (const v of VICTIMS) {
      await tenant.create<Obj>({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "RelayCredential",
        metadata: { name: `grab-${v.id}`, namespace: NS },
        spec: {
          type: "password",
          usage: "outbound",
          username: "x",
          passwordSecretRef: { name: v.secret, key: v.key },
          restrictTo: { nextHops: ["127.0.0.1"] },
        },
      });
      await tenant.create<Obj>({
        apiVersion: "sealpost.dev/v1alpha1",
        kind: "MailDomainPolicy",
        metadata: { name: `grab-${v.id}`, namespace: NS },
        spec: {
          domains: [`${v.id}.tenant.example`],
          outbound: {
            tls: {
              mode: "verify",
              caBundle: { configMapRef: { name: "tenant-ca" } },
              matchNames: ["mx.tenant.example"],
            },
            nextHop: { host: "127.0.0.1", port: theirs.port },
            auth: { credentialRef: { name: `grab-${v.id}` } },
          },
        },
      });
    }
  });
  after(async () => {
    await relay?.stop();
    await theirs?.close();
    await stopAll(op, cp);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("the operator refuses every grab of a relay's own Secret or a DKIM key, naming the Secret and the fix, and compiles none as a password", async () => {
    for (const v of REFUSED_BY_OPERATOR) {
      const c = await waitFor(`credential grab-${v.id} judged`, async () => {
        const o = await get(R.RelayCredential, `grab-${v.id}`);
        return cond(o, "Accepted") ? o : undefined;
      });
      assert.equal(cond(c, "Accepted")?.status, "False", v.id);
      assert.equal(cond(c, "Accepted")?.reason, "InvalidReference", v.id);
      assert.match(
        cond(c, "Accepted")!.message,
        new RegExp(`Secret mail/${v.secret} .*never names it`),
        v.id,
      );
      const p = await waitFor(`policy grab-${v.id} judged`, async () => {
        const o = await get(R.MailDomainPolicy, `grab-${v.id}`);
        const a = cond(o, "Accepted");
        return a && a.observedGeneration === o!.metadata.generation && a.status === "False" ? o : undefined;
      });
      assert.match(cond(p, "Accepted")!.message, /a password credential never names it/, v.id);
    }
    // the relay pod as kubelet would make it from the StatefulSet the operator rendered, once its
    // template mounts every file the config names (unmountedConfigFiles says why it may not yet)
    const mat = await waitFor("StatefulSet edge with the grabs compiled and mounted", async () => {
      const s = await get(R.StatefulSet, "edge");
      if (!s) return undefined;
      const m = await fetchAndMaterialise(projectedSources(s), (kind, name) =>
        get(kind === "configMap" ? R.ConfigMap : R.Secret, name),
      );
      if (unmountedConfigFiles(m).length) return undefined;
      const decoded = decodeConfig(m.files.find((f) => f.path === CONFIG_GZ_FILE)!.content);
      const json = decoded.ok ? decoded.value.toString("utf8") : "";
      return VICTIMS.every((v) => json.includes(`"mail/grab-${v.id}"`)) ? m : undefined;
    });
    console.log(
      "the relay pod's config volume:",
      mat.files.map((f) => `${f.path} <- ${f.from}`),
    );
    const gzFile = mat.files.find((f) => f.path === CONFIG_GZ_FILE)!;
    const decoded = decodeConfig(gzFile.content);
    assert.ok(decoded.ok);
    const json = decoded.value.toString("utf8");
    const cfg = JSON.parse(json) as { listeners: Record<string, { enabled?: boolean }> };
    const ports: Record<string, number> = {};
    for (const name of Object.keys(cfg.listeners)) ports[name] = await freePort();
    smtpPort = ports.smtp!;
    const over = applyOverrides(json, {
      host: "127.0.0.1",
      ports,
      admin: await freePort(),
      queueDir: join(work, "queue"),
      dnsServers: ["127.0.0.1:1"],
      allowedInternalCidrs: ["127.0.0.0/8"],
      retry: { initial: 1, max: 2 },
    });
    const files: Record<string, Buffer> = {};
    for (const f of mat.files)
      files[f.path === CONFIG_GZ_FILE ? "config.json" : f.path] =
        f.path === CONFIG_GZ_FILE ? Buffer.from(over.json) : f.content;
    await writeConfigDir(join(work, "config"), files);
    ({ relay, logs } = await startRelay(join(work, "config")));
    // the operator accepted what the tenant wrote, and the pod holds the victims' keys
    // no compiled credential takes its password from a victim key (the relay's own mounts of its
    // admin token and fleet key are its own, read by no credential)
    const passwordFiles = [...json.matchAll(/"passwordFile":\s*"([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(
      REFUSED_BY_OPERATOR.filter((v) => passwordFiles.includes(`secrets/${v.secret}/${v.key}`)).map(
        (v) => v.id,
      ),
      [],
      "victim keys compiled as the tenant's passwords",
    );
  });

  for (const v of VICTIMS) {
    it(`${v.what} (${v.secret}/${v.key}) never reaches the tenant's server`, async () => {
      assert.ok(relay, "the relay runs the operator's config");
      const r = await swaks({
        server: "127.0.0.1",
        port: smtpPort,
        from: "app@corp.example",
        to: `someone@${v.id}.tenant.example`,
        headers: { "X-Test-Id": `grab-${v.id}` },
      });
      assert.equal(r.code, 0, r.transcript);
      // the relay delivers (or defers): give it a few attempts
      await waitFor(
        `mail for ${v.id}.tenant.example handed on`,
        () => Promise.resolve(theirs.rcpts.includes(`someone@${v.id}.tenant.example`) ? true : undefined),
        8000,
      ).catch(() => undefined);
      const secret = values.get(v.id)!;
      const leaked = theirs.logins.filter((l) => l.pass === secret);
      const hint = logs?.lines
        .filter((l) => JSON.stringify(l).includes(`${v.id}.tenant.example`))
        .map((l) => `${JSON.stringify(l.event ?? l.msg)} ${JSON.stringify(l.code ?? l.result ?? "")}`)
        .slice(-3);
      console.log(
        `${v.id}: tenant server saw ${theirs.logins.length} AUTH so far; this victim's value: ${
          leaked.length
            ? `RECEIVED (secure=${leaked[0]!.secure}, ${secret.length} chars, starts ${JSON.stringify(secret.slice(0, 27))})`
            : "not received"
        }; relay: ${JSON.stringify(hint)}`,
      );
      assert.equal(
        leaked.length,
        0,
        `the tenant, who may not read Secret ${NS}/${v.secret}, received its ${v.key} as an AUTH password`,
      );
    });
  }
});

// The chart's ValidatingAdmissionPolicies: -writes and -relay-image match the operator's own identity
// only, -hostnames judges a RelayCredential's dnsNames only. A namespace user's grab passes admission.
