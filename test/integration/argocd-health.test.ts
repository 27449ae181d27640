// Issue 17, Argo CD health checks: the chart's Lua (charts/sealpost/files/argocd-health.lua), run
// by Debian's lua5.4 (scripts/setup.sh installs it) the way Argo CD runs it (the object as the global
// `obj`, the script's return value the health), against statuses the operator really wrote on a real
// apiserver: Healthy, Progressing and Degraded each from the operator's own conditions; and
// docs/argocd.md carries exactly this script for all three kinds. Flux/kstatus: every status carries
// observedGeneration and a Ready condition.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- objects are the apiserver's JSON */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import type { Operator } from "../../operator/operator.js";
import { R, type KubeObject, type Resource, type KubeClient } from "../../operator/runtime/kube.js";
import type { ControlPlane } from "../support/controlplane.js";
import { waitFor } from "../support/process.js";
import {
  controlPlaneFor,
  operatorIdentity,
  sealpostCrdFiles,
  startOperator,
  stopAll,
} from "../support/operator.js";
import { repoRoot } from "../support/toolchain.js";

const NS = "mail";
const SCRIPT = join(repoRoot, "charts/sealpost/files/argocd-health.lua");
type Obj = KubeObject & { spec?: any; status?: any };

/** A JSON value as a Lua table constructor (strings byte-escaped: no Lua version's \u needed). */
function lua(v: unknown): string {
  if (v === null || v === undefined) return "nil";
  if (typeof v === "boolean" || typeof v === "number") return String(v);
  if (typeof v === "string")
    return `"${[...Buffer.from(v, "utf8")]
      .map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b}`))
      .join("")}"`;
  if (Array.isArray(v)) return `{${v.map(lua).join(",")}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `[${lua(k)}]=${lua(x)}`)
    .join(",")}}`;
}

/** Argo CD's view of `obj`: the script run with it as the global obj. */
async function health(obj: unknown): Promise<{ status: string; message: string }> {
  const script = await readFile(SCRIPT, "utf8");
  const program = `obj = ${lua(obj)}\nlocal function check()\n${script}\nend\nlocal hs = check()\nio.write(hs.status, "\\n", hs.message or "")\n`;
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile("lua5.4", ["-"], (e, stdout, stderr) =>
      e ? reject(new Error(`lua5.4: ${stderr || e.message}`)) : resolve(stdout),
    );
    child.stdin!.end(program);
  });
  const [status = "", ...message] = out.split("\n");
  return { status, message: message.join("\n") };
}

describe("issue 17: Argo CD health of the operator's real statuses", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator;
  const apply = (o: Obj) => admin.apply(o, { fieldManager: "test-user" });
  /** The object once the operator has written a status for its current generation. */
  const observed = (r: Resource, name: string) =>
    waitFor(`${r.kind} ${name} status`, async () => {
      const o = await admin.find<Obj>(r, NS, name);
      return o?.status?.observedGeneration === o?.metadata.generation && o?.status?.conditions
        ? o
        : undefined;
    });
  const relay = (name: string, spec: Record<string, unknown>): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "MailRelay",
    metadata: { name, namespace: NS },
    spec: { hostname: `${name}.example.com`, replicas: 0, ...spec },
  });
  const credential = (name: string, secret: string): Obj => ({
    apiVersion: "sealpost.dev/v1alpha1",
    kind: "RelayCredential",
    metadata: { name, namespace: NS },
    spec: { type: "password", usage: "outbound", username: "u", passwordSecretRef: { name: secret } },
  });

  before(async () => {
    ({ cp, admin } = await controlPlaneFor(NS, { crds: sealpostCrdFiles() }));
    op = await startOperator((await operatorIdentity(cp)).kubeConfig);
    for (const [name, key] of [
      ["ok-tls", "tls.crt"],
      ["login", "password"],
    ] as const)
      await admin.create<KubeObject>({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name, namespace: NS },
        type: "Opaque",
        data: { [key]: Buffer.from("x").toString("base64") },
      });
  });
  after(() => stopAll(op, cp));

  it("MailRelay: Healthy when Ready, Progressing while its certificate is missing, Degraded for a refused image", async () => {
    await apply(relay("ok", { certificate: { secretRef: { name: "ok-tls" } } }));
    await apply(relay("waiting", { certificate: { secretRef: { name: "not-yet" } } }));
    await apply(
      relay("bad", { certificate: { secretRef: { name: "ok-tls" } }, image: "evil.example/miner:1" }),
    );
    const ok = await health(await observed(R.MailRelay, "ok"));
    assert.equal(ok.status, "Healthy", ok.message);
    const waiting = await health(await observed(R.MailRelay, "waiting"));
    assert.equal(waiting.status, "Progressing");
    assert.match(waiting.message, /not-yet/);
    const bad = await health(await observed(R.MailRelay, "bad"));
    assert.equal(bad.status, "Degraded");
    assert.match(bad.message, /spec\.image evil\.example\/miner:1/);
  });

  it("RelayCredential: Healthy with its Secret, Degraded naming a missing one", async () => {
    await apply(credential("good", "login"));
    await apply(credential("broken", "absent"));
    assert.equal((await health(await observed(R.RelayCredential, "good"))).status, "Healthy");
    const broken = await health(await observed(R.RelayCredential, "broken"));
    assert.equal(broken.status, "Degraded");
    assert.match(broken.message, /absent/);
  });

  it("MailDomainPolicy: Degraded for a broken reference", async () => {
    await apply({
      apiVersion: "sealpost.dev/v1alpha1",
      kind: "MailDomainPolicy",
      metadata: { name: "partner", namespace: NS },
      spec: {
        domains: ["partner.example"],
        outbound: {
          tls: { mode: "required" },
          auth: { credentialRef: { name: "no-such-login" }, allowUnauthenticatedPeer: true },
        },
      },
    });
    const p = await health(await observed(R.MailDomainPolicy, "partner"));
    assert.equal(p.status, "Degraded");
    assert.match(p.message, /no-such-login/);
  });

  it("Progressing without a status or with a generation the operator has not seen yet", async () => {
    assert.equal((await health({ metadata: { generation: 1 } })).status, "Progressing");
    const ok = await admin.find<Obj>(R.MailRelay, NS, "ok");
    const behind = { ...ok, metadata: { ...ok!.metadata, generation: ok!.metadata.generation! + 1 } };
    const h = await health(behind);
    assert.equal(h.status, "Progressing");
    assert.match(h.message, /generation/);
  });

  it("every status carries observedGeneration and a Ready condition (what Flux's kstatus reads)", async () => {
    for (const r of [R.MailRelay, R.RelayCredential, R.MailDomainPolicy])
      for (const o of (await admin.list<Obj>(r, NS)).items) {
        assert.equal(o.status?.observedGeneration, o.metadata.generation, `${r.kind} ${o.metadata.name}`);
        assert.ok(
          (o.status?.conditions as { type: string }[]).some((c) => c.type === "Ready"),
          `${r.kind} ${o.metadata.name}`,
        );
      }
  });

  it("docs/argocd.md carries exactly this script, for all three kinds", async () => {
    const doc = await readFile(join(repoRoot, "docs/argocd.md"), "utf8");
    const block = /```yaml\n(data:[\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(block, "the argocd-cm snippet");
    const data = (parse(block) as { data: Record<string, string> }).data;
    const script = await readFile(SCRIPT, "utf8");
    for (const kind of ["MailRelay", "MailDomainPolicy", "RelayCredential"])
      assert.equal(data[`resource.customizations.health.sealpost.dev_${kind}`], script, kind);
  });
});
