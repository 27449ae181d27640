// Attack (config review, tenant side): new policy material freezes the pods not rolled yet.
// A tenant's policy names a Secret or ConfigMap key no relay pod mounts yet (here a CA bundle). The
// operator leaves it out (MountPending) until the pod template may take it (once per
// spec.policyMountInterval), then applies the StatefulSet that mounts it and, in the same
// reconcile, the ConfigMap whose config names it (controllers/mailrelay/reconcile.ts: "the template
// first"). The StatefulSet replaces its pods one at a time (RollingUpdate, each with its preStop
// drain of up to 120 s, each new pod Ready before the next goes; a pod that never gets Ready stops
// the roll). Every pod not replaced yet still runs the old template, which lacks the new file, while
// kubelet projects the new config.json.gz into it at once: relay/config/load.ts refuses the whole
// generation (CONFIG_FILES_MISSING) and the pod keeps its last good config. So everything else that
// config carries (here: an administrator's partner policy tightened from opportunistic to verify,
// in the same compile) does not take effect on those pods until they are rolled, for the whole roll
// or, if the roll stalls, indefinitely. Promise broken: a problem in one policy never blocks other
// tenants' changes; nothing half-applied (a pod runs one tenant's new material or nobody's, but never
// everybody's old config because of one tenant's new material).
// What it must do: the pod without the tenant's file still applies the rest of the generation (the
// tenant's policy held there, as an unusable credential is), or the operator names the new file only
// once every pod mounts it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import type { MailDomainPolicy, RelayCredential } from "../../api/v1alpha1/index.js";
import { compileRelayConfig } from "../../operator/compile/relay-config.js";
import { loadConfig, unchangedFingerprint } from "../../relay/config/load.js";
import { inboundState } from "../../relay/config/key-material.js";
import { allowedAccounts } from "../../relay/inbound/authority.js";
import { decideInbound } from "../../relay/inbound/rules.js";
import { routeFor } from "../../relay/outbound/route.js";
import { clusterView, mailRelay } from "../support/operator-fixtures.js";

const sh = promisify(execFile);
let dir: string;

const policy = (name: string, domain: string, tls: Record<string, unknown>): MailDomainPolicy =>
  ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailDomainPolicy",
    metadata: { name, namespace: "mail", uid: `u-${name}`, creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: { domains: [domain], outbound: { tls } },
  }) as MailDomainPolicy;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "attack-remount-"));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A config directory as kubelet writes it for a pod of the template that mounts `material`. */
async function podDir(name: string, json: string, material: Record<string, string>): Promise<string> {
  const root = join(dir, name);
  const gen = join(root, "..2026_01_01_00_00_00.000000001");
  await mkdir(join(gen, "tls"), { recursive: true });
  await sh("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", join(gen, "tls", "tls.key"), "-out", join(gen, "tls", "tls.crt"),
    "-subj", "/CN=relay.example.com", "-days", "2",
  ]); // prettier-ignore
  await writeFile(join(gen, "config.json"), json);
  for (const [path, text] of Object.entries(material)) {
    await mkdir(join(gen, path, ".."), { recursive: true });
    await writeFile(join(gen, path), text);
  }
  await sh("ln", ["-s", "..2026_01_01_00_00_00.000000001", join(root, "..data")]);
  return root;
}

describe("attack: a tenant's new material freezes the pods not rolled yet", () => {
  const relay = mailRelay({ inbound: { relayFrom: ["10.0.0.0/8"] } });
  const view = clusterView({ configMaps: { "tenant-ca": ["ca.crt"] } });
  const tenant = policy("tenant", "tenant.example", {
    mode: "verify",
    caBundle: { configMapRef: { name: "tenant-ca", key: "ca.crt" } },
  });
  const tightened = policy("partner", "partner.example", { mode: "verify", trustSystemRoots: true });

  it("the remount's config names the tenant's new file and carries the partner's tightening", () => {
    const c = compileRelayConfig(relay, [tightened, tenant], view, undefined, {
      mounted: new Set(["configmaps/tenant-ca/ca.crt"]),
    });
    assert.deepEqual(c.included.sort(), ["mail/partner", "mail/tenant"]);
  });

  it("a pod of the previous template (no tenant file) applies the partner's tightening", async () => {
    const c = compileRelayConfig(relay, [tightened, tenant], view, undefined, {
      mounted: new Set(["configmaps/tenant-ca/ca.crt"]),
    });
    // a pod rolled already has the file: it loads
    const rolled = await podDir("rolled", c.json, { "configmaps/tenant-ca/ca.crt": "" });
    assert.equal((await loadConfig(rolled)).result.ok, true);
    // a pod still on the previous template: kubelet projects the new config, not the new file
    const old = await podDir("old", c.json, {});
    const { result } = await loadConfig(old);
    assert.ok(
      result.ok,
      `the pod refuses the whole generation: ${result.ok ? "" : `${result.code}: ${result.message}`}`,
    );
    const partner = routeFor("partner.example", result.value.config);
    assert.equal(partner.route?.outbound.tls.mode, "verify", "the partner's tightening is enforced");
    // the tenant's policy, whose material this pod lacks, is held there, never sent without its CA
    assert.ok(routeFor("tenant.example", result.value.config).hold, "the tenant's mail is held");
  });

  it("held there, its partner's hosts keep its rule and its login is refused", async () => {
    const login: RelayCredential = {
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "RelayCredential",
      metadata: { name: "tenant-login", namespace: "mail", creationTimestamp: "2026-01-01T00:00:00Z" },
      spec: {
        type: "password",
        usage: "inbound",
        username: "tenant-partner",
        passwordSecretRef: { name: "tenant-login", key: "password" },
      },
    };
    const v = clusterView({
      configMaps: { "tenant-ca": ["ca.crt"] },
      secrets: { "tenant-login": ["password"] },
      credentials: [login],
    });
    const withLogin = {
      ...tenant,
      spec: {
        ...tenant.spec,
        inbound: { hosts: ["198.51.100.0/24"], require: "tls+auth", credentialRef: { name: "tenant-login" } },
      },
    } as MailDomainPolicy;
    const c = compileRelayConfig(relay, [tightened, withLogin], v, undefined, {
      mounted: new Set(["configmaps/tenant-ca/ca.crt", "secrets/tenant-login/password"]),
    });
    assert.deepEqual(c.included.sort(), ["mail/partner", "mail/tenant"]);
    const old = await podDir("old-login", c.json, { "secrets/tenant-login/password": "a-long-password-1" });
    const { result } = await loadConfig(old);
    assert.ok(result.ok, result.ok ? "" : result.message);
    const state = inboundState(result.value);
    const d = decideInbound(state.inbound, "198.51.100.7", "smtp");
    assert.deepEqual(d.need, { tls: true, auth: true }, "the partner's hosts keep the rule");
    assert.deepEqual(allowedAccounts(state.authority, d), [], "no login while the policy is held");
  });
});

// The session's review of the fix: only a file absent from the generation holds a policy. A read
// that fails otherwise (EMFILE, EIO; here the path is a directory) is that read's failure: before,
// the policy was held and the generation shortcut (unchangedFingerprint) never read the file again,
// so its mail waited until it expired. And a `..data` that is a plain directory (edited in place)
// gives no shortcut.
describe("review: what the generation may hold, and when a poll may skip reading", () => {
  const relay = mailRelay({ inbound: { relayFrom: ["10.0.0.0/8"] } });
  const view = clusterView({ configMaps: { "tenant-ca": ["ca.crt"] } });
  const tenant = policy("tenant", "tenant.example", {
    mode: "verify",
    caBundle: { configMapRef: { name: "tenant-ca", key: "ca.crt" } },
  });
  const compiled = () =>
    compileRelayConfig(relay, [tenant], view, undefined, {
      mounted: new Set(["configmaps/tenant-ca/ca.crt"]),
    });

  it("a material file the pod has but cannot read refuses the generation, to be read again", async () => {
    const root = await podDir("unreadable", compiled().json, {});
    await mkdir(join(root, "..data", "configmaps", "tenant-ca", "ca.crt"), { recursive: true }); // EISDIR
    const { result } = await loadConfig(root);
    assert.equal(result.ok ? "loaded, the policy held" : result.code, "CONFIG_FILES_MISSING");
    assert.equal(!result.ok && result.temporary, true);
  });

  it("a ..data that is a plain directory: a file changed in place is seen by the next poll", async () => {
    const root = join(dir, "plain-data");
    const kubelet = await podDir("plain-src", compiled().json, { "configmaps/tenant-ca/ca.crt": "one" });
    await mkdir(root, { recursive: true });
    await sh("cp", ["-rL", join(kubelet, "..data"), join(root, "..data")]);
    const first = await loadConfig(root);
    assert.ok(first.result.ok, first.result.ok ? "" : first.result.message);
    await writeFile(join(root, "..data", "configmaps", "tenant-ca", "ca.crt"), "two");
    assert.notEqual(
      await unchangedFingerprint(root, first.result.value),
      first.result.value.fingerprint,
      "the poll took the generation shortcut over a file changed in place",
    );
  });
});
